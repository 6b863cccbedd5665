"""A surge-only Deployment that an HPA scales and a PDB keeps available, spread over zones.

The shape of every horizontally scaled service here (the atticd API, bazel-remote). It is a
function, not a construct: the three objects join the caller's scope, so their construct paths
and Terraform addresses are the ones the caller's own resources always had.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes.deployment_v1 import DeploymentV1, DeploymentV1Spec
from cdktf_cdktf_provider_kubernetes.horizontal_pod_autoscaler_v2 import (
    HorizontalPodAutoscalerV2,
    HorizontalPodAutoscalerV2Spec,
)
from cdktf_cdktf_provider_kubernetes.pod_disruption_budget_v1 import (
    PodDisruptionBudgetV1,
    PodDisruptionBudgetV1Spec,
)
from constructs import Construct

from constructs_lib.kubernetes.structs import to_struct


class ReplicaBounds(Protocol):
    """HPA bounds and targets, as the props of a scaled service spell them."""

    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def cpu_target_percent(self) -> int: ...
    @property
    def memory_target_percent(self) -> int: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ScalingPace:
    """How fast the HPA adds and removes pods.

    Up at once: every 15 s the larger of doubling and ``up_pods``. Down after 5 minutes of
    lower load: every minute 10 % of the pods or ``down_pods``, as ``down_select`` picks.

    Attributes:
        up_pods: pods added per 15 s where doubling adds fewer.
        down_pods: pods removed per minute, weighed against 10 %.
        down_select: ``"Min"`` removes the fewer of the two, ``"Max"`` the more (so
            ``down_pods`` go even where 10 % rounds to none).
    """

    up_pods: int
    down_pods: int
    down_select: Literal["Min", "Max"]


def bounds_problem(bounds: ReplicaBounds) -> str:
    """A problem line for the caller's combined error unless ``1 <= min <= max``, else ''."""
    if 1 <= bounds.min_replicas <= bounds.max_replicas:
        return ""
    return (
        f"min_replicas/max_replicas: need 1 <= min <= max "
        f"(got {bounds.min_replicas}, {bounds.max_replicas})"
    )


def add_autoscaled_deployment(
    scope: Construct,
    deployment_id: str,
    *,
    name: str,
    namespace: str,
    selector: Mapping[str, str],
    template: Mapping[str, Any],
    bounds: ReplicaBounds,
    pace: ScalingPace,
    labels: Mapping[str, str] | None = None,
    depends_on: Sequence[ITerraformDependable] = (),
) -> DeploymentV1:
    """Add the Deployment ``deployment_id`` and its ``Autoscaler`` and ``DisruptionBudget``.

    All three are named ``name``. ``template`` is the pod template (metadata + spec as data);
    its pods are spread over zones and nodes where the scheduler can. ``labels`` go on all
    three objects; without them the Deployment carries ``selector`` and the others no labels.
    """
    spec = {**template["spec"], "topology_spread_constraint": spread_constraints(selector)}
    deployment = DeploymentV1(
        scope,
        deployment_id,
        metadata={
            "name": name,
            "namespace": namespace,
            "labels": dict(selector if labels is None else labels),
        },
        spec=to_struct(
            DeploymentV1Spec,
            {
                "replicas": str(bounds.min_replicas),
                "revision_history_limit": 5,
                "selector": {"match_labels": dict(selector)},
                # Surge only: a pod is never stopped before its replacement is ready.
                "strategy": {
                    "type": "RollingUpdate",
                    "rolling_update": {"max_surge": "25%", "max_unavailable": "0"},
                },
                "template": {**template, "spec": spec},
            },
        ),
        # The HPA owns the replica count after the first apply.
        lifecycle=TerraformResourceLifecycle(ignore_changes=["spec[0].replicas"]),
        depends_on=list(depends_on) or None,
    )
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": None if labels is None else dict(labels),
    }
    HorizontalPodAutoscalerV2(
        scope,
        "Autoscaler",
        metadata=metadata,
        spec=to_struct(
            HorizontalPodAutoscalerV2Spec, _hpa_spec(bounds, pace, deployment.metadata.name)
        ),
    )
    PodDisruptionBudgetV1(
        scope,
        "DisruptionBudget",
        metadata=metadata,
        spec=to_struct(
            PodDisruptionBudgetV1Spec,
            {"max_unavailable": "1", "selector": {"match_labels": dict(selector)}},
        ),
    )
    return deployment


def spread_constraints(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread the selected pods over zones and nodes; ScheduleAnyway: an uneven spread beats a
    pod that cannot start."""
    return [
        {
            "max_skew": 1,
            "topology_key": key,
            "when_unsatisfiable": "ScheduleAnyway",
            "label_selector": [{"match_labels": dict(selector)}],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def _hpa_spec(bounds: ReplicaBounds, pace: ScalingPace, deployment: str) -> dict[str, Any]:
    return {
        "min_replicas": bounds.min_replicas,
        "max_replicas": bounds.max_replicas,
        "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": deployment},
        "metric": [
            {
                "type": "Resource",
                "resource": {
                    "name": resource,
                    "target": {"type": "Utilization", "average_utilization": target},
                },
            }
            for resource, target in (
                ("cpu", bounds.cpu_target_percent),
                ("memory", bounds.memory_target_percent),
            )
        ],
        "behavior": {
            "scale_up": _rule(0, "Max", percent=100, pods=pace.up_pods, period=15),
            "scale_down": _rule(300, pace.down_select, percent=10, pods=pace.down_pods, period=60),
        },
    }


def _rule(
    window: int, select: str, *, percent: int, pods: int, period: int
) -> list[dict[str, Any]]:
    return [
        {
            "stabilization_window_seconds": window,
            "select_policy": select,
            "policy": [
                {"type": "Percent", "value": percent, "period_seconds": period},
                {"type": "Pods", "value": pods, "period_seconds": period},
            ],
        }
    ]
