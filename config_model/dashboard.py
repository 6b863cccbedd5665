"""The ``dashboard:`` section: the runner dashboard (stack dashboard-<env>) - who may see it, where
it reads its data, how it is reached, and its size.

Nothing here is secret: the OAuth client secret and the GitLab read token arrive as
``TF_VAR_dashboard_oauth_client_secret`` / ``TF_VAR_dashboard_gitlab_read_token``, and the
session key is generated into Terraform state. The namespaces the dashboard watches are not
configured here: :func:`config_model.wiring.dashboard_namespaces` derives them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from config_model.attic import AtticIngress
from config_model.base import (
    Cidr,
    EndpointUrl,
    Hostname,
    K8sName,
    Resources,
    StrictModel,
    digits,
    resources_field,
)

# GitLab's access levels (docs "Roles and permissions"; the members API's access_level).
ACCESS_LEVELS: dict[str, int] = {
    "guest": 10,
    "planner": 15,
    "reporter": 20,
    "developer": 30,
    "maintainer": 40,
    "owner": 50,
}
AccessLevel = Literal["guest", "planner", "reporter", "developer", "maintainer", "owner"]

_PATH_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_GROUP = re.compile(rf"^([1-9][0-9]*|instance|{_PATH_PART}(/{_PATH_PART})*)$")
_PROJECT = re.compile(rf"^([1-9][0-9]*|{_PATH_PART}(/{_PATH_PART})+)$")
_FILE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
# Prometheus' duration syntax (a positive one): 30m, 2h, 1h30m, 1d.
PROMETHEUS_DURATION = r"^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"


def _group(value: str) -> str:
    if not _GROUP.match(value) or (value.isdigit() and value.startswith("0")):
        raise ValueError(
            "must be a group id (digits), a group's full path such as acme/platform, or "
            "'instance' (every runner of the instance; needs an administrator's read token)"
        )
    return value


def _project(value: str) -> str:
    if not _PROJECT.match(value) or (value.isdigit() and value.startswith("0")):
        raise ValueError("must be a project id (digits) or its full path such as acme/attic-iac")
    return value


def _file(value: str) -> str:
    if not _FILE.match(value) or ".." in value.split("/"):
        raise ValueError("must be a relative path in the repository, e.g. config/organization.yaml")
    return value


def _branch(value: str) -> str:
    if not _BRANCH.match(value) or ".." in value or value.endswith(("/", ".lock")):
        raise ValueError("must be a branch name such as main")
    return value


GroupRef = Annotated[str, BeforeValidator(digits), AfterValidator(_group)]
ProjectRef = Annotated[str, BeforeValidator(digits), AfterValidator(_project)]


class DashboardOAuth(StrictModel):
    """The GitLab OAuth application users sign in with."""

    client_id: str | None = Field(
        default=None,
        pattern=r"^\S+$",
        description="The application's ID (GitLab: Applications, 'Application ID'); its secret "
        "comes from TF_VAR_dashboard_oauth_client_secret. Leave it out with create_application.",
    )
    create_application: bool = Field(
        default=False,
        description="Create the application with the GitLab provider (redirect URI "
        "https://<host>/auth/callback, scopes read_user read_api api, confidential); its id "
        "and secret stay in Terraform state. Instance applications need an administrator's "
        "token in TF_VAR_gitlab_token (or GITLAB_TOKEN).",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class EffectiveIngress:
    """The dashboard's ingress settings with attic's filled in where the dashboard sets none."""

    controller: Literal["traefik", "nginx"]
    class_name: str | None
    controller_namespace: str
    cluster_issuer: str | None
    acme_http01: bool
    tls_secret: str | None


class DashboardIngress(StrictModel):
    """Public HTTPS access. Unset keys take attic.ingress's value (one controller serves both)."""

    enabled: bool = Field(
        default=True,
        description="Create the Ingress. false: reach the Service through your own proxy "
        "(the public URL is still https://<host>).",
    )
    controller: Literal["traefik", "nginx"] | None = Field(
        default=None, description="Default: attic.ingress.controller."
    )
    class_name: K8sName | None = Field(
        default=None,
        description="Default: attic.ingress.class_name when the controller is the same, else "
        "the controller's name.",
    )
    controller_namespace: K8sName | None = Field(
        default=None,
        description="Namespace of the controller pods (allowed in on the app port). Default: "
        "attic.ingress.controller_namespace.",
    )
    cluster_issuer: K8sName | None = Field(
        default=None,
        description="cert-manager ClusterIssuer of the certificate. Default: "
        "attic.ingress.cluster_issuer.",
    )
    acme_http01: bool | None = Field(
        default=None,
        description="The issuer solves ACME HTTP-01: its solver pods get the controller in on "
        "8089. Default: attic.ingress.acme_http01.",
    )
    tls_secret: K8sName | None = Field(
        default=None,
        description="An existing TLS Secret in the dashboard's namespace instead of "
        "cert-manager (then no issuer and no HTTP-01 opening).",
    )

    def effective(self, attic: AtticIngress) -> EffectiveIngress:
        """These settings with attic.ingress's where unset."""
        controller = self.controller or attic.controller
        same = controller == attic.controller
        return EffectiveIngress(
            controller=controller,
            class_name=self.class_name or (attic.class_name if same else None),
            controller_namespace=self.controller_namespace or attic.controller_namespace,
            cluster_issuer=None
            if self.tls_secret
            else (self.cluster_issuer or attic.cluster_issuer),
            acme_http01=False
            if self.tls_secret
            else (attic.acme_http01 if self.acme_http01 is None else self.acme_http01),
            tls_secret=self.tls_secret,
        )


class Dashboard(StrictModel):
    """The runner dashboard (stack dashboard-<env>): a read-only view of the fleet, signed in
    with GitLab."""

    enabled: bool = Field(
        default=False,
        description="Deploy the dashboard. Needs gitlab_group, config_project and "
        "oauth.client_id (or oauth.create_application).",
    )
    namespace: K8sName = Field(default="runner-dashboard", description="Its own namespace.")
    host: Hostname | None = Field(
        default=None, description="Public host. Default: runners.<environment domain>."
    )
    gitlab_group: GroupRef | None = Field(
        default=None,
        description="Group (id or full path) whose runners are shown; its members with "
        "viewer_min_access or more may sign in. 'instance': every runner (an administrator's "
        "read token).",
    )
    config_project: ProjectRef | None = Field(
        default=None,
        description="Project (id or full path) holding organization.yaml; its Maintainers "
        "and Owners are the dashboard's operators.",
    )
    config_file: Annotated[str, AfterValidator(_file)] = Field(
        default="config/organization.yaml",
        description="Path of organization.yaml in config_project.",
    )
    config_branch: Annotated[str, AfterValidator(_branch)] = Field(
        default="main", description="config_project's default branch."
    )
    oauth: DashboardOAuth = Field(default_factory=DashboardOAuth)
    viewer_min_access: AccessLevel = Field(
        default="reporter",
        description="Lowest role in gitlab_group that may see the dashboard.",
    )
    prometheus_url: EndpointUrl | None = Field(
        default=None,
        description="Prometheus base URL for the metrics panels, e.g. "
        "http://prometheus-operated.monitoring.svc:9090 (egress is opened to that namespace, "
        "or to any address for an outside URL). Unset: those panels say 'not configured'.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Pods; more than one adds a PodDisruptionBudget, zone/node spread and "
        "sticky sessions at the ingress (sessions live in each pod's memory).",
    )
    resources: Resources = resources_field("100m", "192Mi", "1", "512Mi")
    api_server_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="Where the pods may reach the Kubernetes API (ports 443 and 6443). Its "
        "address is cluster-specific: narrow this to it (kubectl get endpoints kubernetes).",
    )
    drift_alert_after: Annotated[str, Field(pattern=PROMETHEUS_DURATION, min_length=2)] = Field(
        default="2h",
        description="Alert when the dashboard has seen drift between the config and the "
        "fleet for this long (Prometheus duration; with monitoring.prometheus_operator).",
    )
    ingress: DashboardIngress = Field(default_factory=DashboardIngress)
