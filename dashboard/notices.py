"""Small self-contained HTML pages for sign-in problems, "no access" and "signed out".

They depend on no template, so the gate and the sign-in routes can answer even when a page
template is broken; every value is escaped, and none carries a token.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse


def notice(
    title: str,
    message: str,
    *,
    status: int,
    link: tuple[str, str] | None = None,
    logout_csrf: str | None = None,
) -> HTMLResponse:
    """A page with a title, a message, an optional link (href, text) and, for a signed-in
    user, a sign-out button carrying the session's CSRF token."""
    parts = [f"<h1>{escape(title)}</h1>", f"<p>{escape(message)}</p>"]
    if link is not None:
        parts.append(f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>')
    if logout_csrf is not None:
        parts.append(
            '<form method="post" action="/auth/logout">'
            f'<input type="hidden" name="csrf_token" value="{escape(logout_csrf)}">'
            '<button type="submit">Sign out</button></form>'
        )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · runner dashboard</title>"
        '<link rel="stylesheet" href="/static/css/dashboard.css"></head>'
        f'<body><main class="notice">{"".join(parts)}</main></body></html>'
    )
    return HTMLResponse(body, status_code=status)
