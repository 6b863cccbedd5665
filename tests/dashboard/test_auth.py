"""Sign-in with GitLab end to end (OAuth code + PKCE + state, against a GitLab mock that
checks them like GitLab does and against the fake GitLab's consent page), roles from access
levels and their re-check, token refresh with rotation, logout, the post-login ``next`` and
what never leaks.

Long because the sign-in is one story told from many sides (open redirects, login CSRF,
refresh races, outages); split, the fixtures would be repeated in each part."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from dashboard.auth import LOGIN_COOKIE, safe_next
from dashboard.fakes.gitlab import FakeGitLab
from dashboard.observability import JsonFormatter
from dashboard.session import COOKIE
from dashboard.web import Clients, create_app
from tests.dashboard.web_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    GITLAB_URL,
    GROUP,
    PROJECT,
    PUBLIC_URL,
    READ_TOKEN,
    SESSION_KEY,
    Clock,
    GitLabMock,
    build_app,
    make_settings,
    serving,
    stub_pages,
)

pytestmark = pytest.mark.anyio

ALICE = 7


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gitlab(clock: Clock) -> GitLabMock:
    mock = GitLabMock(clock)
    mock.add_user(ALICE, "alice", group=20, project=30)
    return mock


@pytest.fixture
async def client(tmp_path: Path, clock: Clock, gitlab: GitLabMock):
    app, _ = build_app(tmp_path, clock, gitlab)
    async with serving(app) as client:
        yield client


async def start(client, next_path: str = "/e/dev/"):
    """The browser asks for a page and follows the dashboard to GitLab's authorize URL."""
    page = await client.get(next_path)
    assert page.status_code == 302
    login = await client.get(page.headers["location"])
    assert login.status_code == 302
    return login


async def sign_in(client, gitlab: GitLabMock, user_id: int = ALICE, next_path: str = "/e/dev/"):
    login = await start(client, next_path)
    callback = gitlab.consent(login.headers["location"], user_id)
    return await client.get(callback)


async def test_the_whole_sign_in(client, gitlab: GitLabMock):
    page = await client.get("/e/dev/")
    assert page.headers["location"] == "/auth/login?next=%2Fe%2Fdev%2F"
    login = await client.get(page.headers["location"])
    authorize = urlsplit(login.headers["location"])
    query = dict(parse_qsl(authorize.query))
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        "https://gitlab.example.test/oauth/authorize"
    )
    assert query["redirect_uri"] == f"{PUBLIC_URL}/auth/callback"
    assert query["scope"] == "read_user read_api"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 40
    assert len(query["code_challenge"]) == 43  # base64url SHA-256, no padding
    assert LOGIN_COOKIE in login.headers["set-cookie"]
    assert "Secure" in login.headers["set-cookie"]
    assert "HttpOnly" in login.headers["set-cookie"]

    callback = await client.get(gitlab.consent(login.headers["location"], ALICE))
    assert callback.status_code == 302
    assert callback.headers["location"] == "/e/dev/"
    cookies = callback.headers.get_list("set-cookie")
    assert any(c.startswith(f"{COOKIE}=") and "Max-Age=43200" in c for c in cookies)
    assert any(c.startswith(f"{LOGIN_COOKIE}=;") and "Max-Age=0" in c for c in cookies)

    fleet = await client.get("/e/dev/")
    assert fleet.status_code == 200
    assert fleet.json() == {"user": "alice", "role": "viewer"}
    # the token exchange sent the verifier and the client secret, server-side
    token_call = next(r for r in gitlab.requests if r.url.path == "/oauth/token")
    form = dict(parse_qsl(token_call.content.decode()))
    assert form["grant_type"] == "authorization_code"
    assert form["client_secret"] == CLIENT_SECRET
    assert form["code_verifier"]


async def test_signing_in_again_while_signed_in_goes_straight_to_next(client, gitlab):
    await sign_in(client, gitlab)
    again = await client.get("/auth/login?next=/e/dev/scaling")
    assert again.status_code == 302
    assert again.headers["location"] == "/e/dev/scaling"


@pytest.mark.parametrize(
    ("group", "project", "role"),
    [
        (20, None, "viewer"),
        (30, 30, "viewer"),
        (20, 40, "operator"),
        (50, 50, "operator"),
        (10, 40, None),  # a guest is below the default minimum (reporter)
        (None, 50, None),  # 404 from the group's members API: no access, even as maintainer
    ],
)
async def test_roles_come_from_access_levels(client, gitlab, group, project, role):
    gitlab.add_user(ALICE, "alice", group=group, project=project)
    await sign_in(client, gitlab)
    page = await client.get("/e/dev/")
    api = await client.get("/api/e/dev/state")
    if role is None:
        assert page.status_code == 403
        assert "no access" in page.text.lower()
        assert 'action="/auth/logout"' in page.text
        assert api.status_code == 403
        assert api.json()["error"].startswith("Your GitLab account has no access")
    else:
        assert page.json() == {"user": "alice", "role": role}
        assert api.status_code == 200


async def test_a_lower_minimum_lets_guests_in(tmp_path: Path, clock: Clock, gitlab):
    gitlab.add_user(ALICE, "alice", group=10, project=None)
    app, _ = build_app(tmp_path, clock, gitlab, DASHBOARD_VIEWER_MIN_ACCESS="guest")
    async with serving(app) as client:
        await sign_in(client, gitlab)
        assert (await client.get("/e/dev/")).json()["role"] == "viewer"


async def test_instance_mode_checks_the_config_project(tmp_path: Path, clock: Clock, gitlab):
    gitlab.add_user(ALICE, "alice", group=None, project=40)
    app, _ = build_app(tmp_path, clock, gitlab, DASHBOARD_GITLAB_GROUP="instance")
    async with serving(app) as client:
        await sign_in(client, gitlab)
        assert (await client.get("/e/dev/")).json()["role"] == "operator"
    paths = {r.url.raw_path.decode() for r in gitlab.requests}
    assert f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/members/all/{ALICE}" in paths
    assert not any("/groups/" in path for path in paths)


async def test_a_user_removed_from_the_group_loses_access_at_the_next_check(
    client, gitlab, clock: Clock
):
    await sign_in(client, gitlab)
    gitlab.add_user(ALICE, "alice", group=None, project=None)
    clock.advance(299)
    assert (await client.get("/e/dev/")).status_code == 200  # not re-checked yet
    clock.advance(2)
    assert (await client.get("/e/dev/")).status_code == 403
    assert (await client.get("/api/e/dev/state")).status_code == 403


async def test_a_promotion_shows_at_the_next_check(client, gitlab, clock: Clock):
    await sign_in(client, gitlab)
    gitlab.add_user(ALICE, "alice", group=20, project=40)
    clock.advance(301)
    assert (await client.get("/e/dev/")).json()["role"] == "operator"


async def test_an_expired_access_token_is_refreshed_and_the_refresh_token_rotates(
    client, gitlab, clock: Clock
):
    await sign_in(client, gitlab)
    app = client.app
    [session] = app.state.sessions._sessions.values()
    first = session.tokens
    for _ in range(5):  # 2.5 hours of activity: the 2-hour token expires on the way
        clock.advance(1800)
        assert (await client.get("/e/dev/")).status_code == 200
    [session] = app.state.sessions._sessions.values()
    assert session.tokens.access_token != first.access_token
    assert session.tokens.refresh_token != first.refresh_token
    assert first.refresh_token not in gitlab.refresh  # used once, dead
    grants = [
        dict(parse_qsl(r.content.decode()))["grant_type"]
        for r in gitlab.requests
        if r.url.path == "/oauth/token"
    ]
    assert grants == ["authorization_code", "refresh_token"]


async def test_concurrent_requests_refresh_once(client, gitlab, clock: Clock):
    """A refresh token is single-use: five requests at once after expiry refresh it once."""
    await sign_in(client, gitlab)
    store = client.app.state.sessions
    [session] = store._sessions.values()
    expired = dataclasses.replace(session.tokens, expires_at=clock.now - 1)
    store.save(dataclasses.replace(session, tokens=expired, roles_checked_at=clock.now - 301))
    answers = await asyncio.gather(*(client.get("/e/dev/") for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    refreshes = [
        r
        for r in gitlab.requests
        if r.url.path == "/oauth/token" and b"grant_type=refresh_token" in r.content
    ]
    assert len(refreshes) == 1


async def test_a_refused_refresh_signs_out(client, gitlab, clock: Clock):
    await sign_in(client, gitlab)
    gitlab.refresh.clear()  # the user revoked the application in GitLab
    for _ in range(4):
        clock.advance(1800)
        answer = await client.get("/e/dev/")
        if answer.status_code != 200:
            break
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("/auth/login")
    assert len(client.app.state.sessions) == 0


async def test_gitlab_down_at_the_re_check_keeps_the_role_and_retries_soon(
    client, gitlab, clock: Clock, caplog
):
    await sign_in(client, gitlab)
    gitlab.outage = True
    clock.advance(301)
    assert (await client.get("/e/dev/")).status_code == 200
    assert "postponed" in caplog.text
    gitlab.outage = False
    gitlab.add_user(ALICE, "alice", group=None, project=None)
    clock.advance(20)
    assert (await client.get("/e/dev/")).status_code == 200  # retry not yet due
    clock.advance(11)
    assert (await client.get("/e/dev/")).status_code == 403


async def test_gitlab_down_at_sign_in(client, gitlab):
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    gitlab.outage = True
    answer = await client.get(callback)
    assert answer.status_code == 502
    assert "did not answer" in answer.text
    assert len(client.app.state.sessions) == 0


async def test_state_is_single_use(client, gitlab):
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    assert (await client.get(callback)).status_code == 302
    client.cookies.clear()
    replay = await client.get(callback)
    assert replay.status_code == 400
    assert "expired or was already used" in replay.text


@pytest.mark.parametrize(
    "query",
    ["", "?code=x", "?code=x&state=made-up", "?state=", "?error=access_denied&state=made-up"],
)
async def test_callbacks_without_a_pending_login_are_refused(client, query: str):
    answer = await client.get(f"/auth/callback{query}")
    assert answer.status_code == 400
    assert COOKIE + "=" not in answer.headers.get("set-cookie", "").replace(LOGIN_COOKIE, "")


async def test_a_callback_in_another_browser_is_refused(tmp_path, client, gitlab, caplog):
    """Login CSRF: the attacker starts a login and sends the victim the callback URL."""
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    async with serving(client.app) as victim:
        answer = await victim.get(callback)
    assert answer.status_code == 400
    assert "another browser" in answer.text
    assert len(client.app.state.sessions) == 0
    # and the state is spent: the attacker cannot use it either
    assert (await client.get(callback)).status_code == 400


async def test_a_login_older_than_ten_minutes_is_refused(client, gitlab, clock: Clock):
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    clock.advance(601)
    assert (await client.get(callback)).status_code == 400


async def test_a_refused_consent(client, gitlab):
    login = await start(client)
    state = dict(parse_qsl(urlsplit(login.headers["location"]).query))["state"]
    answer = await client.get(f"/auth/callback?error=access_denied&state={state}")
    assert answer.status_code == 403
    assert "did not grant access" in answer.text


async def test_a_code_gitlab_refuses(client, gitlab):
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    gitlab.codes.clear()
    answer = await client.get(callback)
    assert answer.status_code == 400
    assert "GitLab refused" in answer.text


OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%255C%255Cevil.example",
    "%2F%2Fevil.example",
    "/\tevil",
    "/ /evil.example",
    "/\r\nLocation: https://evil.example",
    "//evil.example/%2e%2e",
    "",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_never_leaves_the_site(target: str):
    assert safe_next(target) == "/"


@pytest.mark.parametrize(
    "target", ["/", "/e/dev/", "/e/prod/runners/12", "/e/dev/scaling?range=6h", "/e/dev/#top"]
)
def test_next_keeps_paths_on_the_site(target: str):
    assert safe_next(target) == target


def test_next_never_points_back_into_sign_in():
    assert safe_next("/auth/login?next=//evil.example") == "/"
    assert safe_next("/auth/callback") == "/"


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "https://evil.example", "/%2F%2Fevil.example"]
)
async def test_after_sign_in_next_is_refused_end_to_end(client, gitlab, target: str):
    login = await client.get("/auth/login", params={"next": target})
    callback = await client.get(gitlab.consent(login.headers["location"], ALICE))
    assert callback.status_code == 302
    assert callback.headers["location"] == "/"


async def test_logout(client, gitlab):
    await sign_in(client, gitlab)
    [session] = client.app.state.sessions._sessions.values()
    refused = await client.post("/auth/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert (await client.get("/e/dev/")).status_code == 200  # still signed in
    answer = await client.post("/auth/logout", data={"csrf_token": session.csrf_token})
    assert answer.status_code == 200
    assert "signed out" in answer.text.lower()
    assert answer.headers["set-cookie"].startswith(f"{COOKIE}=;")
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert len(client.app.state.sessions) == 0
    assert gitlab.revoked == [session.tokens.access_token]
    assert (await client.get("/api/e/dev/state")).status_code == 401


async def test_logout_with_the_csrf_header(client, gitlab):
    await sign_in(client, gitlab)
    [session] = client.app.state.sessions._sessions.values()
    answer = await client.post("/auth/logout", headers={"x-csrf-token": session.csrf_token})
    assert answer.status_code == 200


async def test_logout_is_a_post(client, gitlab):
    await sign_in(client, gitlab)
    assert (await client.get("/auth/logout")).status_code == 405
    assert len(client.app.state.sessions) == 1


async def test_a_user_without_access_can_sign_out(client, gitlab):
    gitlab.add_user(ALICE, "alice", group=None, project=None)
    await sign_in(client, gitlab)
    [session] = client.app.state.sessions._sessions.values()
    answer = await client.post("/auth/logout", data={"csrf_token": session.csrf_token})
    assert answer.status_code == 200


async def test_cross_site_posts_are_refused(client, gitlab):
    await sign_in(client, gitlab)
    [session] = client.app.state.sessions._sessions.values()
    for headers in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        answer = await client.post(
            "/auth/logout", data={"csrf_token": session.csrf_token}, headers=headers
        )
        assert answer.status_code == 403, headers
    same = await client.post(
        "/auth/logout",
        data={"csrf_token": session.csrf_token},
        headers={"origin": PUBLIC_URL, "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 200


async def test_no_secret_reaches_a_page_or_a_log(client, gitlab, clock: Clock, caplog):
    """Client secret, session key, read token, OAuth code, access and refresh tokens and the
    cookie: none in any response the browser gets, none in any log line."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def record(response):
        await response.aread()
        seen.append(str(response.headers) + response.text)

    client.event_hooks["response"].append(record)
    login = await start(client)
    callback = gitlab.consent(login.headers["location"], ALICE)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    await client.get(callback)
    await client.get("/e/dev/")
    await client.get("/api/e/dev/state")
    for _ in range(4):  # the access token expires and is refreshed
        clock.advance(1800)
        await client.get("/e/dev/")
    gitlab.outage = True
    clock.advance(301)
    await client.get("/e/dev/")  # a re-check that fails, logged
    gitlab.outage = False
    [session] = client.app.state.sessions._sessions.values()
    await client.post("/auth/logout", data={"csrf_token": session.csrf_token})
    await client.get("/auth/callback?code=abc&state=def")
    cookie_values = [c.split(";")[0].split("=", 1)[1] for c in "".join(seen).split("set-cookie")]
    issued = [t for r in gitlab.requests for t in _tokens_in(r)]
    secrets_ = [CLIENT_SECRET, SESSION_KEY, READ_TOKEN, code, *issued]
    pages = "\n".join(s for s in seen if "<html" in s or "{" in s)
    # the app's records (the test's own client logs the browser's URLs under "httpx")
    records = [
        r for r in caplog.records if not (r.name == "httpx" and PUBLIC_URL in r.getMessage())
    ]
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in records]
    logged = "\n".join([*(r.getMessage() for r in records), *lines])
    for secret in secrets_:
        assert secret not in logged
        assert secret not in pages.replace("set-cookie", "")
    for value in cookie_values:
        if len(value) > 20:
            assert value not in logged
    assert any("signed in" in line for line in lines)


def _tokens_in(request) -> list[str]:
    form = dict(parse_qsl(request.content.decode())) if request.method == "POST" else {}
    values = [form.get("refresh_token"), form.get("token")]
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    return [v for v in (*values, bearer) if v]


# --- against the fake GitLab (dashboard.fakes.gitlab): its consent page and Doorkeeper rules --


@pytest.fixture
def fake_gitlab(clock: Clock) -> FakeGitLab:
    fake = FakeGitLab(url=GITLAB_URL, clock=clock)
    fake.add_application(CLIENT_ID, CLIENT_SECRET, f"{PUBLIC_URL}/auth/callback")
    group = fake.add_group(GROUP)
    project = fake.add_project(PROJECT, files={"config/organization.yaml": "{}\n"})
    alice = fake.add_user("alice")
    fake.set_member_access(group, alice, 30)
    fake.set_member_access(project, alice, 40)
    fake.sign_in_as(alice)
    return fake


@pytest.fixture
async def on_fake(tmp_path: Path, clock: Clock, fake_gitlab: FakeGitLab):
    settings = make_settings(tmp_path)
    gitlab_app = fake_gitlab.build_app()
    app = create_app(
        settings,
        clients=Clients.for_gitlab(GITLAB_URL, httpx.ASGITransport(app=gitlab_app)),
        pages=stub_pages(),
        collectors=(),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=gitlab_app)
    async with (
        serving(app) as client,
        httpx.AsyncClient(transport=transport, base_url=GITLAB_URL) as browser_at_gitlab,
    ):
        yield client, browser_at_gitlab


async def _consent(browser_at_gitlab: httpx.AsyncClient, authorize_url: str, answer: str) -> str:
    """The user reads GitLab's consent page and clicks ``answer``; GitLab's redirect."""
    page = await browser_at_gitlab.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "Runner dashboard" in page.text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    fields = {name: html.unescape(value) for name, value in fields.items()}
    assert fields["scope"] == "read_user read_api"
    answered = await browser_at_gitlab.post("/oauth/authorize", data={**fields, "commit": answer})
    assert answered.status_code == 302
    return answered.headers["location"]


async def test_the_whole_sign_in_on_the_fake_gitlab(on_fake, fake_gitlab, clock: Clock):
    client, browser_at_gitlab = on_fake
    login = await start(client, "/e/dev/")
    callback = await _consent(browser_at_gitlab, login.headers["location"], "Authorize")
    assert callback.startswith(f"{PUBLIC_URL}/auth/callback?code=")
    signed = await client.get(callback)
    assert (signed.status_code, signed.headers["location"]) == (302, "/e/dev/")
    assert (await client.get("/e/dev/")).json() == {"user": "alice", "role": "operator"}

    # two hours on, the token has expired: the re-check refreshes it (GitLab rotates)
    [session] = client.app.state.sessions._sessions.values()
    for _ in range(5):
        clock.advance(1800)
        assert (await client.get("/api/e/dev/state")).status_code == 200
    [renewed] = client.app.state.sessions._sessions.values()
    assert renewed.tokens.refresh_token != session.tokens.refresh_token
    assert fake_gitlab.tokens[session.tokens.access_token].revoked

    # removed from the group: gone at the next check
    group = fake_gitlab.group(GROUP)
    assert group is not None
    fake_gitlab.set_member_access(group.id, renewed.user_id, None)
    clock.advance(301)
    assert (await client.get("/e/dev/")).status_code == 403

    answer = await client.post("/auth/logout", data={"csrf_token": renewed.csrf_token})
    assert answer.status_code == 200
    assert fake_gitlab.tokens[renewed.tokens.access_token].revoked


async def test_denying_on_the_fake_gitlab(on_fake):
    client, browser_at_gitlab = on_fake
    login = await start(client)
    callback = await _consent(browser_at_gitlab, login.headers["location"], "Deny")
    assert "error=access_denied" in callback
    answer = await client.get(callback)
    assert answer.status_code == 403
    assert len(client.app.state.sessions) == 0
