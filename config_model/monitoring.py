"""The ``monitoring:`` section: prometheus-operator integration and the Attic SLOs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from config_model.base import (
    StrictModel,
)


class Slo(StrictModel):
    """Service level objectives of the Attic cache, measured at the ingress controller."""

    availability_percent: float = Field(
        default=99.9,
        gt=90,
        lt=100,
        description="Share of requests that must not fail with 5xx over the window.",
    )
    window: Literal["7d", "28d", "30d"] = Field(default="30d", description="SLO window.")
    cache_hit_p99_ms: int = Field(
        default=500, ge=1, description="p99 latency target of narinfo lookups (cache hits)."
    )
    cache_info_p99_ms: int = Field(
        default=200, ge=1, description="p99 latency target of <cache>/nix-cache-info."
    )


# Kubernetes label syntax: an optional DNS-subdomain prefix and '/', then a name of at most 63
# characters; values are such a name or empty.
_LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelKey = Annotated[str, Field(pattern=_LABEL_KEY)]
LabelValue = Annotated[str, Field(pattern=_LABEL_VALUE)]


class Monitoring(StrictModel):
    """Integration with a prometheus-operator based monitoring stack."""

    prometheus_operator: bool = Field(
        default=False,
        description="Create PodMonitors/ServiceMonitors and PrometheusRules; needs the "
        "prometheus-operator CRDs.",
    )
    discovery_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels on every PodMonitor, ServiceMonitor and PrometheusRule (ours and "
        "the operator charts'), so the Prometheus picks them up. kube-prometheus-stack selects "
        "release: <its Helm release name> unless its *SelectorNilUsesHelmValues are false; "
        "{} for a Prometheus that selects everything.",
    )
    slo: Slo = Field(default_factory=Slo)
