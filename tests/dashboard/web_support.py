"""Helpers for the sign-in side's tests: settings on temporary secret files, a clock the test
moves, and stub pages that show what the gate handed them."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from config_model.loader import EXAMPLE_CONFIG
from dashboard.session import Session, SessionStore, Tokens
from dashboard.settings import Settings
from dashboard.web import Clients, create_app

PUBLIC_URL = "https://dash.example.test"
GITLAB_URL = "https://gitlab.example.test"
GROUP = "acme/runners"
PROJECT = "acme/infra"
CLIENT_ID = "dashboard-app-id"
CLIENT_SECRET = "gloas-client-secret-value-0123456789"
SESSION_KEY = "session-key-material-that-is-long-enough-0123456789"
READ_TOKEN = "glpat-read-token-value-0123456789"
T0 = 1_800_000_000.0


class Clock:
    """Unix seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_secrets(directory: Path, **values: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "oauth-client-secret": CLIENT_SECRET,
        "session-key": SESSION_KEY,
        "gitlab-read-token": READ_TOKEN,
    }
    for name, value in {**files, **values}.items():
        (directory / name).write_text(value + "\n")
    return directory


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "ATTIC_IAC_CONFIG": str(EXAMPLE_CONFIG),
        "DASHBOARD_ENVIRONMENT": "dev",
        "DASHBOARD_PUBLIC_URL": PUBLIC_URL,
        "DASHBOARD_GITLAB_URL": GITLAB_URL,
        "DASHBOARD_GITLAB_GROUP": GROUP,
        "DASHBOARD_CONFIG_PROJECT": PROJECT,
        "DASHBOARD_OAUTH_CLIENT_ID": CLIENT_ID,
        "DASHBOARD_SECRETS_DIR": str(write_secrets(tmp_path / "secrets")),
    }


def make_settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({**base_env(tmp_path), **env})


async def _whoami(request: Request) -> Response:
    session = request.state.session
    return JSONResponse({"user": session.username, "role": session.role})


async def _post(request: Request) -> Response:
    return PlainTextResponse("done")


async def _boom(request: Request) -> Response:
    raise RuntimeError("a handler failed")


def stub_pages() -> list[BaseRoute]:
    """Routes shaped like the real ones, answering with the session they were given."""
    return [
        Route("/", _whoami, name="home"),
        Route("/e/{env}/", _whoami, name="fleet"),
        Route("/api/e/{env}/state", _whoami, name="api_state"),
        Route("/e/{env}/runners/{runner_id:int}/pause", _post, methods=["POST"], name="pause"),
        Route("/e/{env}/boom", _boom, name="boom"),
    ]


class GitLabMock:
    """GitLab's OAuth and the few API calls sign-in makes, as an ``httpx.MockTransport``
    handler: codes are single-use and PKCE-checked, refresh tokens rotate, tokens expire."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.users: dict[int, str] = {}
        self.levels: dict[tuple[str, int], int] = {}  # (group/project path, user) -> level
        self.codes: dict[str, tuple[int, str, str]] = {}  # code -> user, challenge, redirect
        self.access: dict[str, tuple[int, float]] = {}  # token -> user, expires at
        self.refresh: dict[str, int] = {}
        self.revoked: list[str] = []
        self.outage = False
        self.requests: list[httpx.Request] = []

    def add_user(self, user_id: int, username: str, *, group: int | None, project: int | None):
        self.users[user_id] = username
        for place, level in ((GROUP, group), (PROJECT, project)):
            if level is None:
                self.levels.pop((place, user_id), None)
            else:
                self.levels[(place, user_id)] = level

    def consent(self, authorize_url: str, user_id: int) -> str:
        """The user approves in GitLab: checks the request like GitLab does and returns the
        callback URL GitLab redirects the browser to."""
        query = dict(parse_qsl(urlsplit(authorize_url).query))
        assert authorize_url.startswith(f"{GITLAB_URL}/oauth/authorize?")
        assert query["client_id"] == CLIENT_ID
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["scope"] == "read_user read_api"
        code = secrets.token_hex(16)
        self.codes[code] = (user_id, query["code_challenge"], query["redirect_uri"])
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def _issue(self, user_id: int) -> dict[str, object]:
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        self.access[access] = (user_id, self.clock() + 7200)
        self.refresh[refresh] = user_id
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 7200,
            "refresh_token": refresh,
            "scope": "read_user read_api",
            "created_at": int(self.clock()),
        }

    def _token(self, form: dict[str, str]) -> httpx.Response:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return httpx.Response(401, json={"error": "invalid_client"})
        if form.get("grant_type") == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if found is None or found[1] != challenge or found[2] != form.get("redirect_uri"):
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json=self._issue(found[0]))
        if form.get("grant_type") == "refresh_token":
            user_id = self.refresh.pop(form.get("refresh_token", ""), None)  # rotation
            if user_id is None:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json=self._issue(user_id))
        return httpx.Response(400, json={"error": "unsupported_grant_type"})

    def expire_tokens(self) -> None:
        self.access = {token: (user, 0.0) for token, (user, _) in self.access.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.outage:
            return httpx.Response(503, json={"message": "503 Service Unavailable"})
        path = request.url.path
        if request.method == "POST":
            form = dict(parse_qsl(request.content.decode()))
            if path == "/oauth/token":
                return self._token(form)
            if path == "/oauth/revoke":
                self.revoked.append(form["token"])
                self.access.pop(form["token"], None)
                return httpx.Response(200, json={})
        return self._api(request)

    def _api(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        user = self.access.get(auth.removeprefix("Bearer "))
        if user is None or user[1] <= self.clock():
            return httpx.Response(401, json={"message": "401 Unauthorized"})
        user_id = user[0]
        if request.url.path == "/api/v4/user":
            return httpx.Response(200, json={"id": user_id, "username": self.users[user_id]})
        path = request.url.raw_path.decode()
        match = re.fullmatch(r"/api/v4/(groups|projects)/([^/]+)/members/all/(\d+)", path)
        level = self.levels.get((unquote(match.group(2)), int(match.group(3)))) if match else None
        if level is None:
            return httpx.Response(404, json={"message": "404 Not found"})
        member = {"id": user_id, "access_level": level, "state": "active"}
        return httpx.Response(200, json=member)


def build_app(
    tmp_path: Path,
    clock: Clock,
    gitlab: GitLabMock | None = None,
    *,
    real_pages: bool = False,
    **env: str,
) -> tuple[Starlette, Settings]:
    """The app on a GitLab mock, with stub pages or (``real_pages``) the read side's."""
    settings = make_settings(tmp_path, **env)
    transport = httpx.MockTransport(gitlab or GitLabMock(clock))
    app = create_app(
        settings,
        clients=Clients.for_gitlab(settings.gitlab_url, transport),
        pages=None if real_pages else stub_pages(),
        collectors=(),
        clock=clock,
    )
    return app, settings


def cookie_value(set_cookie: str) -> str:
    """The value part of a ``Set-Cookie`` header."""
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def signed_in(
    app: Starlette, role: str | None = "viewer", username: str = "alice"
) -> tuple[Session, str]:
    """A session made directly in the app's store, and its cookie value."""
    sessions: SessionStore = app.state.sessions
    tokens = Tokens(
        access_token=secrets.token_hex(32),
        refresh_token=secrets.token_hex(32),
        expires_at=sessions._clock() + 7200,
    )
    session = sessions.create(user_id=7, username=username, role=role, tokens=tokens)  # type: ignore[arg-type]
    return session, cookie_value(sessions.cookie(session))


class AppClient(httpx.AsyncClient):
    """A browser on one app; ``app`` lets a test look into the app's state."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
        self.app = app


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[AppClient]:
    """A client on the app in-process, the app's lifespan running around it, as a browser on
    the public URL (https, so Secure cookies are kept)."""
    async with app.router.lifespan_context(app), AppClient(app) as client:
        yield client
