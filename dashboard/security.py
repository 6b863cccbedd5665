"""HTTP-level protection: security headers on every response, the deny-by-default gate in front
of every route, and the CSRF check for forms.

The gate names the few public routes explicitly (:data:`PUBLIC_ROUTES`); every other route, and
any path no route matches, needs a live session: pages redirect to sign-in, ``/api/*`` answers
401 JSON, and a signed-in user without a role gets a 403 page. Handlers find the session in
``request.state.session``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.notices import notice
from dashboard.session import COOKIE, Session, SessionStore

# Route names (not paths) anyone may reach; a test walks app.routes against this list.
PUBLIC_ROUTES: Final = frozenset({"healthz", "readyz", "auth_login", "auth_callback", "static"})
# Routes a signed-in user without a role still reaches (to sign out).
ROLELESS_ROUTES: Final = frozenset({"auth_logout"})
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

log = logging.getLogger(__name__)


def matched_route(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route the router will pick for ``scope`` (a full match, else a partial one such as
    a wrong method), without changing ``scope``."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def security_headers(gitlab_url: str) -> dict[str, str]:
    """The headers every response carries; forms may post to GitLab (sign-in, step-up)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(gitlab_url))
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action 'self' {origin}"
    )
    return {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
        "interest-cohort=()",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "strict-transport-security": "max-age=31536000; includeSubDomains",
    }


class SecurityHeaders:
    """Adds :func:`security_headers` to every HTTP response, errors included (an exception
    below becomes a 500 sent from here), and ``Cache-Control: no-store`` to all but static
    files."""

    def __init__(self, app: ASGIApp, *, gitlab_url: str) -> None:
        self.app = app
        self.headers = security_headers(gitlab_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                if not static or "cache-control" not in headers:
                    headers["cache-control"] = "no-cache" if static else "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                response = PlainTextResponse("Internal Server Error", status_code=500)
                await response(scope, receive, send_with_headers)
            raise


def _session_cookie(scope: Scope) -> str | None:
    raw = Headers(scope=scope).get("cookie")
    return cookie_parser(raw).get(COOKIE) if raw else None


def _cross_site(scope: Scope, public_url: str) -> bool:
    """A state-changing request another site made the browser send."""
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin not in (None, "null") and origin.rstrip("/") != public_url:
        return True
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    # Browsers send "Origin: null" for a same-origin form too under our Referrer-Policy
    # no-referrer (Fetch, "append a request Origin header"), but then also Sec-Fetch-Site,
    # which no page can forge; "null" without it cannot be told apart from a cross-site one.
    return origin == "null"


class Gate:
    """Deny by default: resolves the session, re-checks its role when due (``recheck``), and
    answers for the route when there is no session, no role, or a cross-site write."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        sessions: SessionStore,
        recheck: Callable[[Session], Awaitable[Session | None]],
        public_url: str,
    ) -> None:
        self.app = app
        self.routes = routes
        self.sessions = sessions
        self.recheck = recheck
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = matched_route(self.routes, scope)
        name = getattr(route, "name", None)
        cookie = _session_cookie(scope)
        public = name in PUBLIC_ROUTES
        session = self.sessions.load(cookie, touch=not public)
        if session is not None and not public:
            session = await self.recheck(session)
        scope.setdefault("state", {})["session"] = session
        response = None if public else self._refusal(scope, name, session)
        if response is not None:
            if cookie and session is None:
                response.headers.append("set-cookie", self.sessions.clear_cookie())
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, name: str | None, session: Session | None) -> Response | None:
        api = scope["path"].startswith("/api/")
        if session is None:
            if api:
                return JSONResponse({"error": "not signed in"}, status_code=401)
            if scope["method"] in ("GET", "HEAD"):
                path = scope["path"]
                query = scope.get("query_string", b"").decode("latin-1")
                target = f"{path}?{query}" if query else path
                return RedirectResponse(
                    "/auth/login?" + urlencode({"next": target}), status_code=302
                )
            return RedirectResponse("/auth/login", status_code=302)
        if scope["method"] in UNSAFE_METHODS and _cross_site(scope, self.public_url):
            log.warning("cross-site %s refused", scope["method"], extra={"user": session.username})
            return _forbidden(api, "cross-site request refused", None)
        if session.role is None and name not in ROLELESS_ROUTES:
            return _forbidden(
                api,
                "Your GitLab account has no access to this dashboard. Ask a maintainer of the "
                "runners group to add you.",
                session.csrf_token,
            )
        return None


def _forbidden(api: bool, message: str, csrf: str | None) -> Response:
    if api:
        return JSONResponse({"error": message}, status_code=403)
    return notice("No access", message, status=403, logout_csrf=csrf)


async def csrf_valid(request: Request, session: Session) -> bool:
    """The form field or header carries this session's CSRF token."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    return session.csrf_ok(token)
