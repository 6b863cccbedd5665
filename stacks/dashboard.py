"""dashboard-<env>: the runner dashboard - its namespace and network policy, read-only RBAC in
the namespaces it watches, its secrets as files, the Deployment, Service, Ingress and alerts.

Applied after runners-<env> and attic-<env>: its Roles live in their namespaces. Nothing is
read from another stack's state; the namespaces come from
:func:`config_model.wiring.dashboard_namespaces`, the URLs from the config. With
``dashboard.enabled`` false the stack is empty, so applying it removes a dashboard that was
switched off.

Inputs at plan time: ``TF_VAR_dashboard_image`` (``<repository>@sha256:<digest>``, which the
pipeline's ``dashboard-image`` job exports; no default, so a plan without it stops),
``TF_VAR_dashboard_oauth_client_secret`` (unless the stack creates the OAuth application) and
``TF_VAR_dashboard_gitlab_read_token``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cdktf import (
    Fn,
    TerraformOutput,
    TerraformStack,
    TerraformVariable,
)
from constructs import Construct

from config_model.dashboard import Dashboard, EffectiveIngress
from config_model.loader import ResolvedEnvironment
from config_model.wiring import dashboard_namespaces
from constructs_lib.dashboard.read_access import DashboardReadAccess, DashboardReadAccessProps
from constructs_lib.dashboard.runner_dashboard import (
    HTTP_PORT,
    METRICS_PORT,
    METRICS_PORT_NAME,
    STICKY_COOKIE,
    RunnerDashboard,
    RunnerDashboardProps,
    pod_labels,
)
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import (
    EVERY_NAMESPACE,
    Peer,
    Rule,
    TrafficPolicy,
    TrafficPolicyProps,
)
from constructs_lib.kubernetes.web_ingress import (
    WebIngress,
    WebIngressProps,
    traefik_sticky_service_annotations,
)
from stacks.attic_endpoints import url_port
from stacks.attic_storage import compute
from stacks.backend import gitlab_state_backend
from stacks.providers import cluster_providers, random_provider

NAME = "runner-dashboard"
IMAGE_VARIABLE = "dashboard_image"
# <repository>@sha256:<digest> and nothing else: an optional registry host (with a port), then
# lowercase path components (the OCI distribution spec's repository name), no tag.
IMAGE_PATTERN = (
    r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"@sha256:[0-9a-f]{64}$"
)
IMAGE_ERROR = (
    "The dashboard image must be <repository>@sha256:<64 hex digits>, e.g. "
    "registry.example.com/acme/attic-iac/dashboard@sha256:<digest>; a tag is not accepted. "
    "The pipeline's dashboard-image job exports it as TF_VAR_dashboard_image."
)
# The Kubernetes API server is not a pod; these are the ports API servers listen on.
API_SERVER_PORTS = (443, 6443)
_SERVICE_HOST = re.compile(r"^[a-z0-9-]+\.([a-z0-9-]+)\.svc(\.cluster\.local)?$")


def dashboard_host(env: ResolvedEnvironment) -> str:
    """The dashboard's public host name."""
    return env.config.dashboard.host or f"runners.{env.settings.domain}"


def prometheus_namespace(url: str) -> str | None:
    """The namespace of an in-cluster Prometheus URL (``<service>.<namespace>.svc``), else None."""
    found = _SERVICE_HOST.match(urlsplit(url).hostname or "")
    return found[1] if found else None


class DashboardStack(TerraformStack):
    """One environment's runner dashboard."""

    def __init__(
        self, scope: Construct, stack_id: str, env: ResolvedEnvironment, *, config_text: str
    ) -> None:
        super().__init__(scope, stack_id)
        config = env.config
        dashboard = config.dashboard
        gitlab_state_backend(self, config.gitlab, stack_id)
        cluster_providers(self, env.settings.cluster_context, helm=False)
        if not dashboard.enabled:
            return
        random_provider(self)
        image = TerraformVariable(
            self,
            IMAGE_VARIABLE,
            type="string",
            nullable=False,
            description="Dashboard image by digest, <repository>@sha256:<digest> "
            "(TF_VAR_dashboard_image; the pipeline's dashboard-image job sets it)",
        )
        image.add_validation(
            condition=Fn.can(Fn.regex(IMAGE_PATTERN, image.string_value)),
            error_message=IMAGE_ERROR,
        )
        read_token = TerraformVariable(
            self,
            "dashboard_gitlab_read_token",
            type="string",
            sensitive=True,
            nullable=False,
            description="GitLab token with read_api that lists the group's runners and jobs "
            "(TF_VAR_dashboard_gitlab_read_token)",
        )
        host = dashboard_host(env)
        public_url = f"https://{host}"
        client_id, client_secret = self._oauth_client(env, public_url)
        ingress = dashboard.ingress.effective(config.attic.ingress)

        namespace = SecureNamespace(
            self,
            "Namespace",
            SecureNamespaceProps(name=dashboard.namespace, deny_egress=True),
        )
        ns = namespace.name
        policy = TrafficPolicy(
            self,
            "Policy",
            TrafficPolicyProps(
                name=NAME,
                namespace=ns,
                pod_selector=pod_labels(NAME),
                ingress=_ingress_rules(env, ingress),
                egress=_egress_rules(env),
            ),
        )
        watched = dashboard_namespaces(config)
        access = DashboardReadAccess(
            self,
            "ReadAccess",
            DashboardReadAccessProps(
                account=NAME,
                account_namespace=dashboard.namespace,
                namespaces=watched,
                labels=pod_labels(NAME),
            ),
        )
        sticky = dashboard.replicas > 1
        app = RunnerDashboard(
            self,
            "Dashboard",
            RunnerDashboardProps(
                name=NAME,
                namespace=ns,
                image=image.string_value,
                settings=_settings(env, public_url, client_id),
                config_text=config_text,
                oauth_client_secret=client_secret,
                gitlab_read_token=read_token.string_value,
                replicas=dashboard.replicas,
                resources=compute(dashboard.resources),
                service_annotations=traefik_sticky_service_annotations(STICKY_COOKIE)
                if sticky and ingress.controller == "traefik"
                else {},
                depends_on=[*namespace.policies, policy.policy, *access.resources],
            ),
        )
        if dashboard.ingress.enabled:
            WebIngress(
                self,
                "Ingress",
                WebIngressProps(
                    name=NAME,
                    namespace=ns,
                    host=host,
                    service_name=app.service_name,
                    service_port=HTTP_PORT,
                    controller=ingress.controller,
                    controller_namespace=ingress.controller_namespace,
                    class_name=ingress.class_name,
                    cluster_issuer=ingress.cluster_issuer,
                    tls_secret=ingress.tls_secret,
                    acme_http01=ingress.acme_http01,
                    traffic="events",
                    sticky_cookie=STICKY_COOKIE if sticky else None,
                ),
            )
        if config.monitoring.prometheus_operator:
            _monitoring(self, env, ns=dashboard.namespace, after=namespace)
        outputs = {
            "url": (public_url, "The dashboard"),
            "oauth_redirect_uri": (
                f"{public_url}/auth/callback",
                "Redirect URI of the GitLab OAuth application",
            ),
            "namespace": (dashboard.namespace, "The dashboard's namespace"),
            "watched_namespaces": (watched, "Namespaces it may read (read-only Roles)"),
        }
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)

    def _oauth_client(self, env: ResolvedEnvironment, public_url: str) -> tuple[str, str]:
        """(client id, client secret): the created application's, or the configured id and
        ``TF_VAR_dashboard_oauth_client_secret``."""
        config = env.config
        oauth = config.dashboard.oauth
        if oauth.create_application:
            from constructs_lib.dashboard.oauth_application import (
                DashboardOAuthApplication,
                DashboardOAuthApplicationProps,
            )
            from stacks.providers import gitlab_provider

            gitlab_provider(
                self,
                config.gitlab.url,
                purpose="GitLab administrator token that creates the dashboard's OAuth application",
            )
            application = DashboardOAuthApplication(
                self,
                "OAuthApplication",
                DashboardOAuthApplicationProps(
                    name=f"{config.organization.full_name} runner dashboard ({env.name})",
                    public_url=public_url,
                ),
            )
            TerraformOutput(
                self,
                "oauth_application_id",
                value=application.client_id,
                description="The OAuth application the stack created",
            )
            return application.client_id, application.client_secret
        secret = TerraformVariable(
            self,
            "dashboard_oauth_client_secret",
            type="string",
            sensitive=True,
            nullable=False,
            description="Secret of the GitLab OAuth application "
            "(TF_VAR_dashboard_oauth_client_secret)",
        )
        assert oauth.client_id is not None  # config_model.dashboard_rules
        return oauth.client_id, secret.string_value


def _settings(env: ResolvedEnvironment, public_url: str, client_id: str) -> dict[str, str]:
    """The app's DASHBOARD_* variables: where it is, whom it serves, where it reads."""
    config = env.config
    dashboard: Dashboard = config.dashboard
    assert dashboard.gitlab_group is not None  # config_model.dashboard_rules
    assert dashboard.config_project is not None
    settings = {
        "DASHBOARD_ENVIRONMENT": env.name,
        "DASHBOARD_PUBLIC_URL": public_url,
        "DASHBOARD_GITLAB_URL": config.gitlab.url,
        "DASHBOARD_GITLAB_GROUP": dashboard.gitlab_group,
        "DASHBOARD_CONFIG_PROJECT": dashboard.config_project,
        "DASHBOARD_CONFIG_FILE": dashboard.config_file,
        "DASHBOARD_CONFIG_BRANCH": dashboard.config_branch,
        "DASHBOARD_OAUTH_CLIENT_ID": client_id,
        "DASHBOARD_VIEWER_MIN_ACCESS": dashboard.viewer_min_access,
    }
    if dashboard.prometheus_url:
        settings["DASHBOARD_PROMETHEUS_URL"] = dashboard.prometheus_url
    return settings


def _ingress_rules(env: ResolvedEnvironment, ingress: EffectiveIngress) -> list[Rule]:
    """The controller on the app port; Prometheus on the metrics port."""
    config = env.config
    rules = []
    if config.dashboard.ingress.enabled:
        rules.append(Rule(peers=[Peer(namespace=ingress.controller_namespace)], ports=[HTTP_PORT]))
    if config.monitoring.prometheus_operator:
        url = config.dashboard.prometheus_url
        scraper = (prometheus_namespace(url) if url else None) or EVERY_NAMESPACE
        rules.append(Rule(peers=[Peer(namespace=scraper)], ports=[METRICS_PORT]))
    return rules


def _egress_rules(env: ResolvedEnvironment) -> list[Rule]:
    """The Kubernetes API, GitLab, Prometheus; DNS comes with the namespace's default policy."""
    config = env.config
    dashboard = config.dashboard
    rules = [
        Rule(
            peers=[Peer(cidr=cidr) for cidr in dashboard.api_server_cidrs],
            ports=list(API_SERVER_PORTS),
        ),
        Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=[url_port(config.gitlab.url)]),
    ]
    url = dashboard.prometheus_url
    if url:
        namespace = prometheus_namespace(url)
        peer = Peer(namespace=namespace) if namespace else Peer(cidr="0.0.0.0/0")
        rules.append(Rule(peers=[peer], ports=[url_port(url)]))
    return rules


def _monitoring(
    scope: Construct, env: ResolvedEnvironment, *, ns: str, after: SecureNamespace
) -> None:
    from constructs_lib.monitoring.dashboard_alerts import DashboardAlerts, DashboardAlertsProps
    from constructs_lib.monitoring.pod_monitor import PodMonitor, PodMonitorProps

    labels = env.config.monitoring.discovery_labels
    monitor = PodMonitor(
        scope,
        "PodMonitor",
        PodMonitorProps(
            name=NAME,
            namespace=ns,
            pod_labels=pod_labels(NAME),
            port=METRICS_PORT_NAME,
            labels=labels,
            depends_on=[after.namespace],
        ),
    )
    DashboardAlerts(
        scope,
        "Alerts",
        DashboardAlertsProps(
            name=NAME,
            namespace=ns,
            scrape_job=monitor.job,
            drift_for=env.config.dashboard.drift_alert_after,
            labels=labels,
            depends_on=[after.namespace],
        ),
    )
