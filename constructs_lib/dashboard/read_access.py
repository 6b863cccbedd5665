"""What the runner dashboard may read in the cluster: a Role and RoleBinding per watched
namespace, ``get``/``list``/``watch`` on exactly the kinds the app lists and watches.

The app (``dashboard.sources.kubernetes``, its only Kubernetes client) lists and watches pods,
events, deployments and horizontalpodautoscalers in every watched namespace, and nothing else:
a test holds :data:`WATCHED_KINDS` equal to the app's ``READ_RESOURCES``. Never Secrets, never
a wildcard, never a write verb, and no ClusterRole: nothing it reads is cluster-scoped. The
constructor refuses rules that break this, so a later edit cannot widen the grant quietly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1Rule
from constructs import Construct

from constructs_lib.kubernetes.role_grant import grant_role
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["DashboardReadAccess", "DashboardReadAccessProps"]

READ_VERBS = ("get", "list", "watch")
# (API group, resources) the app reads in every watched namespace.
WATCHED_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "events")),
    ("apps", ("deployments",)),
    ("autoscaling", ("horizontalpodautoscalers",)),
)
FORBIDDEN_RESOURCES = frozenset({"secrets", "*"})


@dataclass(frozen=True, kw_only=True, slots=True)
class DashboardReadAccessProps:
    """Props of :class:`DashboardReadAccess`.

    Attributes:
        account: the dashboard's ServiceAccount.
        account_namespace: its namespace.
        namespaces: the namespaces it watches (at least one).
        name: name of every Role and RoleBinding. Default ``"runner-dashboard-read"``.
        labels: labels on them. Default - none.
        depends_on: what the Roles wait for (e.g. namespaces this stack does not create by
            reference). Default - none.
    """

    account: str
    account_namespace: str
    namespaces: Sequence[str]
    name: str = "runner-dashboard-read"
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


def rule_problems(group: str, resources: Sequence[str], verbs: Sequence[str]) -> list[str]:
    """Why a rule is not a narrow read grant (empty when it is)."""
    problems = [
        f"rule {group or 'core'}/{resource}: the dashboard never reads it"
        for resource in resources
        if resource in FORBIDDEN_RESOURCES
    ]
    problems += [
        f"rule {group or 'core'}: verb {verb!r} is not read-only (allowed: {', '.join(READ_VERBS)})"
        for verb in verbs
        if verb not in READ_VERBS
    ]
    if group == "*":
        problems.append("rule: the API group must be named, not '*'")
    return problems


class DashboardReadAccess(Construct):
    """Read-only Roles for the dashboard's ServiceAccount, one per watched namespace.

    Creates, in each of ``namespaces``, a Role ``name`` granting ``get``, ``list`` and ``watch``
    on the kinds the app reads (pods, events, deployments, HPAs), with child id
    ``Role-<namespace>``, and a RoleBinding ``name`` to the ServiceAccount
    (``RoleBinding-<namespace>``). The namespaces must exist; the ServiceAccount need not yet.

    Attributes:
        rules: namespace -> (API group, resources) granted there, for review and tests.
        resources: every Role and RoleBinding, for ``depends_on``.

    Example:
        ```python
        from constructs_lib.dashboard.read_access import (
            DashboardReadAccess,
            DashboardReadAccessProps,
        )

        access = DashboardReadAccess(
            stack,
            "ReadAccess",
            DashboardReadAccessProps(
                account="runner-dashboard",
                account_namespace="runner-dashboard",
                namespaces=["gitlab-runners", "gitlab-runner-jobs", "attic"],
            ),
        )
        access.resources  # RunnerDashboardProps.depends_on
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: DashboardReadAccessProps
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules = {namespace: list(WATCHED_KINDS) for namespace in props.namespaces}
        raise_if_problems(
            "DashboardReadAccess",
            [
                check_dns_label("name", props.name),
                "" if props.namespaces else "namespaces: at least one is required",
                *(check_dns_label("namespaces", namespace) for namespace in props.namespaces),
                *(
                    problem
                    for granted in self.rules.values()
                    for group, resources in granted
                    for problem in rule_problems(group, resources, READ_VERBS)
                ),
            ],
        )
        self.resources: list[ITerraformDependable] = []
        for namespace, granted in self.rules.items():
            self.resources += grant_role(
                self,
                namespace,
                name=props.name,
                labels=props.labels,
                account=props.account,
                account_namespace=props.account_namespace,
                depends_on=props.depends_on,
                rules=[
                    RoleV1Rule(
                        api_groups=[group], resources=list(resources), verbs=list(READ_VERBS)
                    )
                    for group, resources in granted
                ],
            )
