"""Sessions: the cookie's attributes, and tampered, expired, foreign-key and signed-out cookies
refused by the app (never logged)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dashboard.session import COOKIE, SessionStore, Tokens, fernet_for
from tests.dashboard.web_support import (
    SESSION_KEY,
    T0,
    Clock,
    build_app,
    cookie_value,
    serving,
    signed_in,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock):
    # roles are re-checked in test_auth; here they hold for the session's whole life
    app, _ = build_app(tmp_path, clock, DASHBOARD_ROLE_RECHECK="12h")
    async with serving(app) as client:
        yield client


async def _get(client, path: str, cookie: str | None):
    headers = {"cookie": f"{COOKIE}={cookie}"} if cookie is not None else {}
    return await client.get(path, headers=headers)


def _store(clock: Clock, key: bytes = SESSION_KEY.encode()) -> SessionStore:
    return SessionStore(key=key, max_age=12 * 3600, idle=3600, clock=clock)


def _tokens() -> Tokens:
    return Tokens(access_token="a" * 64, refresh_token="r" * 64, expires_at=T0 + 7200)


def test_the_cookie_is_host_only_secure_httponly_lax():
    store = _store(Clock())
    session = store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    header = store.cookie(session)
    name, _, attributes = header.partition("=")
    assert name == "__Host-dashboard"
    parts = {part.strip().split("=")[0].lower() for part in attributes.split(";")[1:]}
    assert parts == {"max-age", "path", "secure", "httponly", "samesite"}
    assert "Path=/;" in header
    assert "SameSite=Lax" in header
    assert "Max-Age=43200" in header
    assert "Domain" not in header
    # only an encrypted id: nothing of the session in clear
    value = cookie_value(header)
    for part in ("alice", session.id, session.csrf_token, "a" * 64):
        assert part not in value


def test_a_session_id_is_fresh_and_random_each_sign_in():
    store = _store(Clock())
    first = store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    second = store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    assert first.id != second.id
    assert first.csrf_token != second.csrf_token
    assert len(first.id) >= 40


def test_the_session_repr_holds_no_token():
    store = _store(Clock())
    session = store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    text = repr(session)
    assert "a" * 64 not in text
    assert "r" * 64 not in text
    assert session.csrf_token not in text
    assert session.id not in text


async def test_a_valid_cookie_opens_the_page(client):
    _, cookie = signed_in(client.app)
    response = await _get(client, "/e/dev/", cookie)
    assert response.status_code == 200
    assert response.json() == {"user": "alice", "role": "viewer"}


def _tampered(cookie: str) -> str:
    middle = len(cookie) // 2
    flipped = "A" if cookie[middle] != "A" else "B"
    return cookie[:middle] + flipped + cookie[middle + 1 :]


async def test_tampered_foreign_and_garbage_cookies_are_refused(
    client, caplog: pytest.LogCaptureFixture
):
    session, cookie = signed_in(client.app)
    foreign_key = fernet_for(b"another-deployment-key-0123456789abcdef", "session cookie")
    forged = [
        _tampered(cookie),
        foreign_key.encrypt(session.id.encode()).decode(),  # right id, wrong key
        Fernet(Fernet.generate_key()).encrypt(session.id.encode()).decode(),
        session.id,  # the bare id
        "",
        "not-a-cookie",
        "gAAAAA" + "x" * 100,
    ]
    caplog.set_level(logging.DEBUG)
    for value in forged:
        page = await _get(client, "/e/dev/", value)
        assert page.status_code == 302, value
        assert page.headers["location"] == "/auth/login?next=%2Fe%2Fdev%2F"
        api = await _get(client, "/api/e/dev/state", value)
        assert api.status_code == 401, value
        assert api.json() == {"error": "not signed in"}
    logged = caplog.text
    for value in forged:
        if value:
            assert value not in logged
    assert "session cookie rejected" in logged


async def test_a_refused_cookie_is_cleared(client):
    response = await _get(client, "/e/dev/", "not-a-cookie")
    assert response.headers["set-cookie"].startswith("__Host-dashboard=;")
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_idle_timeout(client, clock: Clock):
    _, cookie = signed_in(client.app)
    clock.advance(3000)
    assert (await _get(client, "/e/dev/", cookie)).status_code == 200
    clock.advance(3000)  # 50 minutes after the last request: still within the idle hour
    assert (await _get(client, "/e/dev/", cookie)).status_code == 200
    clock.advance(3601)
    assert (await _get(client, "/e/dev/", cookie)).status_code == 302
    assert (await _get(client, "/api/e/dev/state", cookie)).status_code == 401
    assert len(client.app.state.sessions) == 0


async def test_absolute_lifetime(client, clock: Clock):
    """Active all day long, the session still ends after 12 hours; the cookie alone, replayed
    later, is too old to decrypt."""
    _, cookie = signed_in(client.app)
    for _ in range(23):
        clock.advance(1800)
        assert (await _get(client, "/e/dev/", cookie)).status_code == 200
    clock.advance(1800)
    assert (await _get(client, "/e/dev/", cookie)).status_code == 302
    store = _store(clock)
    assert store.load(cookie) is None


async def test_signed_out_session_cookie_is_refused(client):
    session, cookie = signed_in(client.app)
    client.app.state.sessions.delete(session.id)
    assert (await _get(client, "/api/e/dev/state", cookie)).status_code == 401


async def test_a_restart_signs_everyone_out(tmp_path: Path, clock: Clock):
    """Sessions live in memory: a new process with the same key has no such session."""
    first, _ = build_app(tmp_path / "a", clock)
    second, _ = build_app(tmp_path / "b", clock)
    _, cookie = signed_in(first)
    async with serving(second) as client:
        assert (await _get(client, "/api/e/dev/state", cookie)).status_code == 401


def test_sweep_forgets_expired_sessions(clock: Clock):
    store = _store(clock)
    store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    clock.advance(3601)
    store.create(user_id=2, username="bob", role="viewer", tokens=_tokens())
    assert len(store) == 1


def test_csrf_token_check():
    store = _store(Clock())
    session = store.create(user_id=1, username="alice", role="viewer", tokens=_tokens())
    assert session.csrf_ok(session.csrf_token)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf_token[:-1] + "x")
