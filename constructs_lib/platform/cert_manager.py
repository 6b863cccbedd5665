"""cert-manager, for clusters that do not run it yet (most already do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from constructs_lib.helm.operator_release import add_release, open_release_port
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.versions import CERT_MANAGER_CHART, CERT_MANAGER_IMAGES, ImagePin

__all__ = ["METRICS_PORT", "WEBHOOK_PORT", "CertManager", "CertManagerProps"]

WEBHOOK_PORT = 10250
"""cert-manager's webhook port, which the API server calls."""
METRICS_PORT = 9402
"""cert-manager's metrics port."""


def _default_resources() -> dict[str, ComputeResources]:
    return {
        "controller": ComputeResources(
            cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi"
        ),
        "webhook": ComputeResources(
            cpu_request="20m", memory_request="64Mi", cpu_limit="200m", memory_limit="128Mi"
        ),
        "cainjector": ComputeResources(
            cpu_request="20m", memory_request="128Mi", cpu_limit="200m", memory_limit="512Mi"
        ),
        "startupapicheck": ComputeResources(
            cpu_request="10m", memory_request="32Mi", cpu_limit="100m", memory_limit="64Mi"
        ),
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class CertManagerProps:
    """Props of :class:`CertManager`.

    Attributes:
        namespace: existing namespace to install into; also used for leader election so the
            release writes nothing to ``kube-system``.
        release_name: Helm release name. Default ``"cert-manager"``.
        pod_monitor: create PodMonitors (prometheus-operator CRDs needed). Default ``False``.
        pod_monitor_labels: labels on the PodMonitor (the chart's
            ``prometheus.podmonitor.labels``), e.g. the ``release`` label a
            kube-prometheus-stack ``podMonitorSelector`` picks monitors up by. Default - none.
        resources: requests and limits per component (``controller``, ``webhook``,
            ``cainjector``, ``startupapicheck``). Default - small values that suit a cluster
            with a few hundred certificates.
        images: image per component. Default - the pinned release.
        protect: refuse to uninstall. Default ``False``.
    """

    namespace: str
    release_name: str = "cert-manager"
    pod_monitor: bool = False
    pod_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    resources: dict[str, ComputeResources] = field(default_factory=_default_resources)
    images: dict[str, ImagePin] = field(default_factory=lambda: dict(CERT_MANAGER_IMAGES))
    protect: bool = False


def _image(pin: ImagePin) -> dict[str, str]:
    image = {"repository": pin.repository, "tag": pin.tag}
    if pin.digest:
        image["digest"] = pin.digest
    return image


class CertManager(Construct):
    """Helm release of cert-manager (CRDs included and kept on uninstall) plus its policies.

    Creates the chart's release (child id ``Release``), the NetworkPolicy
    ``<release_name>-webhook`` (``WebhookIngress``) open to the API server, and with
    ``pod_monitor`` the policy ``<release_name>-metrics`` (``MetricsIngress``).

    Attributes:
        helm: the release construct (its ``release`` is the ``helm_release``).

    Example:
        ```python
        from constructs_lib.platform.cert_manager import CertManager, CertManagerProps

        CertManager(stack, "CertManager", CertManagerProps(namespace="cert-manager", protect=True))
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: CertManagerProps) -> None:
        super().__init__(scope, construct_id)
        resources = {k: v.to_values() for k, v in props.resources.items()}
        values: dict[str, Any] = {
            "crds": {"enabled": True, "keep": True},
            "global": {"leaderElection": {"namespace": props.namespace}},
            "image": _image(props.images["controller"]),
            "resources": resources["controller"],
            "webhook": {
                "image": _image(props.images["webhook"]),
                "resources": resources["webhook"],
            },
            "cainjector": {
                "image": _image(props.images["cainjector"]),
                "resources": resources["cainjector"],
            },
            "acmesolver": {"image": _image(props.images["acmesolver"])},
            "startupapicheck": {
                "image": _image(props.images["startupapicheck"]),
                "resources": resources["startupapicheck"],
            },
            "prometheus": {
                "enabled": props.pod_monitor,
                "podmonitor": {
                    "enabled": props.pod_monitor,
                    **(
                        {"labels": dict(props.pod_monitor_labels)}
                        if props.pod_monitor and props.pod_monitor_labels
                        else {}
                    ),
                },
            },
        }
        self.helm = add_release(self, props, chart=CERT_MANAGER_CHART, values=values)
        instance = {"app.kubernetes.io/instance": props.release_name}
        open_release_port(
            self,
            props,
            "webhook",
            pod_selector={**instance, "app.kubernetes.io/component": "webhook"},
            port=WEBHOOK_PORT,
            source="anywhere",
        )
        if props.pod_monitor:
            open_release_port(self, props, "metrics", pod_selector=instance, port=METRICS_PORT)
