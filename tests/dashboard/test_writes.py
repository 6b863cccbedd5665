"""The write side's routes in the app, against the fake GitLab: who may write, how a write is
checked before anything reaches GitLab, and what it leaves behind (merge request, paused
runner, audit line), with no token in any log line."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from dashboard.model import Hpa, Runner
from dashboard.observability import JsonFormatter
from dashboard.web import Clients, create_app
from dashboard.write_guards import Idempotency, RateLimiter
from tests.dashboard.eventually import eventually
from tests.dashboard.web_support import (
    CLIENT_SECRET,
    GITLAB_URL,
    PUBLIC_URL,
    READ_TOKEN,
    SESSION_KEY,
    Clock,
    cookie_value,
    make_settings,
    serving,
)
from tests.dashboard.write_support import (
    DOCKER_LINE,
    ORIGINAL,
    READ_SCOPES,
    WriteWorld,
    write_world,
)

pytestmark = pytest.mark.anyio

SAME_SITE = {"origin": PUBLIC_URL}
DOCKER = "runners.types.docker.concurrent"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(clock: Clock) -> WriteWorld:
    return write_world(clock)


@pytest.fixture
async def client(tmp_path: Path, clock: Clock, world: WriteWorld):
    settings = make_settings(tmp_path)
    transport = httpx.ASGITransport(app=world.gitlab.build_app())
    app = create_app(settings, clients=Clients.for_gitlab(GITLAB_URL, transport), clock=clock)
    async with serving(app) as client:
        yield client


def sign_in(client, world: WriteWorld, who: str = "alice", scopes=None):
    """A session for a user of the fake GitLab, with tokens it issued; returns the session."""
    user_id = world.alice if who == "alice" else world.bob
    role = "operator" if who == "alice" else "viewer"
    tokens = world.tokens(user_id, scopes) if scopes else world.tokens(user_id)
    sessions = client.app.state.sessions
    session = sessions.create(user_id=user_id, username=who, role=role, tokens=tokens)
    client.cookies.set("__Host-dashboard", cookie_value(sessions.cookie(session)))
    return session


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


def form_fields(page: str) -> dict[str, str]:
    """The change form as the browser would send it unchanged."""
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input id="[^"]*" name="([^"]+)" value="([^"]*)"', page)
    }
    for name, body in re.findall(
        r'<select id="[^"]*" name="([^"]+)"[^>]*>(.*?)</select>', page, re.S
    ):
        selected = re.search(r'<option value="(\w+)" selected', body)
        assert selected, name
        fields[html.unescape(name)] = selected.group(1)
    fields["scope"] = "base"
    fields["csrf_token"] = hidden(page, "csrf_token")
    fields["last_commit_id"] = hidden(page, "last_commit_id")
    return fields


async def preview(client, **changes: str) -> httpx.Response:
    page = (await client.get("/e/dev/changes/new")).text
    fields = {**form_fields(page), "reason": "more docker capacity", **changes}
    return await client.post("/e/dev/changes/preview", data=fields, headers=SAME_SITE)


async def test_an_operator_previews_sees_a_bad_value_then_opens_a_merge_request(client, world):
    sign_in(client, world)

    bad = await preview(client, **{DOCKER: "0"})
    assert bad.status_code == 200
    assert (
        "runners.types.docker.concurrent: input should be greater than or equal to 1 (got 0)"
        in bad.text
    )
    assert 'id="submit"' not in bad.text

    good = await preview(client, **{DOCKER: "12"})
    assert 'id="submit"' in good.text
    assert "+      concurrent: 12" in html.unescape(good.text)
    assert world.merge_requests() == []  # a preview writes nothing

    fields = {**form_fields(good.text), "reason": "more docker capacity"}
    fields["idempotency_key"] = hidden(good.text, "idempotency_key")
    done = await client.post("/e/dev/changes", data=fields, headers=SAME_SITE)

    assert done.status_code == 200, done.text
    (merge_request,) = world.merge_requests()
    assert merge_request["web_url"] in done.text
    assert world.file(merge_request["source_branch"]) == ORIGINAL.replace(
        DOCKER_LINE, DOCKER_LINE.replace("10", "12")
    )

    again = await client.post("/e/dev/changes", data=fields, headers=SAME_SITE)
    assert merge_request["web_url"] in again.text  # a double submit: the same merge request
    assert len(world.merge_requests()) == 1


def audit_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "dashboard.audit"]


async def test_a_viewer_may_not_write_and_gitlab_is_not_asked(client, world, caplog):
    caplog.set_level(logging.INFO)
    session = sign_in(client, world, "bob")
    runner_id = store_runner(client, world)
    before = list(world.gitlab.requests)

    runner_page = await client.get(f"/e/dev/runners/{runner_id}")
    drift_page = await client.get("/e/dev/drift")
    form = await client.get("/e/dev/changes/new")
    posted = await client.post(
        "/e/dev/changes",
        data={"csrf_token": session.csrf_token, DOCKER: "12", "reason": "x"},
        headers=SAME_SITE,
    )
    paused = await client.post(
        f"/e/dev/runners/{runner_id}/pause",
        data={"csrf_token": session.csrf_token, "confirm": "yes"},
        headers=SAME_SITE,
    )

    assert (form.status_code, posted.status_code, paused.status_code) == (403, 403, 403)
    assert list(world.gitlab.requests) == before
    # and no write control on the pages a viewer sees
    assert runner_page.status_code == 200
    assert "runner-pause" not in runner_page.text
    assert "Propose a change" not in drift_page.text
    denied = [(a["user"], a["action"], a["result"], a["detail"]) for a in audit_lines(caplog)]
    assert denied == [
        ("bob", "change_request", "denied", "not an operator"),
        ("bob", "pause", "denied", "not an operator"),
    ]


def store_runner(client, world: WriteWorld) -> int:
    """A runner of the environment in the fake GitLab and in the store (as the GitLab
    collector would put it there)."""
    runner_id = world.gitlab.add_runner(world.group, "acme dev docker", tags=["docker"])
    runner = Runner(
        id=runner_id,
        description="acme dev docker",
        runner_type="docker",
        status="online",
        paused=False,
        tags=("docker",),
        version="19.3.1",
        contacted_at=None,
        running_jobs=0,
        ip_address=None,
    )
    client.app.state.stores["dev"].update("gitlab", runners=(runner,), jobs=())
    return runner_id


async def confirmed(client, session, runner_id: int, action: str = "pause") -> httpx.Response:
    """Ask, then confirm on the confirmation page."""
    path = f"/e/dev/runners/{runner_id}/{action}"
    ask = await client.post(path, data={"csrf_token": session.csrf_token}, headers=SAME_SITE)
    data = {
        "csrf_token": session.csrf_token,
        "confirm": "yes",
        "idempotency_key": hidden(ask.text, "idempotency_key"),
    }
    return await client.post(path, data=data, headers=SAME_SITE)


@pytest.mark.parametrize(
    ("csrf", "headers"),
    [
        (None, SAME_SITE),
        ("wrong", SAME_SITE),
        ("right", {"origin": "https://evil.example"}),
        ("right", {"origin": "null", "sec-fetch-site": "cross-site"}),
        ("right", {"referer": "https://evil.example/page"}),
        ("right", {}),
    ],
)
async def test_a_write_without_the_sessions_token_or_from_another_site_is_refused(
    client, world, csrf, headers
):
    session = sign_in(client, world)
    before = list(world.gitlab.requests)
    token = session.csrf_token if csrf == "right" else csrf
    data = {"reason": "x", DOCKER: "12", **({"csrf_token": token} if token else {})}

    answer = await client.post("/e/dev/changes/preview", data=data, headers=headers)

    assert answer.status_code == 403
    assert list(world.gitlab.requests) == before


async def test_a_same_origin_form_under_no_referrer_passes(client, world):
    """What Chromium sends for our own form: Origin null (Referrer-Policy no-referrer) and
    Sec-Fetch-Site same-origin."""
    session = sign_in(client, world)
    headers = {"origin": "null", "sec-fetch-site": "same-origin"}

    answer = await client.post(
        "/e/dev/changes/preview",
        data={"csrf_token": session.csrf_token, "reason": "x"},
        headers=headers,
    )

    assert answer.status_code == 200


async def test_a_user_demoted_in_gitlab_is_refused_at_the_next_write(client, world):
    sign_in(client, world)
    good = await preview(client, **{DOCKER: "12"})
    fields = {**form_fields(good.text), "reason": "r"}
    fields["idempotency_key"] = hidden(good.text, "idempotency_key")
    world.gitlab.set_member_access(world.project, world.alice, 30)  # now Developer

    answer = await client.post("/e/dev/changes", data=fields, headers=SAME_SITE)

    assert answer.status_code == 403
    assert "no longer Maintainer" in answer.text
    assert world.merge_requests() == []
    assert [m for m, _ in world.writes()] == []
    [session] = client.app.state.sessions._sessions.values()
    assert session.role == "viewer"


async def test_a_stale_preview_is_a_conflict(client, world):
    sign_in(client, world)
    good = await preview(client, **{DOCKER: "12"})
    fields = {**form_fields(good.text), "reason": "r"}
    fields["idempotency_key"] = hidden(good.text, "idempotency_key")
    world.push_to_main(ORIGINAL.replace("rocky9: {concurrent: 4}", "rocky9: {concurrent: 5}"))

    answer = await client.post("/e/dev/changes", data=fields, headers=SAME_SITE)

    assert answer.status_code == 409
    assert "changed on the default branch since your preview" in answer.text
    assert world.merge_requests() == []


async def test_the_first_write_asks_for_the_write_scope(client, world):
    sign_in(client, world, scopes=READ_SCOPES)

    answer = await client.get("/e/dev/changes/new")

    assert answer.status_code == 303
    assert answer.headers["location"] == ("/auth/login?scope=api&next=%2Fe%2Fdev%2Fchanges%2Fnew")
    login = await client.get(answer.headers["location"])
    assert login.status_code == 302
    authorize = login.headers["location"]
    assert "scope=read_user+read_api+api" in authorize
    gitlab = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.gitlab.build_app()), base_url=GITLAB_URL
    )
    async with gitlab:
        consent = await gitlab.get(authorize)
        fields = dict(
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', consent.text)
        )
        fields = {k: html.unescape(v) for k, v in fields.items()}
        back = await gitlab.post("/oauth/authorize", data={**fields, "commit": "Authorize"})
    signed = await client.get(back.headers["location"])
    assert (signed.status_code, signed.headers["location"]) == (302, "/e/dev/changes/new")
    [session] = client.app.state.sessions._sessions.values()  # replaced, not added
    assert "api" in session.tokens.scopes
    assert (await client.get("/e/dev/changes/new")).status_code == 200


async def test_pause_asks_first_then_pauses_as_the_operator(client, world, caplog):
    caplog.set_level(logging.INFO)
    session = sign_in(client, world)
    runner_id = store_runner(client, world)
    page = await client.get(f"/e/dev/runners/{runner_id}")
    assert 'id="runner-pause"' in page.text

    ask = await client.post(
        f"/e/dev/runners/{runner_id}/pause",
        data={"csrf_token": session.csrf_token},
        headers=SAME_SITE,
    )
    assert ask.status_code == 200
    assert f"Pause runner {runner_id}?" in ask.text
    assert not world.gitlab.runners[runner_id].paused
    assert world.writes() == []

    confirm = {
        "csrf_token": session.csrf_token,
        "confirm": "yes",
        "idempotency_key": hidden(ask.text, "idempotency_key"),
    }
    done = await client.post(f"/e/dev/runners/{runner_id}/pause", data=confirm, headers=SAME_SITE)

    assert done.status_code == 200
    assert world.gitlab.runners[runner_id].paused
    assert world.writes() == [("PUT", f"/runners/{runner_id}")]
    audit = audit_lines(caplog)
    assert audit[-1] == {
        "action": "pause",
        "audit": True,
        "detail": None,
        "environment": "dev",
        "result": "paused",
        "time": audit[-1]["time"],
        "url": f"{PUBLIC_URL}/e/dev/runners/{runner_id}",
        "user": "alice",
        "user_id": world.alice,
    }
    writes = client.app.state.metrics.registry.get_sample_value(
        "attic_iac_dashboard_writes_total", {"action": "pause", "result": "paused"}
    )
    assert writes == 1


async def test_writes_are_rate_limited_per_user(client, world):
    client.app.state.writes.limiter = RateLimiter(limit=1, window=600)
    session = sign_in(client, world)
    runner_id = store_runner(client, world)

    first = await confirmed(client, session, runner_id, "pause")
    second = await confirmed(client, session, runner_id, "resume")

    assert (first.status_code, second.status_code) == (200, 429)
    assert world.gitlab.runners[runner_id].paused  # the resume never reached GitLab


async def test_gitlab_refusing_the_operator_is_shown_not_hidden(client, world):
    session = sign_in(client, world)
    runner_id = store_runner(client, world)
    world.gitlab.set_member_access(world.group, world.alice, 30)  # not Maintainer of the group

    answer = await confirmed(client, session, runner_id)

    assert answer.status_code == 403
    assert "PUT /runners/" in answer.text
    assert not world.gitlab.runners[runner_id].paused


async def test_drift_is_read_from_the_default_branch_and_shown(client, world):
    sign_in(client, world, "bob")
    store = client.app.state.stores["dev"]
    store.update(
        "kubernetes",
        deployments=(),
        pods=(),
        events=(),
        hpas=(
            Hpa(namespace="attic", name="attic", current=2, desired=2, min=1, max=5, target="cpu"),
        ),
    )

    monitor = client.app.state.writes.monitors["dev"]
    await eventually(lambda: monitor.desired is not None)
    report = (await client.get("/api/e/dev/drift")).json()
    assert report["revision"] == world.gitlab.project(world.project).repository.head("main").id
    items = {(i["object"], i["field"]): (i["desired"], i["live"]) for i in report["items"]}
    assert items[("HorizontalPodAutoscaler attic/attic", "max_replicas")] == ("3", "5")
    page = await client.get("/e/dev/drift")
    assert "max_replicas" in page.text
    assert "Propose a change" not in page.text  # a viewer sees no write control
    badge = await client.get("/e/dev/drift/badge")
    assert f">{report['count']}</span>" in badge.text
    gauge = client.app.state.metrics.registry.get_sample_value(
        "attic_iac_dashboard_drift_items", {"environment": "dev", "kind": "attic_api"}
    )
    assert gauge == 1


async def test_unknown_environment_is_404(client, world):
    session = sign_in(client, world)
    for answer in (
        await client.get("/e/nope/drift"),
        await client.get("/api/e/nope/drift"),
        await client.post(
            "/e/nope/changes", data={"csrf_token": session.csrf_token}, headers=SAME_SITE
        ),
    ):
        assert answer.status_code == 404


async def test_no_token_reaches_any_log_line(client, world, caplog):
    caplog.set_level(logging.DEBUG)
    session = sign_in(client, world)
    good = await preview(client, **{DOCKER: "12"})
    fields = {**form_fields(good.text), "reason": "r"}
    fields["idempotency_key"] = hidden(good.text, "idempotency_key")
    await client.post("/e/dev/changes", data=fields, headers=SAME_SITE)
    world.gitlab.set_member_access(world.project, world.alice, 30)
    await client.post(
        "/e/dev/changes", data={**fields, "idempotency_key": "k" * 20}, headers=SAME_SITE
    )

    secrets = [
        session.tokens.access_token,
        session.tokens.refresh_token,
        session.csrf_token,
        READ_TOKEN,
        CLIENT_SECRET,
        SESSION_KEY,
    ]
    formatter = JsonFormatter()
    lines = [record.getMessage() for record in caplog.records]
    lines += [formatter.format(record) for record in caplog.records]
    assert any('"audit": true' in line for line in lines)
    for line in lines:
        for secret in secrets:
            assert secret not in line


async def test_two_submits_at_once_run_the_write_once():
    calls: list[int] = []
    gate = asyncio.Event()

    async def write() -> str:
        calls.append(1)
        await gate.wait()
        return "merge request !1"

    guard: Idempotency[str] = Idempotency()
    key = "k" * 24
    first = asyncio.create_task(guard.run(7, key, write))
    second = asyncio.create_task(guard.run(7, key, write))
    await asyncio.sleep(0)
    gate.set()

    assert await first == ("merge request !1", False)
    assert await second == ("merge request !1", True)
    assert calls == [1]
    assert await guard.run(8, key, write) == ("merge request !1", False)  # another user


async def test_a_failed_write_can_be_retried_with_the_same_key():
    guard: Idempotency[str] = Idempotency()
    failures = [RuntimeError("GitLab timed out")]

    async def write() -> str:
        if failures:
            raise failures.pop()
        return "done"

    with pytest.raises(RuntimeError):
        await guard.run(7, "k" * 24, write)
    assert await guard.run(7, "k" * 24, write) == ("done", False)
