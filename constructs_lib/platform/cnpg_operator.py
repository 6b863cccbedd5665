"""The CloudNativePG operator, which owns the ``postgresql.cnpg.io`` CRDs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from constructs import Construct

from constructs_lib.helm.operator_release import add_release, open_release_port
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.security import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from constructs_lib.versions import CLOUDNATIVE_PG_CHART, CLOUDNATIVE_PG_IMAGE, ImagePin

__all__ = ["METRICS_PORT", "WEBHOOK_PORT", "CloudNativePgOperator", "CloudNativePgOperatorProps"]

WEBHOOK_PORT = 9443
"""The operator's webhook port, which the API server calls."""
METRICS_PORT = 8080
"""The operator's metrics port."""
_UID = 10001


@dataclass(frozen=True, kw_only=True, slots=True)
class CloudNativePgOperatorProps:
    """Props of :class:`CloudNativePgOperator`.

    Attributes:
        namespace: existing namespace to install into (the Barman Cloud plugin must share it).
        release_name: Helm release name. Default ``"cnpg"``.
        pod_monitor: create the chart's PodMonitor for the operator pod; needs the
            prometheus-operator CRDs. Default ``False``.
        pod_monitor_labels: labels on that PodMonitor (the chart's
            ``monitoring.podMonitorAdditionalLabels``), e.g. the ``release`` label a
            kube-prometheus-stack ``podMonitorSelector`` picks monitors up by. Default - none.
        resources: operator pod requests and limits.
            Default 100m / 256Mi requested, 1 CPU / 512Mi limit.
        image: operator image. Default - the pinned release in :mod:`constructs_lib.versions`.
        protect: refuse to uninstall (``prevent_destroy``); uninstalling leaves every Postgres
            cluster without failover or backups. Default ``False``.
    """

    namespace: str
    release_name: str = "cnpg"
    pod_monitor: bool = False
    pod_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi"
        )
    )
    image: ImagePin = CLOUDNATIVE_PG_IMAGE
    protect: bool = False


class CloudNativePgOperator(Construct):
    """Helm release of the CNPG operator plus the NetworkPolicy its webhook and metrics need.

    Creates the chart's release (child id ``Release``; CRDs included, cluster-wide), the
    NetworkPolicy ``<release_name>-webhook`` (``WebhookIngress``) open to the API server, and
    with ``pod_monitor`` the policy ``<release_name>-metrics`` (``MetricsIngress``).

    Attributes:
        namespace: the operator's namespace (the Barman Cloud plugin goes there too).
        helm: the release construct (its ``release`` is the ``helm_release``).

    Example:
        ```python
        from constructs_lib.platform.cnpg_operator import (
            CloudNativePgOperator,
            CloudNativePgOperatorProps,
        )

        CloudNativePgOperator(stack, "Cnpg", CloudNativePgOperatorProps(namespace="cnpg-system"))
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: CloudNativePgOperatorProps
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = props.namespace
        self.helm = add_release(
            self,
            props,
            chart=CLOUDNATIVE_PG_CHART,
            values={
                "crds": {"create": True},
                "image": {"repository": props.image.repository, "tag": props.image.tag_ref},
                "config": {"clusterWide": True},
                "resources": props.resources.to_values(),
                "podSecurityContext": restricted_pod_security_context(),
                "containerSecurityContext": restricted_container_security_context(_UID),
                "monitoring": {
                    "podMonitorEnabled": props.pod_monitor,
                    **(
                        {"podMonitorAdditionalLabels": dict(props.pod_monitor_labels)}
                        if props.pod_monitor and props.pod_monitor_labels
                        else {}
                    ),
                },
            },
        )
        selector = {
            "app.kubernetes.io/name": "cloudnative-pg",
            "app.kubernetes.io/instance": props.release_name,
        }
        open_release_port(
            self, props, "webhook", pod_selector=selector, port=WEBHOOK_PORT, source="anywhere"
        )
        if props.pod_monitor:
            open_release_port(self, props, "metrics", pod_selector=selector, port=METRICS_PORT)
