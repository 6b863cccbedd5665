"""The fake GitLab behaves as GitLab does: OAuth with PKCE, scopes, access levels, runners,
repository commits with optimistic locking, merge requests, injected failures."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dashboard.fakes.gitlab import FakeGitLab
from dashboard.fakes.gitlab_repo import STALE_EDIT
from dashboard.gitlab_client import GitLabClient, GitLabError

pytestmark = pytest.mark.anyio

REDIRECT = "https://dash.example.com/auth/callback"


class Form(HTMLParser):
    """The consent page's form fields and buttons."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.buttons: list[str] = []
        self.action = ""
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if tag == "form":
            self.action = attr["action"]
        if tag == "input" and attr.get("type") == "hidden":
            self.fields[attr["name"]] = attr.get("value") or ""
        if tag == "button":
            self.buttons.append(attr["value"])


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.fixture
def fake() -> FakeGitLab:
    gitlab = FakeGitLab(url="https://gitlab.example.com")
    gitlab.add_application("cid", "csecret", REDIRECT, scopes="read_user read_api api")
    ada = gitlab.add_user("ada")
    gitlab.add_group("acme", group_id=10)
    gitlab.set_member_access(10, ada, 40)
    gitlab.sign_in_as(ada)
    return gitlab


def http(fake: FakeGitLab) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.build_app()), base_url="https://gitlab.example.com"
    )


def client(fake: FakeGitLab, token: str) -> GitLabClient:
    return GitLabClient(
        "https://gitlab.example.com", token, transport=httpx.ASGITransport(app=fake.build_app())
    )


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": "cid",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "read_user read_api",
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def sign_in(web: httpx.AsyncClient, verifier: str, challenge: str) -> dict:
    consent = await web.get("/oauth/authorize", params=authorize_params(challenge))
    assert consent.status_code == 200
    assert "@ada" in consent.text
    form = Form(consent.text)
    assert form.buttons == ["Authorize", "Deny"]
    answer = await web.post(form.action, data={**form.fields, "commit": "Authorize"})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    token = await web.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": "cid",
            "client_secret": "csecret",
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


async def test_code_flow_with_pkce_gives_tokens_that_call_the_api(fake):
    verifier, challenge = pkce()
    async with http(fake) as web:
        tokens = await sign_in(web, verifier, challenge)
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == 7200
        assert tokens["scope"] == "read_api read_user"
        user = await web.get(
            "/api/v4/user", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert user.json()["username"] == "ada"


async def test_a_code_works_once_and_only_with_its_verifier(fake):
    verifier, challenge = pkce()
    async with http(fake) as web:
        consent = await web.get("/oauth/authorize", params=authorize_params(challenge))
        form = Form(consent.text)
        answer = await web.post(form.action, data={**form.fields, "commit": "Authorize"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "cid",
            "client_secret": "csecret",
        }
        wrong = await web.post("/oauth/token", data={**exchange, "code_verifier": pkce()[0]})
        again = await web.post("/oauth/token", data={**exchange, "code_verifier": verifier})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert again.json()["error"] == "invalid_grant", "the failed attempt used the code up"


async def test_the_client_secret_is_checked(fake):
    async with http(fake) as web:
        answer = await web.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": "x", "client_id": "cid"},
            auth=("cid", "not-the-secret"),
        )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "read_api sudo"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
    ],
)
async def test_bad_requests_go_back_to_the_client_with_error_and_state(fake, change, error):
    async with http(fake) as web:
        answer = await web.get("/oauth/authorize", params=authorize_params("c" * 43, **change))
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == [error]
    assert query["state"] == ["st4te"]


@pytest.mark.parametrize(
    "change", [{"client_id": "other"}, {"redirect_uri": REDIRECT + "/../evil"}]
)
async def test_unknown_client_or_redirect_uri_is_never_redirected_to(fake, change):
    async with http(fake) as web:
        answer = await web.get("/oauth/authorize", params=authorize_params("c" * 43, **change))
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_deny_and_forged_forms(fake):
    async with http(fake) as web:
        consent = await web.get("/oauth/authorize", params=authorize_params("c" * 43))
        form = Form(consent.text)
        forged = await web.post(
            form.action, data={**form.fields, "authenticity_token": "x", "commit": "Authorize"}
        )
        denied = await web.post(form.action, data={**form.fields, "commit": "Deny"})
    assert forged.status_code == 422
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]


async def test_nobody_signed_in_gets_no_consent_page(fake):
    fake.sign_in_as(None)
    async with http(fake) as web:
        answer = await web.get("/oauth/authorize", params=authorize_params("c" * 43))
    assert answer.status_code == 401


async def test_refresh_rotates_and_expired_tokens_are_refused(fake):
    verifier, challenge = pkce()
    async with http(fake) as web:
        first = await sign_in(web, verifier, challenge)
        fake.expire_access_tokens()
        expired = await web.get(
            "/api/v4/user", headers={"Authorization": f"Bearer {first['access_token']}"}
        )
        refresh = {"grant_type": "refresh_token", "client_id": "cid", "client_secret": "csecret"}
        second = await web.post(
            "/oauth/token", data={**refresh, "refresh_token": first["refresh_token"]}
        )
        reused = await web.post(
            "/oauth/token", data={**refresh, "refresh_token": first["refresh_token"]}
        )
        fresh = await web.get(
            "/api/v4/user", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
        )
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_token"
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert reused.json()["error"] == "invalid_grant"
    assert fresh.status_code == 200


async def test_scopes_decide_what_a_token_may_do(fake):
    ada = next(iter(fake.users))
    runner = fake.add_runner(10, "acme dev docker")
    async with client(fake, fake.personal_token(ada, "read_api")) as reader:
        with pytest.raises(GitLabError) as caught:
            await reader.set_runner_paused(runner, True)
        assert (await reader.runner(runner))["paused"] is False
    assert caught.value.status == 403
    assert "insufficient_scope" not in caught.value.message
    assert "higher privileges" in caught.value.message
    async with client(fake, fake.personal_token(ada, "read_user")) as user_only:
        assert (await user_only.current_user())["username"] == "ada"
        with pytest.raises(GitLabError, match="403"):
            await user_only.group_runners(10)
    async with client(fake, fake.personal_token(ada, "api")) as writer:
        assert (await writer.set_runner_paused(runner, True))["paused"] is True
    assert fake.runners[runner].paused


async def test_member_access_levels_and_404_for_non_members(fake):
    ada, bob = next(iter(fake.users)), fake.add_user("bob")
    async with client(fake, fake.personal_token(ada)) as gitlab:
        assert await gitlab.group_member_access("acme", ada) == 40
        assert await gitlab.group_member_access(10, bob) is None
    async with client(fake, fake.personal_token(bob)) as outsider:
        assert await outsider.group_member_access(10, bob) is None
    assert fake.requests[-1] == ("GET", f"/groups/10/members/all/{bob}")


async def test_runners_list_paginates_and_needs_maintainer(fake):
    ada = next(iter(fake.users))
    ids = [fake.add_runner(10, f"runner {i}", tags=["docker"]) for i in range(130)]
    fake.add_runner(None, "instance runner", runner_type="instance_type")
    async with client(fake, fake.personal_token(ada)) as gitlab:
        listed = await gitlab.group_runners(10)
        assert [r["id"] for r in listed] == ids
        assert listed[0]["status"] == "online"
        with pytest.raises(GitLabError, match="403"):
            await gitlab.instance_runners()
    assert [p for m, p in fake.requests if p == "/groups/10/runners"] == ["/groups/10/runners"] * 2
    fake.set_member_access(10, ada, 30)
    async with client(fake, fake.personal_token(ada)) as developer:
        with pytest.raises(GitLabError, match="403"):
            await developer.group_runners(10)


async def test_runner_detail_jobs_and_managers(fake):
    ada = next(iter(fake.users))
    project = fake.add_project("acme/web", files={})
    runner = fake.add_runner(10, "acme dev nix", tags=["nix"], version="18.6.1")
    done = fake.add_job(runner, project, status="success", queued_duration=4.5, duration=30)
    running = fake.add_job(runner, project, status="running", queued_duration=1.0)
    async with client(fake, fake.personal_token(ada)) as gitlab:
        detail = await gitlab.runner(runner)
        busy = await gitlab.runner_jobs(runner, status="running")
        recent = await gitlab.runner_jobs(runner)
        managers = await gitlab.runner_managers(runner)
    assert detail["tag_list"] == ["nix"]
    assert detail["version"] == "18.6.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", detail["contacted_at"])
    assert [j["id"] for j in busy] == [running]
    assert [j["id"] for j in recent] == [running, done]
    assert recent[1]["queued_duration"] == 4.5
    assert recent[1]["web_url"] == f"https://gitlab.example.com/acme/web/-/jobs/{done}"
    assert managers[0]["job_execution_status"] == "active"


async def test_commits_refuse_a_stale_last_commit_id_and_merge_requests_open(fake):
    ada = next(iter(fake.users))
    project = fake.add_project("acme/config", files={"config/organization.yaml": "a: 1\n"})
    fake.set_member_access(project, ada, 40)
    async with client(fake, fake.personal_token(ada, "api")) as gitlab:
        read = await gitlab.file("acme/config", "config/organization.yaml", ref="main")
        text, last = await gitlab.raw_file("acme/config", "config/organization.yaml", ref="main")
        assert (read.content, text, last) == ("a: 1\n", "a: 1\n", read.last_commit_id)
        fake.commit_file(project, "main", "config/organization.yaml", "a: 2\n")
        update = {
            "action": "update",
            "file_path": "config/organization.yaml",
            "content": "a: 3\n",
            "last_commit_id": read.last_commit_id,
        }
        with pytest.raises(GitLabError) as caught:
            await gitlab.create_commit(
                project, branch="dash/1", start_branch="main", message="m", actions=[update]
            )
        assert caught.value.status == 400
        assert STALE_EDIT in caught.value.message
        fresh = await gitlab.file(project, "config/organization.yaml", ref="main")
        commit = await gitlab.create_commit(
            project,
            branch="dash/1",
            start_branch="main",
            message="Raise a",
            actions=[{**update, "last_commit_id": fresh.last_commit_id}],
        )
        mr = await gitlab.create_merge_request(
            project, source_branch="dash/1", target_branch="main", title="Draft: Raise a"
        )
        with pytest.raises(GitLabError) as duplicate:
            await gitlab.create_merge_request(
                project, source_branch="dash/1", target_branch="main", title="again"
            )
    assert commit["title"] == "Raise a"
    assert fake.file_text(project, "dash/1", "config/organization.yaml") == "a: 3\n"
    assert fake.file_text(project, "main", "config/organization.yaml") == "a: 2\n"
    assert mr["draft"] is True
    assert mr["web_url"].endswith("/acme/config/-/merge_requests/1")
    assert duplicate.value.status == 409


async def test_developers_cannot_push_to_the_protected_default_branch(fake):
    dev = fake.add_user("dev")
    project = fake.add_project("acme/config", files={"f": "x"})
    fake.set_member_access(project, dev, 30)
    async with client(fake, fake.personal_token(dev, "api")) as gitlab:
        action = {"action": "update", "file_path": "f", "content": "y"}
        with pytest.raises(GitLabError, match="403"):
            await gitlab.create_commit(project, branch="main", message="m", actions=[action])
        await gitlab.create_commit(
            project, branch="dev/1", start_branch="main", message="m", actions=[action]
        )


async def test_injected_failures_and_outages(fake):
    ada = next(iter(fake.users))
    async with client(fake, fake.personal_token(ada)) as gitlab:
        fake.fail_next(1, 502)
        with pytest.raises(GitLabError) as caught:
            await gitlab.current_user()
        assert caught.value.status == 502
        assert (await gitlab.current_user())["id"] == ada
        fake.set_outage(True)
        with pytest.raises(GitLabError, match="503"):
            await gitlab.current_user()
        fake.set_outage(False)
        await gitlab.current_user()


async def test_pagination_links_point_at_the_fake_itself(fake):
    ada = next(iter(fake.users))
    for i in range(3):
        fake.add_runner(10, f"runner {i}")
    served = httpx.ASGITransport(app=fake.build_app())
    async with httpx.AsyncClient(transport=served, base_url="http://127.0.0.1:8181") as web:
        page = await web.get(
            "/api/v4/groups/10/runners",
            params={"per_page": "2"},
            headers={"Authorization": f"Bearer {fake.personal_token(ada)}"},
        )
    assert page.headers["x-next-page"] == "2"
    assert page.headers["x-total"] == "3"
    assert page.links["next"]["url"].startswith("http://127.0.0.1:8181/api/v4/groups/10/")
