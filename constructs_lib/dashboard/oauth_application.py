"""The dashboard's GitLab OAuth application, created through GitLab's API.

An instance-wide application (``POST /applications``), which only an administrator's token may
create. Its id and secret live in Terraform state; the secret goes from there into the
dashboard's Secret and nowhere else. The redirect URI is derived from the public host, so it
always matches what the app sends.

It needs the ``gitlab`` extra: ``pip install 'attic-iac-constructs[gitlab]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from constructs import Construct

from constructs_lib.validation import raise_if_problems

try:
    from cdktf_cdktf_provider_gitlab.application import Application
except ModuleNotFoundError as missing:  # the optional provider is not installed
    raise ModuleNotFoundError(
        f"{__name__} needs the GitLab provider ({missing.name}): "
        "pip install 'attic-iac-constructs[gitlab]'",
        name=missing.name,
    ) from missing

__all__ = [
    "CALLBACK_PATH",
    "SCOPES",
    "DashboardOAuthApplication",
    "DashboardOAuthApplicationProps",
]

CALLBACK_PATH = "/auth/callback"
"""The app's OAuth callback: the redirect URI is the public URL followed by it."""
SCOPES = ("read_user", "read_api", "api")
"""The scopes the application is registered with. Sign-in asks for ``read_user`` and
``read_api``; an operator's step-up to make a change asks for ``api``, and GitLab lets an
authorization request only scopes the application is registered with. Registering a scope grants
nothing until a user consents to it."""
KNOWN_SCOPES = frozenset(
    {"api", "read_api", "read_user", "read_repository", "write_repository", "openid", "profile"}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class DashboardOAuthApplicationProps:
    """Props of :class:`DashboardOAuthApplication`.

    Attributes:
        name: the application's name, shown to users when they authorize it.
        public_url: the dashboard's ``https://`` base URL; the redirect URI is
            ``<public_url>/auth/callback``.
        scopes: scopes it is registered with. Default ``read_user read_api api``.
    """

    name: str
    public_url: str
    scopes: Sequence[str] = SCOPES


class DashboardOAuthApplication(Construct):
    """A confidential OAuth application for the dashboard.

    Needs the ``gitlab`` extra and a GitLab provider in the stack configured with an
    administrator's token (instance-wide applications are an administrator's). Creates the
    ``gitlab_application`` (child id ``Default``, so the construct's own address) with the
    redirect URI ``<public_url>/auth/callback``.

    Attributes:
        redirect_url: the registered redirect URI.
        client_id: the application id (a reference).
        client_secret: its secret (a reference to a sensitive attribute).

    Example:
        ```python
        from constructs_lib.dashboard.oauth_application import (
            DashboardOAuthApplication,
            DashboardOAuthApplicationProps,
        )

        application = DashboardOAuthApplication(
            stack,
            "OAuthApplication",
            DashboardOAuthApplicationProps(
                name="Acme runner dashboard",
                public_url="https://runners.example.com",
            ),
        )
        # RunnerDashboardProps.oauth_client_secret, and DASHBOARD_OAUTH_CLIENT_ID in its settings
        application.client_secret, application.client_id
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: DashboardOAuthApplicationProps
    ) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "DashboardOAuthApplication",
            [
                "" if props.name.strip() else "name: required",
                ""
                if props.public_url.startswith("https://") and not props.public_url.endswith("/")
                else f"public_url: {props.public_url!r} must be https://host, without a "
                "trailing '/'",
                "" if props.scopes else "scopes: at least one is required",
                *(
                    f"scopes: {s!r} is not an OAuth scope the dashboard uses"
                    for s in props.scopes
                    if s not in KNOWN_SCOPES
                ),
            ],
        )
        self.redirect_url = f"{props.public_url}{CALLBACK_PATH}"
        application = Application(
            self,
            "Default",
            name=props.name,
            redirect_url=self.redirect_url,
            scopes=list(props.scopes),
            confidential=True,
        )
        self.client_id: str = application.application_id
        self.client_secret: str = application.secret
