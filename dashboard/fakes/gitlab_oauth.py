"""The fake GitLab's OAuth 2 provider (Doorkeeper's behaviour): the consent page, codes bound
to the client, redirect URI and PKCE challenge, and tokens that expire and rotate.

Errors follow RFC 6749: an unknown client or a redirect URI that is not registered exactly
gets an error page (never a redirect); other authorization errors go back to the client with
``error`` and ``state``; the token endpoint answers JSON errors.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from dashboard.fakes.gitlab_state import (
    ACCESS_TOKEN_LIFETIME,
    CODE_LIFETIME,
    AuthCode,
    GitLabState,
    OAuthApp,
    Token,
)

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
)


class RefusedError(Exception):
    """Authorization refused; ``redirect`` says whether the client may be told."""

    def __init__(self, error: str, description: str, *, redirect: bool) -> None:
        super().__init__(description)
        self.error, self.description, self.redirect = error, description, redirect


def _back(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(params)}", status_code=302)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status,
    )


def _check(gitlab: GitLabState, params: dict[str, str]) -> tuple[OAuthApp, frozenset[str]]:
    """The app and the scopes granted, or :class:`RefusedError`."""
    app = gitlab.apps.get(params.get("client_id", ""))
    if app is None:
        raise RefusedError("invalid_client", INVALID_CLIENT, redirect=False)
    if params.get("redirect_uri") != app.redirect_uri:
        raise RefusedError(
            "invalid_redirect_uri",
            "The redirect URI included is not valid.",
            redirect=False,
        )
    if params.get("response_type") != "code":
        raise RefusedError(
            "unsupported_response_type",
            "The authorization server does not support this response type.",
            redirect=True,
        )
    scopes = frozenset(params.get("scope", "").split()) or app.scopes
    if not scopes <= app.scopes:
        raise RefusedError(
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
            redirect=True,
        )
    if not params.get("code_challenge"):
        raise RefusedError("invalid_request", "Code challenge is required.", redirect=True)
    if params.get("code_challenge_method") != "S256":
        raise RefusedError(
            "invalid_request",
            "The code challenge method must be S256.",
            redirect=True,
        )
    return app, scopes


async def authorize(request: Request) -> Response:
    """GET: the consent page for the signed-in user; POST: the user's answer."""
    gitlab: GitLabState = request.app.state.gitlab
    if request.method == "POST":
        params = {k: str(v) for k, v in (await request.form()).items()}
    else:
        params = dict(request.query_params)
    with gitlab.lock:
        try:
            app, scopes = _check(gitlab, params)
        except RefusedError as refused:
            if not refused.redirect:
                return _page(
                    "An error has occurred",
                    f"<p>{html.escape(refused.error)}: {html.escape(refused.description)}</p>",
                    400,
                )
            answer = {"error": refused.error, "error_description": refused.description}
            if "state" in params:
                answer["state"] = params["state"]
            return _back(params["redirect_uri"], answer)
        user = gitlab.users.get(gitlab.signed_in or 0)
        if user is None:
            return _page("Sign in", "<p>You need to sign in or sign up before continuing.</p>", 401)
        if request.method == "GET":
            return _consent(gitlab, app, scopes, user.username, params)
        return _answer(gitlab, app, scopes, user.id, params)


def _answer(
    gitlab: GitLabState,
    app: OAuthApp,
    scopes: frozenset[str],
    user_id: int,
    params: dict[str, str],
) -> Response:
    """The user's Authorize or Deny, from a form this fake served."""
    form_token = params.get("authenticity_token", "")
    if form_token not in gitlab.form_tokens:
        return _page("The change you requested was rejected", "<p>422</p>", 422)
    gitlab.form_tokens.discard(form_token)
    state = {"state": params["state"]} if "state" in params else {}
    if params.get("commit") != "Authorize":
        return _back(
            app.redirect_uri,
            {
                "error": "access_denied",
                "error_description": "The resource owner or authorization server denied "
                "the request.",
                **state,
            },
        )
    code = secrets.token_hex(32)
    gitlab.codes[code] = AuthCode(
        client_id=app.client_id,
        redirect_uri=app.redirect_uri,
        user_id=user_id,
        scopes=scopes,
        challenge=params["code_challenge"],
        expires_at=gitlab.clock() + CODE_LIFETIME,
    )
    return _back(app.redirect_uri, {"code": code, **state})


def _consent(
    gitlab: GitLabState,
    app: OAuthApp,
    scopes: frozenset[str],
    username: str,
    params: dict[str, str],
) -> HTMLResponse:
    form_token = secrets.token_urlsafe(24)
    gitlab.form_tokens.add(form_token)
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _FIELDS
        if name in params
    )
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sorted(scopes))
    return _page(
        f"Authorize {app.name} to use your account?",
        f"<p>An application called {html.escape(app.name)} is requesting access to your "
        f"GitLab account <strong>@{html.escape(username)}</strong>.</p>"
        f"<p>This application will be able to:</p><ul>{items}</ul>"
        f'<form method="post" action="/oauth/authorize">{hidden}'
        f'<input type="hidden" name="authenticity_token" value="{form_token}">'
        '<button type="submit" name="commit" value="Authorize">Authorize</button> '
        '<button type="submit" name="commit" value="Deny">Deny</button></form>',
    )


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _client(gitlab: GitLabState, request: Request, form: dict[str, str]) -> OAuthApp | None:
    """The client, authenticated by HTTP Basic or by the form's client_id/client_secret."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
    app = gitlab.apps.get(client_id)
    if app is None or not secrets.compare_digest(app.secret, secret):
        return None
    return app


def _tokens_json(token: Token, gitlab: GitLabState) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": token.value,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": token.refresh,
        "scope": " ".join(sorted(token.scopes)),
        "created_at": int(gitlab.clock()),
    }
    return JSONResponse(body, headers={"cache-control": "no-store", "pragma": "no-cache"})


async def token(request: Request) -> Response:
    """``authorization_code`` (with the PKCE verifier) and ``refresh_token`` grants."""
    gitlab: GitLabState = request.app.state.gitlab
    form = {k: str(v) for k, v in (await request.form()).items()}
    with gitlab.lock:
        app = _client(gitlab, request, form)
        if app is None:
            return _token_error("invalid_client", INVALID_CLIENT, 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return _code_grant(gitlab, app, form)
        if grant == "refresh_token":
            return _refresh_grant(gitlab, app, form)
        return _token_error(
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )


def _code_grant(gitlab: GitLabState, app: OAuthApp, form: dict[str, str]) -> Response:
    code = gitlab.codes.pop(form.get("code", ""), None)
    valid = (
        code is not None
        and code.client_id == app.client_id
        and code.expires_at > gitlab.clock()
        and form.get("redirect_uri") == code.redirect_uri
    )
    if code is None or not valid:
        return _token_error("invalid_grant", INVALID_GRANT)
    verifier = form.get("code_verifier", "")
    digest = hashlib.sha256(verifier.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    if not _VERIFIER.match(verifier) or not secrets.compare_digest(expected, code.challenge):
        return _token_error("invalid_grant", INVALID_GRANT)
    return _tokens_json(gitlab.issue_tokens(code.user_id, code.scopes, app.client_id), gitlab)


def _refresh_grant(gitlab: GitLabState, app: OAuthApp, form: dict[str, str]) -> Response:
    """A new token pair; the refresh token used and its access token stop working."""
    old = next(
        (
            t
            for t in gitlab.tokens.values()
            if t.refresh is not None and t.refresh == form.get("refresh_token")
        ),
        None,
    )
    if old is None or old.revoked or old.client_id != app.client_id:
        return _token_error("invalid_grant", INVALID_GRANT)
    old.revoked = True
    return _tokens_json(gitlab.issue_tokens(old.user_id, old.scopes, app.client_id), gitlab)


async def revoke(request: Request) -> Response:
    """RFC 7009: revoke an access or refresh token; unknown tokens are not an error."""
    gitlab: GitLabState = request.app.state.gitlab
    form = {k: str(v) for k, v in (await request.form()).items()}
    with gitlab.lock:
        app = _client(gitlab, request, form)
        if app is None:
            return _token_error("invalid_client", INVALID_CLIENT, 401)
        value = form.get("token", "")
        for candidate in gitlab.tokens.values():
            if candidate.client_id == app.client_id and value in (
                candidate.value,
                candidate.refresh,
            ):
                candidate.revoked = True
    return JSONResponse({})
