"""PriorityClasses that put runner managers above ordinary workloads and CI jobs below them.

Pods without a class get priority 0 (unless the cluster has a ``globalDefault`` class). A
manager (100000) outranks them: the scheduler preempts lower pods to place it, and a kubelet
under memory pressure evicts lower pods that exceed their requests first, sparing the process
that tracks running jobs (a lost manager orphans its job pods). Jobs (-1) rank below every
ordinary workload and never preempt (``preemption_policy: Never``): a burst of CI waits for
capacity instead of evicting services. -1 is where cluster-autoscaler's overprovisioning
placeholders usually sit, so a placeholder re-created after a preemption cannot preempt a
running job in turn, and it is above the autoscaler's ``--expendable-pods-priority-cutoff``
(default -10): pods below the cutoff trigger no scale-up and do not keep their node from
being scaled down.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_kubernetes.priority_class_v1 import (
    PriorityClassV1,
    PriorityClassV1Metadata,
)
from constructs import Construct

from constructs_lib.runners.labels import PART_OF
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["EXPENDABLE_CUTOFF", "RunnerPriorityClasses", "RunnerPriorityClassesProps"]

# The API server reserves values above this for system-cluster-critical/system-node-critical.
HIGHEST_USER_PRIORITY = 1_000_000_000
LOWEST_PRIORITY = -(2**31)
EXPENDABLE_CUTOFF = -10
"""The lowest ``job_value`` allowed (see the module docstring)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunnerPriorityClassesProps:
    """Props of :class:`RunnerPriorityClasses`.

    Attributes:
        prefix: start of both class names, e.g. the manager namespace's name (PriorityClasses
            are cluster-scoped, so it keeps two runner fleets apart); names are
            ``<prefix>-manager`` and ``<prefix>-job``.
        manager_value: priority of runner managers. Default ``100000``.
        job_value: priority of CI job pods, at least -10 (see the module docstring).
            Default ``-1``.
    """

    prefix: str
    manager_value: int = 100_000
    job_value: int = -1


class RunnerPriorityClasses(Construct):
    """Two PriorityClasses: managers preempt, jobs never do.

    Creates ``<prefix>-manager`` (child id ``Manager``) and ``<prefix>-job`` (``Job``).

    Attributes:
        manager_name: class name for manager pods (``priorityClassName``).
        job_name: class name for job pods (the runner's ``priority_class_name``).
        resources: both classes, for ``depends_on`` of whatever names them by value.

    Example:
        ```python
        from constructs_lib.runners.priority_classes import (
            RunnerPriorityClasses,
            RunnerPriorityClassesProps,
        )

        classes = RunnerPriorityClasses(
            stack, "Priorities", RunnerPriorityClassesProps(prefix="gitlab-runners")
        )
        classes.job_name  # "gitlab-runners-job", for RunnerTomlProps.priority_class
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: RunnerPriorityClassesProps
    ) -> None:
        super().__init__(scope, construct_id)
        self.manager_name = f"{props.prefix}-manager"
        self.job_name = f"{props.prefix}-job"
        raise_if_problems("RunnerPriorityClasses", _problems(props))
        labels = {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "attic-iac"}
        manager = PriorityClassV1(
            self,
            "Manager",
            metadata=PriorityClassV1Metadata(name=self.manager_name, labels=labels),
            value=props.manager_value,
            global_default=False,
            preemption_policy="PreemptLowerPriority",
            description="GitLab runner managers: above ordinary workloads, so a node under "
            "pressure evicts something else before the process that tracks running jobs.",
        )
        job = PriorityClassV1(
            self,
            "Job",
            metadata=PriorityClassV1Metadata(name=self.job_name, labels=labels),
            value=props.job_value,
            global_default=False,
            preemption_policy="Never",
            description="GitLab CI job pods: below ordinary workloads and never preempting, "
            "so CI waits for capacity instead of evicting services.",
        )
        self.resources = [manager, job]


def _problems(props: RunnerPriorityClassesProps) -> list[str]:
    problems = [check_dns_label("prefix", props.prefix)]
    if props.prefix.startswith("system-"):
        problems.append(f"prefix: {props.prefix!r}: names starting with 'system-' are reserved")
    for prop, value in (("manager_value", props.manager_value), ("job_value", props.job_value)):
        if not LOWEST_PRIORITY <= value <= HIGHEST_USER_PRIORITY:
            problems.append(
                f"{prop}: {value} is outside {LOWEST_PRIORITY}..{HIGHEST_USER_PRIORITY} "
                "(higher values are reserved for system classes)"
            )
    if props.job_value < EXPENDABLE_CUTOFF:
        problems.append(
            f"job_value: {props.job_value} is below cluster-autoscaler's expendable cutoff "
            f"{EXPENDABLE_CUTOFF}: such pods never trigger a scale-up"
        )
    if props.manager_value <= props.job_value:
        problems.append(
            f"manager_value {props.manager_value} must be above job_value {props.job_value}"
        )
    return problems
