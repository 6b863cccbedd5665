"""A ResourceQuota and a container LimitRange for one namespace.

The quota caps what the namespace may hold at once; the LimitRange gives every container that
states no requests or limits the defaults, and rejects containers above ``max``. They belong
together: a quota on ``limits.cpu`` (or any ``requests.*``/``limits.*``) makes the API server
reject pods with a container lacking that value, and CI pods have several containers (build,
helper, services) that jobs configure unevenly. The LimitRange defaults fill those in, so this
construct insists on a default for every compute resource the quota counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.limit_range_v1 import (
    LimitRangeV1,
    LimitRangeV1Metadata,
    LimitRangeV1Spec,
    LimitRangeV1SpecLimit,
)
from cdktf_cdktf_provider_kubernetes.resource_quota_v1 import (
    ResourceQuotaV1,
    ResourceQuotaV1Metadata,
    ResourceQuotaV1Spec,
)
from constructs import Construct

from constructs_lib.validation import check_dns_label, raise_if_problems
from upstream_formats.k8s_quantity import parse_quantity

__all__ = ["COMPUTE", "COUNTS", "QUOTA_KEYS", "NamespaceBudget", "NamespaceBudgetProps"]

COMPUTE = ("cpu", "memory", "ephemeral-storage")
"""Compute resources a quota and the LimitRange defaults name."""
# Object counts are whole numbers; the compute entries are quantities.
COUNTS = ("pods", "services", "configmaps", "secrets", "persistentvolumeclaims")
"""Object counts a quota may cap (whole numbers)."""
QUOTA_KEYS = (
    *(f"{kind}.{resource}" for kind in ("requests", "limits") for resource in COMPUTE),
    "requests.storage",
    *COUNTS,
)
"""Every ``quota`` key :class:`NamespaceBudget` accepts."""
LABELS = {"app.kubernetes.io/managed-by": "attic-iac"}
# Kubernetes fills a missing default limit from max, a missing default request from the default
# limit (``SetDefaults_LimitRangeItem``).
_DEFAULTED_FROM = {
    "requests": ("default_request", "default_limit", "max"),
    "limits": ("default_limit", "max"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class NamespaceBudgetProps:
    """Props of :class:`NamespaceBudget`.

    Attributes:
        namespace: the namespace (must exist when the stack is applied; see ``depends_on``).
        quota: ResourceQuota ``hard`` entries, e.g. ``{"requests.cpu": "16", "pods": "40"}``;
            keys from :data:`QUOTA_KEYS`.
        default_request: per container, by ``cpu``/``memory``/``ephemeral-storage``: the request
            of a container that states none (Kubernetes falls back to the default limit).
        default_limit: the limit of a container that states none (falls back to ``max``).
            A ``requests.*`` or ``limits.*`` quota needs a default for its resource.
        max: the largest limit a container may state. Default - no maximum.
        name: name of both objects. Default ``"budget"``.
        depends_on: resources that must exist first (the namespace, named here by value).
            Default - none.
    """

    namespace: str
    quota: Mapping[str, str]
    default_request: Mapping[str, str]
    default_limit: Mapping[str, str]
    max: Mapping[str, str] = field(default_factory=dict)
    name: str = "budget"
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class NamespaceBudget(Construct):
    """ResourceQuota plus container LimitRange defaults and maximums.

    Creates a ``ResourceQuota`` and a ``LimitRange`` (child ids ``ResourceQuota``, ``LimitRange``)
    both named ``name`` in ``namespace``.

    Attributes:
        resource_quota: the ResourceQuota.
        limit_range: the LimitRange; pods created before it exist get no defaults, so whatever
            creates pods here should depend on it.

    Example:
        ```python
        from constructs_lib.kubernetes.namespace_budget import NamespaceBudget, NamespaceBudgetProps

        NamespaceBudget(
            stack,
            "JobBudget",
            NamespaceBudgetProps(
                namespace="ci-jobs",
                quota={"requests.cpu": "16", "limits.memory": "64Gi", "pods": "40"},
                default_request={"cpu": "500m", "memory": "1Gi"},
                default_limit={"cpu": "2", "memory": "4Gi"},
                max={"cpu": "8", "memory": "16Gi"},
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: NamespaceBudgetProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("NamespaceBudget", _problems(props))
        depends_on = list(props.depends_on) or None
        self.resource_quota = ResourceQuotaV1(
            self,
            "ResourceQuota",
            metadata=ResourceQuotaV1Metadata(
                name=props.name, namespace=props.namespace, labels=LABELS
            ),
            spec=ResourceQuotaV1Spec(hard=dict(props.quota)),
            depends_on=depends_on,
        )
        self.limit_range = LimitRangeV1(
            self,
            "LimitRange",
            metadata=LimitRangeV1Metadata(
                name=props.name, namespace=props.namespace, labels=LABELS
            ),
            spec=LimitRangeV1Spec(
                limit=[
                    LimitRangeV1SpecLimit(
                        type="Container",
                        default_request=dict(props.default_request),
                        default=dict(props.default_limit),
                        max=dict(props.max) or None,
                    )
                ]
            ),
            depends_on=depends_on,
        )


def _problems(props: NamespaceBudgetProps) -> list[str]:
    return [
        check_dns_label("namespace", props.namespace),
        check_dns_label("name", props.name),
        *_quota_problems(props.quota),
        *_container_problems(props),
    ]


def _quota_problems(quota: Mapping[str, str]) -> list[str]:
    problems = [] if quota else ["quota: at least one entry is needed"]
    for key, text in quota.items():
        if key not in QUOTA_KEYS:
            problems.append(f"quota: unknown key {key!r} (allowed: {', '.join(QUOTA_KEYS)})")
            continue
        try:
            value = parse_quantity(text)
        except ValueError as error:
            problems.append(f"quota[{key}]: {error}")
            continue
        if key in COUNTS and value.denominator != 1:
            problems.append(f"quota[{key}]: {text!r} is not a whole number")
    return problems


def _container_problems(props: NamespaceBudgetProps) -> list[str]:
    """default_request <= default_limit <= max per resource, and the defaults the quota needs."""
    order = {
        "default_request": props.default_request,
        "default_limit": props.default_limit,
        "max": props.max,
    }
    problems = []
    chains: dict[str, list[tuple[str, Fraction]]] = {resource: [] for resource in COMPUTE}
    for prop, given in order.items():
        for resource, text in given.items():
            if resource not in COMPUTE:
                problems.append(
                    f"{prop}: unknown resource {resource!r} (allowed: {', '.join(COMPUTE)})"
                )
                continue
            try:
                chains[resource].append((prop, parse_quantity(text)))
            except ValueError as error:
                problems.append(f"{prop}[{resource}]: {error}")
    for resource, chain in chains.items():
        for (low_prop, low), (high_prop, high) in itertools.pairwise(chain):
            if low > high:
                problems.append(
                    f"{resource}: {low_prop} {order[low_prop][resource]!r} is above "
                    f"{high_prop} {order[high_prop][resource]!r}"
                )
        for kind, props_in_order in _DEFAULTED_FROM.items():
            if f"{kind}.{resource}" in props.quota and not any(
                resource in order[prop] for prop in props_in_order
            ):
                problems.append(
                    f"quota[{kind}.{resource}]: set {props_in_order[0]}[{resource}], or the API "
                    f"server rejects every pod with a container that states no {resource} {kind}"
                )
    return problems
