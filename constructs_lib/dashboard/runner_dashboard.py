"""The runner dashboard's workload: ServiceAccount, its config as a file, its secrets as files,
the Deployment (with a PodDisruptionBudget and spread when it has more than one pod) and the
Service the Ingress routes to.

What the app expects (its settings contract): pages, probes and auth on 8080 (``/healthz``
answers while the process runs, ``/readyz`` once every configured data source has answered),
``/metrics`` alone on 9090, which is deliberately not on the Service; ``organization.yaml`` at
``ATTIC_IAC_CONFIG``; the files ``oauth-client-secret``, ``session-key`` and
``gitlab-read-token`` in ``DASHBOARD_SECRETS_DIR``; settings as ``DASHBOARD_*`` variables, none
of them secret. The session key is generated here (a ``random_password``, state only):
replacing it signs everybody out.

Config and secret changes roll the pods through checksum annotations on the pod template: the
config's is computed here, the secrets' by OpenTofu from the values (a SHA-256, never the
values themselves).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import Fn, ITerraformDependable
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from cdktf_cdktf_provider_kubernetes.deployment_v1 import DeploymentV1, DeploymentV1Spec
from cdktf_cdktf_provider_kubernetes.pod_disruption_budget_v1 import (
    PodDisruptionBudgetV1,
    PodDisruptionBudgetV1Spec,
)
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from cdktf_cdktf_provider_kubernetes.service_v1 import ServiceV1, ServiceV1Spec
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from constructs_lib.kubernetes.autoscaled_deployment import spread_constraints
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.structs import literal_text, to_struct
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "HTTP_PORT",
    "METRICS_PORT",
    "METRICS_PORT_NAME",
    "STICKY_COOKIE",
    "RunnerDashboard",
    "RunnerDashboardProps",
    "pod_labels",
]

HTTP_PORT = 8080
"""The app's port (pages, probes, sign-in): the Service's, so the Ingress's ``service_port``."""
METRICS_PORT = 9090
"""The pods' ``/metrics`` port, deliberately not on the Service: let Prometheus reach the pods."""
METRICS_PORT_NAME = "metrics"
"""The metrics port's name, which a PodMonitor names."""
UID = 10001  # the image's non-root user
CONFIG_DIR = "/etc/attic-iac"
CONFIG_FILE = "organization.yaml"
SECRETS_DIR = "/var/run/secrets/dashboard"
OAUTH_CLIENT_SECRET = "oauth-client-secret"
SESSION_KEY = "session-key"
GITLAB_READ_TOKEN = "gitlab-read-token"
# Set by the construct; the caller's settings may not override them.
FIXED_ENV = {
    "DASHBOARD_PORT": str(HTTP_PORT),
    "DASHBOARD_METRICS_PORT": str(METRICS_PORT),
    "ATTIC_IAC_CONFIG": f"{CONFIG_DIR}/{CONFIG_FILE}",
    "DASHBOARD_SECRETS_DIR": SECRETS_DIR,
}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
STICKY_COOKIE = "dashboard_pod"
"""The cookie that pins a browser to one pod when there are several (sessions live in each pod's
memory): ``WebIngressProps.sticky_cookie`` for nginx,
:func:`~constructs_lib.kubernetes.web_ingress.traefik_sticky_service_annotations` in
``RunnerDashboardProps.service_annotations`` for Traefik."""


def pod_labels(name: str) -> dict[str, str]:
    """Selector labels of the pods of the dashboard called ``name``."""
    return {
        "app.kubernetes.io/name": "runner-dashboard",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "dashboard",
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class RunnerDashboardProps:
    """Props of :class:`RunnerDashboard`.

    Attributes:
        namespace: namespace of every object.
        image: image reference, pinned by digest (often the ``dashboard_image`` variable).
        settings: the app's ``DASHBOARD_*`` variables (never a secret; the construct adds
            ports, config path and secrets directory itself).
        config_text: ``organization.yaml`` as the app loads it; holds no secret by design.
        oauth_client_secret: the OAuth application's secret (a reference: a sensitive
            variable or the application's attribute).
        gitlab_read_token: the GitLab read token (a reference to a sensitive variable).
        name: base name of the objects. Default ``"runner-dashboard"``.
        replicas: pods; above one the Deployment gets a PDB and zone/node spread. Default 1.
        resources: per pod. Default 100m / 192Mi requested, 1 CPU / 512Mi limit.
        termination_grace_seconds: how long a stopping pod keeps its event streams before
            they are cut and browsers reconnect to another pod. Default 45.
        service_annotations: e.g. the ingress controller's sticky-session settings.
            Default - none.
        depends_on: what the Deployment waits for (its policies, its RBAC). Default - none.
    """

    namespace: str
    image: str
    settings: Mapping[str, str]
    config_text: str
    oauth_client_secret: str
    gitlab_read_token: str
    name: str = "runner-dashboard"
    replicas: int = 1
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="100m", memory_request="192Mi", cpu_limit="1", memory_limit="512Mi"
        )
    )
    termination_grace_seconds: int = 45
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


class RunnerDashboard(Construct):
    """ServiceAccount, ConfigMap, Secret, Deployment (+ PDB) and Service of the dashboard.

    Creates, all named ``name`` unless said otherwise: the ServiceAccount (child id
    ``ServiceAccount``), the ConfigMap ``<name>-config`` holding ``organization.yaml``
    (``Config``), the session key, a ``random_password`` (``SessionKey``; needs the random
    provider in the stack), the Secret with the three secret files (``Secret``), the Deployment
    (``Deployment``), a PodDisruptionBudget (``DisruptionBudget``) when ``replicas`` is above
    one, and the ClusterIP Service on :data:`HTTP_PORT` (``Service``). The namespace must exist.
    The pods read the cluster with the ServiceAccount's token: grant that with
    :class:`~constructs_lib.dashboard.read_access.DashboardReadAccess`, and let their egress
    reach the Kubernetes API, GitLab and Prometheus in a default-deny namespace.

    Attributes:
        labels: selector labels of the pods (for NetworkPolicies and the PodMonitor).
        service_account_name: the ServiceAccount its Roles bind.
        service_name: the Service (port 8080 only).
        deployment: the Deployment.
        secret: the Secret mounted as files.
        config_checksum: SHA-256 of ``config_text`` (the pod template's annotation).

    Example:
        ```python
        from cdktf import TerraformVariable

        from constructs_lib.dashboard.runner_dashboard import (
            RunnerDashboard,
            RunnerDashboardProps,
        )


        def sensitive(name: str) -> str:
            return TerraformVariable(stack, name, type="string", sensitive=True).string_value


        dashboard = RunnerDashboard(
            stack,
            "Dashboard",
            RunnerDashboardProps(
                namespace="runner-dashboard",
                image="registry.example.com/acme/dashboard@sha256:" + "0" * 64,
                settings={
                    "DASHBOARD_ENVIRONMENT": "production",
                    "DASHBOARD_PUBLIC_URL": "https://runners.example.com",
                    "DASHBOARD_GITLAB_URL": "https://gitlab.example.com",
                    "DASHBOARD_GITLAB_GROUP": "acme",
                    "DASHBOARD_OAUTH_CLIENT_ID": "0123456789abcdef",
                },
                config_text="organization: {name: acme}",  # your organization.yaml
                oauth_client_secret=sensitive("dashboard_oauth_client_secret"),
                gitlab_read_token=sensitive("dashboard_gitlab_read_token"),
                replicas=2,
            ),
        )
        dashboard.service_name  # WebIngressProps.service_name
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: RunnerDashboardProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("RunnerDashboard", _problems(props))
        name, ns = props.name, props.namespace
        self.labels = pod_labels(name)
        after = list(props.depends_on) or None
        account = ServiceAccountV1(
            self,
            "ServiceAccount",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            # Only the dashboard's own pods mount its token (see the pod spec).
            automount_service_account_token=False,
        )
        self.service_account_name: str = account.metadata.name
        config = ConfigMapV1(
            self,
            "Config",
            metadata={"name": f"{name}-config", "namespace": ns, "labels": self.labels},
            data={CONFIG_FILE: literal_text(props.config_text)},
        )
        session_key = Password(self, "SessionKey", length=64, special=False)
        values = {
            OAUTH_CLIENT_SECRET: props.oauth_client_secret,
            SESSION_KEY: session_key.result,
            GITLAB_READ_TOKEN: props.gitlab_read_token,
        }
        self.secret = SecretV1(
            self,
            "Secret",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            type="Opaque",
            data=values,
        )
        self.config_checksum = hashlib.sha256(props.config_text.encode()).hexdigest()
        annotations = {
            "checksum/config": self.config_checksum,
            # A digest of the values, so a rotated secret rolls the pods; it reveals nothing.
            "checksum/secrets": Fn.sha256(Fn.join("\n", list(values.values()))),
        }
        template = {
            "metadata": {"labels": self.labels, "annotations": annotations},
            "spec": _pod_spec(
                props,
                account=account.metadata.name,
                config_map=config.metadata.name,
                secret=self.secret.metadata.name,
                labels=self.labels,
            ),
        }
        self.deployment = DeploymentV1(
            self,
            "Deployment",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            spec=to_struct(
                DeploymentV1Spec,
                {
                    "replicas": str(props.replicas),
                    "revision_history_limit": 5,
                    "selector": {"match_labels": self.labels},
                    # Surge only: a pod stops once its replacement is ready.
                    "strategy": {
                        "type": "RollingUpdate",
                        "rolling_update": {"max_surge": "1", "max_unavailable": "0"},
                    },
                    "template": template,
                },
            ),
            depends_on=after,
        )
        if props.replicas > 1:
            PodDisruptionBudgetV1(
                self,
                "DisruptionBudget",
                metadata={"name": name, "namespace": ns, "labels": self.labels},
                spec=to_struct(
                    PodDisruptionBudgetV1Spec,
                    {"max_unavailable": "1", "selector": {"match_labels": self.labels}},
                ),
            )
        service = ServiceV1(
            self,
            "Service",
            metadata={
                "name": name,
                "namespace": ns,
                "labels": self.labels,
                "annotations": dict(props.service_annotations) or None,
            },
            spec=to_struct(
                ServiceV1Spec,
                {
                    "type": "ClusterIP",
                    "selector": self.labels,
                    # The app port only: /metrics is scraped from the pods' own 9090.
                    "port": [
                        {
                            "name": "http",
                            "port": HTTP_PORT,
                            "target_port": "http",
                            "protocol": "TCP",
                            "app_protocol": "http",
                        }
                    ],
                },
            ),
        )
        self.service_name: str = service.metadata.name


def _problems(props: RunnerDashboardProps) -> list[str]:
    return [
        check_dns_label("name", props.name),
        check_dns_label("namespace", props.namespace),
        "" if props.image else "image: required",
        "" if props.config_text.strip() else "config_text: required (organization.yaml)",
        "" if 1 <= props.replicas <= 10 else f"replicas: {props.replicas} is outside 1..10",
        ""
        if 30 <= props.termination_grace_seconds <= 600
        else f"termination_grace_seconds: {props.termination_grace_seconds} is outside 30..600 "
        "(event streams need time to end and reconnect elsewhere)",
        *(
            f"settings: {key!r} is not an environment variable name"
            for key in props.settings
            if not _ENV_NAME.match(key)
        ),
        *(
            f"settings: {key} is set by the construct itself"
            for key in props.settings
            if key in FIXED_ENV
        ),
    ]


def _pod_spec(
    props: RunnerDashboardProps,
    *,
    account: str,
    config_map: str,
    secret: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    env = {**props.settings, **FIXED_ENV}
    http = {"path": "/healthz", "port": "http"}
    container = {
        "name": "dashboard",
        "image": props.image,
        "image_pull_policy": "IfNotPresent",
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "port": [
            {"name": "http", "container_port": HTTP_PORT, "protocol": "TCP"},
            {"name": METRICS_PORT_NAME, "container_port": METRICS_PORT, "protocol": "TCP"},
        ],
        "volume_mount": [
            {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
            {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
            {"name": "tmp", "mount_path": "/tmp"},
        ],
        "resources": props.resources.to_values(),
        # Up to a minute to start (the config is loaded and validated first).
        "startup_probe": {
            "http_get": http,
            "period_seconds": 2,
            "timeout_seconds": 2,
            "failure_threshold": 30,
        },
        "liveness_probe": {
            "http_get": http,
            "period_seconds": 10,
            "timeout_seconds": 3,
            "failure_threshold": 3,
        },
        # Ready once every configured source answered (a failing source stays ready, and
        # says so on the page).
        "readiness_probe": {
            "http_get": {"path": "/readyz", "port": "http"},
            "period_seconds": 5,
            "timeout_seconds": 3,
            "failure_threshold": 2,
        },
        # Endpoints are removed while this runs, so no new request reaches a stopping pod.
        "lifecycle": {"pre_stop": [{"exec": {"command": ["sleep", "5"]}}]},
        "security_context": restricted_container(UID),
    }
    spec: dict[str, Any] = {
        "service_account_name": account,
        # The app lists and watches pods, events, deployments and HPAs through
        # the Kubernetes API with this token (read-only Roles in the watched namespaces).
        "automount_service_account_token": True,
        # A Service named dashboard would inject DASHBOARD_PORT=tcp://... into the settings.
        "enable_service_links": False,
        "termination_grace_period_seconds": props.termination_grace_seconds,
        "security_context": restricted_pod(UID),
        "container": [container],
        "volume": [
            {"name": "config", "config_map": {"name": config_map, "default_mode": "0444"}},
            {"name": "secrets", "secret": {"secret_name": secret, "default_mode": "0440"}},
            {"name": "tmp", "empty_dir": {"size_limit": "64Mi"}},
        ],
    }
    if props.replicas > 1:
        spec["topology_spread_constraint"] = spread_constraints(labels)
    return spec
