"""Security headers on every response (redirects, 401, 403, 404, 405, 500, static files
included), caching, and log redaction."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
import pytest

from dashboard.observability import REDACTED, JsonFormatter, redact
from dashboard.session import COOKIE
from tests.dashboard.web_support import (
    CLIENT_SECRET,
    PUBLIC_URL,
    READ_TOKEN,
    SESSION_KEY,
    AppClient,
    Clock,
    build_app,
    serving,
    signed_in,
)

pytestmark = pytest.mark.anyio

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self' https://gitlab.example.test"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
}


def assert_secure_headers(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "camera=()" in response.headers["permissions-policy"]
    assert len(response.headers.get_list("content-security-policy")) == 1


@pytest.fixture
async def client(tmp_path: Path):
    app, _ = build_app(tmp_path, Clock(), DASHBOARD_ROLE_RECHECK="12h")
    async with serving(app) as client:
        yield client


def _cookie(client: AppClient, role: str | None = "viewer") -> dict[str, str]:
    _, value = signed_in(client.app, role)
    return {"cookie": f"{COOKIE}={value}"}


async def test_headers_on_every_kind_of_response(client: AppClient):
    viewer, roleless = _cookie(client), _cookie(client, None)
    cases = [
        ("GET", "/e/dev/", {}, 302),
        ("GET", "/api/e/dev/state", {}, 401),
        ("GET", "/nowhere", {}, 302),
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 503),
        ("GET", "/auth/login", {}, 302),
        ("GET", "/auth/callback?state=x&code=y", {}, 400),
        ("GET", "/static/css/dashboard.css", {}, 200),
        ("GET", "/static/nothing-here.css", {}, 404),
        ("GET", "/static/%2e%2e/settings.py", {}, 404),
        ("GET", "/e/dev/", viewer, 200),
        ("GET", "/nowhere", viewer, 404),
        ("GET", "/auth/logout", viewer, 405),
        ("POST", "/auth/logout", viewer, 403),  # no CSRF token
        ("GET", "/e/dev/", roleless, 403),
        ("GET", "/api/e/dev/state", roleless, 403),
        ("HEAD", "/healthz", {}, 200),
    ]
    for method, path, headers, status in cases:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert_secure_headers(response)


async def test_headers_on_a_crash(tmp_path: Path, caplog):
    app, _ = build_app(tmp_path, Clock(), DASHBOARD_ROLE_RECHECK="12h")
    _, value = signed_in(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        response = await client.get("/e/dev/boom", headers={"cookie": f"{COOKIE}={value}"})
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert_secure_headers(response)
    assert response.headers["cache-control"] == "no-store"


async def test_caching(client: AppClient):
    viewer = _cookie(client)
    for path, headers in (("/e/dev/", viewer), ("/api/e/dev/state", viewer), ("/e/dev/", {})):
        response = await client.get(path, headers=headers)
        assert response.headers["cache-control"] == "no-store"
    static = await client.get("/static/css/dashboard.css")
    assert static.headers["cache-control"] == "no-cache"  # revalidated by ETag
    assert "etag" in static.headers


async def test_the_real_pages_carry_the_headers_and_no_secret(tmp_path: Path):
    app, _ = build_app(tmp_path, Clock(), real_pages=True, DASHBOARD_ROLE_RECHECK="12h")
    async with serving(app) as client:
        session, value = signed_in(app)
        headers = {"cookie": f"{COOKIE}={value}"}
        for path in ("/e/dev/", "/e/dev/scaling", "/e/dev/cache", "/api/e/dev/state"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, path
            assert_secure_headers(response)
            assert response.headers["cache-control"] == "no-store"
            for secret in (
                CLIENT_SECRET,
                SESSION_KEY,
                READ_TOKEN,
                session.tokens.access_token,
                session.tokens.refresh_token or "",
                session.id,
                value,
            ):
                assert secret not in response.text, path


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: "),
        ("headers={'authorization': 'Bearer x'}", "headers={'authorization'"),
        ("Cookie: __Host-dashboard=gAAAAABlongvalue; other=1", "Cookie: "),
        ("set-cookie: __Host-dashboard-login=xyz; Path=/", "set-cookie: "),
        ("GET /auth/callback?code=4f2a9c&state=QwErTy", "GET /auth/callback?code="),
        ("grant_type=refresh_token&refresh_token=abc123&client_secret=s3cr3t", "grant_type="),
        ('{"access_token": "tok-123", "token_type": "Bearer"}', '{"access_token": '),
        ("used glpat-AbCdEf123456 for the call", "used "),
        ("PRIVATE-TOKEN: glrt-xyz", "PRIVATE-TOKEN: "),
        ("token " + "a1" * 32 + " expired", "token "),
        ("cookie value gAAAAABn" + "x" * 60, "cookie value "),
    ],
)
def test_redaction(text: str, kept: str):
    cleaned = redact(text)
    assert REDACTED in cleaned
    assert cleaned.startswith(kept)
    for fragment in ("abc.def", "gAAAAAB", "xyz", "4f2a9c", "QwErTy", "abc123", "s3cr3t"):
        if fragment in text:
            assert fragment not in cleaned, fragment
    for fragment in ("tok-123", "AbCdEf123456", "a1" * 32, "glrt-xyz"):
        assert fragment not in cleaned


def test_redaction_of_known_secrets_and_what_it_leaves():
    assert redact("the key is my-session-key-1234", ["my-session-key-1234"]) == (
        f"the key is {REDACTED}"
    )
    assert redact("GET /e/{env}/ 200") == "GET /e/{env}/ 200"
    assert redact("exit code 1, 12 runners online") == "exit code 1, 12 runners online"


def test_json_lines_redact_messages_extras_and_tracebacks():
    formatter = JsonFormatter(secrets=[CLIENT_SECRET])
    try:
        raise ValueError(f"bad Bearer {READ_TOKEN} with {CLIENT_SECRET}")
    except ValueError:
        record = logging.LogRecord(
            "dashboard.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            (CLIENT_SECRET,),
            sys.exc_info(),
        )
    record.user = "alice"
    record.header = f"Authorization: Bearer {READ_TOKEN}"
    line = formatter.format(record)
    assert CLIENT_SECRET not in line
    assert READ_TOKEN not in line
    assert '"user": "alice"' in line
    assert '"level": "error"' in line
    assert "ValueError" in line
