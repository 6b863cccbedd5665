"""Sign-in with GitLab: OAuth 2 authorization code + PKCE (S256) + ``state``, tokens kept
server-side, roles resolved at sign-in and re-checked every ``DASHBOARD_ROLE_RECHECK``.

A login is pending in a server-side table keyed by ``state`` (single use, ten minutes) and bound
to the browser that started it by a short-lived encrypted cookie, so a callback URL sent to
someone else (login CSRF) is refused. The token exchange, refresh and revocation happen here,
with the client secret from its file; the browser only ever sees the session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx
from cryptography.fernet import InvalidToken
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.gitlab_client import GitLabClient, GitLabError
from dashboard.notices import notice
from dashboard.roles import GitLabUnavailableError, TokenRejectedError, resolve_role
from dashboard.security import csrf_valid
from dashboard.session import Clock, Session, SessionStore, Tokens, cookie_header, fernet_for
from dashboard.settings import Settings

SCOPES = "read_user read_api"
# Step-up (issue 18): an operator's first write asks GitLab for ``api`` as well, so sign-in
# itself never holds a token that can write.
WRITE_SCOPE = "api"
WRITE_SCOPES = f"{SCOPES} {WRITE_SCOPE}"
LOGIN_COOKIE = "__Host-dashboard-login"
LOGIN_TTL = 600
MAX_PENDING = 10_000
# After GitLab failed to answer a role re-check, ask again this soon rather than a full period.
RECHECK_RETRY = 30.0
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")

log = logging.getLogger(__name__)


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/``: never a scheme, a host, ``//host``,
    ``/\\host``, a control character or any of those percent-encoded (up to three levels)."""
    if not value or len(value) > 2048:
        return "/"
    decoded = value
    for _ in range(4):
        parts = urlsplit(decoded)
        if (
            not decoded.startswith("/")
            or decoded.startswith("//")
            or _CONTROL.search(decoded)
            or parts.scheme
            or parts.netloc
        ):
            return "/"
        decoded, previous = unquote(decoded), decoded
        if decoded == previous:
            break
    else:
        return "/"
    return "/" if value.startswith("/auth/") else value


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, kw_only=True)
class _Pending:
    verifier: str = field(repr=False)
    next: str
    scope: str
    binding: str = field(repr=False)
    expires_at: float


class OAuthError(Exception):
    """GitLab refused a grant (bad code, reused refresh token, revoked application)."""


class GitLabOAuth:
    """GitLab's OAuth endpoints and ``/api/v4/user``, spoken server-side."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, clock: Clock) -> None:
        self._http = http
        self._settings = settings
        self._clock = clock

    def authorize_url(self, *, state: str, verifier: str, scope: str = SCOPES) -> str:
        query = urlencode(
            {
                "client_id": self._settings.oauth_client_id,
                "redirect_uri": self._settings.redirect_uri,
                "response_type": "code",
                "state": state,
                "scope": scope,
                "code_challenge": _challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._settings.gitlab_url}/oauth/authorize?{query}"

    async def _token(self, grant: dict[str, str], requested: str) -> Tokens:
        """Tokens for ``grant``; their scopes are what GitLab says it granted (absent: the
        ``requested`` ones, RFC 6749 5.1)."""
        form = {
            "client_id": self._settings.oauth_client_id,
            "client_secret": self._settings.oauth_client_secret,
            "redirect_uri": self._settings.redirect_uri,
            **grant,
        }
        try:
            response = await self._http.post("/oauth/token", data=form)
        except httpx.HTTPError as exc:
            raise GitLabUnavailableError(f"{type(exc).__name__} on /oauth/token") from None
        if response.status_code >= 500:
            raise GitLabUnavailableError(f"HTTP {response.status_code} from /oauth/token")
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise OAuthError(str(body.get("error") or f"HTTP {response.status_code}"))
        lifetime = body.get("expires_in")
        granted = body.get("scope")
        return Tokens(
            scopes=frozenset((granted if isinstance(granted, str) else requested).split()),
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token") or grant.get("refresh_token"),
            expires_at=self._clock() + (lifetime if isinstance(lifetime, int) else 7200),
        )

    async def exchange(self, *, code: str, verifier: str, scope: str = SCOPES) -> Tokens:
        grant = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        return await self._token(grant, scope)

    async def refresh(self, tokens: Tokens) -> Tokens:
        """New tokens; GitLab rotates the refresh token, so the old one is dead after this."""
        if not tokens.refresh_token:
            raise TokenRejectedError("no refresh token")
        try:
            return await self._token(
                {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                " ".join(sorted(tokens.scopes)),
            )
        except OAuthError as exc:
            raise TokenRejectedError(f"refresh refused: {exc}") from None

    async def revoke(self, tokens: Tokens) -> None:
        """Best effort at sign-out: the token dies at GitLab too."""
        form = {
            "client_id": self._settings.oauth_client_id,
            "client_secret": self._settings.oauth_client_secret,
            "token": tokens.access_token,
        }
        try:
            await self._http.post("/oauth/revoke", data=form)
        except httpx.HTTPError as exc:
            log.warning("token revocation failed: %s", type(exc).__name__)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Auth:
    """The sign-in routes and the session re-check the gate calls on every request."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionStore,
        http: httpx.AsyncClient,
        gitlab: GitLabClient,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.oauth = GitLabOAuth(http, settings, clock)
        self._gitlab = gitlab
        self._clock = clock
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._binding = fernet_for(settings.session_key, "login binding")

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login, methods=["GET"], name="auth_login"),
            Route("/auth/callback", self.callback, methods=["GET"], name="auth_callback"),
            Route("/auth/logout", self.logout, methods=["POST"], name="auth_logout"),
        ]

    def _remember(self, pending: _Pending) -> str:
        now = self._clock()
        while self._pending and (
            len(self._pending) >= MAX_PENDING
            or next(iter(self._pending.values())).expires_at <= now
        ):
            self._pending.popitem(last=False)
        state = secrets.token_urlsafe(32)
        self._pending[state] = pending
        return state

    def _binding_of(self, request: Request) -> str | None:
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie:
            return None
        try:
            raw = self._binding.decrypt_at_time(
                cookie.encode(), ttl=LOGIN_TTL, current_time=int(self._clock())
            )
        except InvalidToken:
            return None
        return raw.decode()

    async def login(self, request: Request) -> Response:
        """Start a sign-in: remember state + verifier, bind them to this browser, go to GitLab.
        ``?scope=api`` is the step-up of a signed-in user whose token cannot write yet."""
        target = safe_next(request.query_params.get("next"))
        step_up = request.query_params.get("scope") == WRITE_SCOPE
        session: Session | None = request.state.session
        if session is not None and (not step_up or WRITE_SCOPE in session.tokens.scopes):
            return RedirectResponse(target, status_code=302)
        scope = WRITE_SCOPES if step_up else SCOPES
        binding = self._binding_of(request) or secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        state = self._remember(
            _Pending(
                verifier=verifier,
                next=target,
                scope=scope,
                binding=binding,
                expires_at=self._clock() + LOGIN_TTL,
            )
        )
        response = RedirectResponse(
            self.oauth.authorize_url(state=state, verifier=verifier, scope=scope), status_code=302
        )
        token = self._binding.encrypt_at_time(binding.encode(), int(self._clock())).decode()
        response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, token, max_age=LOGIN_TTL))
        return response

    async def _user(self, token: str) -> tuple[int, str]:
        """Who signed in: ``/api/v4/user`` with their new token."""
        try:
            user = await self._gitlab.with_token(token).current_user()
        except GitLabError as error:
            if error.status == 401:
                raise TokenRejectedError(error.message) from None
            raise GitLabUnavailableError(error.message) from None
        if not isinstance(user.get("id"), int):
            raise GitLabUnavailableError("GET /user: no user id")
        return user["id"], str(user.get("username") or user["id"])

    def _failed(self, message: str, *, status: int = 400) -> Response:
        response = notice(
            "Sign-in failed", message, status=status, link=("/auth/login", "Sign in again")
        )
        response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0))
        return response

    async def callback(self, request: Request) -> Response:
        """GitLab sent the browser back: check state and binding, exchange the code, resolve
        the role, open a session."""
        params = request.query_params
        pending = self._pending.pop(params.get("state") or "", None)  # single use
        if pending is None or pending.expires_at <= self._clock():
            return self._failed("This sign-in link expired or was already used.")
        binding = self._binding_of(request)
        if binding is None or not hmac.compare_digest(binding, pending.binding):
            log.warning("sign-in refused: the callback came to another browser than the login")
            return self._failed("This sign-in was started in another browser.")
        if params.get("error") or not params.get("code"):
            return self._failed("GitLab did not grant access (cancelled or refused).", status=403)
        try:
            tokens = await self.oauth.exchange(
                code=params["code"], verifier=pending.verifier, scope=pending.scope
            )
            user_id, username = await self._user(tokens.access_token)
            role = await resolve_role(
                self._gitlab, self.settings, token=tokens.access_token, user_id=user_id
            )
        except (OAuthError, TokenRejectedError) as exc:
            log.warning("sign-in refused by GitLab: %s", exc)
            return self._failed("GitLab refused the sign-in.")
        except GitLabUnavailableError as exc:
            log.warning("sign-in failed: GitLab unavailable (%s)", exc)
            return self._failed("GitLab did not answer; try again shortly.", status=502)
        earlier: Session | None = request.state.session
        if earlier is not None:  # a step-up replaces the browser's session, never adds one
            self.sessions.delete(earlier.id)
        session = self.sessions.create(user_id=user_id, username=username, role=role, tokens=tokens)
        log.info("signed in", extra={"user": username, "role": role or "none"})
        response = RedirectResponse(pending.next, status_code=302)
        response.headers.append("set-cookie", self.sessions.cookie(session))
        response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0))
        return response

    async def logout(self, request: Request) -> Response:
        """End the session here and its token at GitLab; needs the session's CSRF token."""
        session: Session = request.state.session
        if not await csrf_valid(request, session):
            return notice("Sign-out refused", "The form was stale; reload and retry.", status=403)
        self.sessions.delete(session.id)
        await self.oauth.revoke(session.tokens)
        log.info("signed out", extra={"user": session.username})
        response = notice(
            "Signed out", "You are signed out.", status=200, link=("/auth/login", "Sign in")
        )
        response.headers.append("set-cookie", self.sessions.clear_cookie())
        return response

    async def current(self, session: Session) -> Session | None:
        """``session`` with its role re-checked when due; None when GitLab says the user's
        token is dead. When GitLab is unreachable the last role holds and the check is
        retried in ``RECHECK_RETRY`` seconds."""
        recheck = self.settings.role_recheck
        if self._clock() - session.roles_checked_at < recheck:
            return session
        async with self.sessions.lock(session.id):
            latest = self.sessions.get(session.id)
            now = self._clock()
            if latest is None or now - latest.roles_checked_at < recheck:
                return latest  # signed out meanwhile, or another request just checked
            try:
                latest = await self._with_fresh_tokens(latest)
                role = await resolve_role(
                    self._gitlab,
                    self.settings,
                    token=latest.tokens.access_token,
                    user_id=latest.user_id,
                )
            except TokenRejectedError as exc:
                log.info("signing out %s: %s", latest.username, exc)
                self.sessions.delete(latest.id)
                return None
            except GitLabUnavailableError as exc:
                log.warning("role re-check of %s postponed: %s", latest.username, exc)
                latest = replace(latest, roles_checked_at=now - recheck + RECHECK_RETRY)
                self.sessions.save(latest)
                return latest
            if role != latest.role:
                log.info("role of %s is now %s", latest.username, role or "none")
            latest = replace(latest, role=role, roles_checked_at=now)
            self.sessions.save(latest)
            return latest

    async def _with_fresh_tokens(self, session: Session) -> Session:
        """``session`` with a live access token, refreshed (and saved) when it expired. Call
        under the session's lock: the refresh token is single-use."""
        if not session.tokens.expired(self._clock()):
            return session
        tokens = await self.oauth.refresh(session.tokens)
        session = replace(session, tokens=tokens)
        self.sessions.save(session)
        return session

    async def access_token(self, session: Session) -> str | None:
        """The user's live GitLab token for a call made on their behalf (issue 18's writes);
        None when it cannot be refreshed any more (the session then ends)."""
        async with self.sessions.lock(session.id):
            latest = self.sessions.get(session.id)
            if latest is None:
                return None
            try:
                return (await self._with_fresh_tokens(latest)).tokens.access_token
            except TokenRejectedError:
                self.sessions.delete(latest.id)
                return None
