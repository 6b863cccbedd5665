"""The ``monitoring:`` section: prometheus-operator integration and the Attic SLOs."""

from __future__ import annotations

from typing import Literal

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


class Monitoring(StrictModel):
    """Integration with a prometheus-operator based monitoring stack."""

    prometheus_operator: bool = Field(
        default=False,
        description="Create PodMonitors/ServiceMonitors and PrometheusRules; needs the "
        "prometheus-operator CRDs.",
    )
    slo: Slo = Field(default_factory=Slo)


_CRON5 = r"^\S+( \S+){4}$"
