"""A fake GitLab: OAuth 2 sign-in pages and the REST endpoints the dashboard calls, answered
from state a test (or the demo) sets and changes while the app runs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from dashboard.fakes import gitlab_api, gitlab_oauth
from dashboard.fakes.gitlab_state import GitLabState


class FakeGitLab(GitLabState):
    """GitLab state plus the ASGI app that serves it."""

    def build_app(self) -> Starlette:
        """A new ASGI app answering as this GitLab (one per server)."""
        app = Starlette(
            routes=[
                Route("/oauth/authorize", gitlab_oauth.authorize, methods=["GET", "POST"]),
                Route("/oauth/token", gitlab_oauth.token, methods=["POST"]),
                Route("/oauth/revoke", gitlab_oauth.revoke, methods=["POST"]),
                Route(
                    "/api/v4/{rest:path}",
                    gitlab_api.dispatch,
                    methods=["GET", "POST", "PUT", "DELETE"],
                ),
            ]
        )
        app.state.gitlab = self
        return app
