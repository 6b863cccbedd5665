"""RBAC for CI jobs reaching the runner namespaces through the GitLab agent's ``ci_access``.

With ``access_as: {ci_job: {}}`` in the agent's ``config.yaml`` (a GitLab Premium feature), kas
does not use the agent's own service account: it impersonates user ``gitlab:ci_job:<job id>``
with the groups ``gitlab:ci_job``, ``gitlab:group:<id>`` for every group above the project
(each ancestor, not only the direct parent), ``gitlab:project:<id>`` and, for jobs in an
environment, ``gitlab:project_env:<id>:<slug>``, ``gitlab:project_env_tier:<id>:<tier>`` and
``gitlab:group_env_tier:<id>:<tier>``. This construct binds the project and group groups, so a
grant to a GitLab group covers every project under it. The agent's own service account needs
the ``impersonate`` verb on users and groups for this to work.

``read`` is what debugging a runner needs: pods and their logs, events, the workloads and
their autoscalers and disruption budgets. ``operate`` adds deleting pods (a stuck job pod) and
patching Deployments (``kubectl rollout restart`` of a manager). Neither grants Secrets
(runner tokens, job credentials), ConfigMaps, ``pods/exec`` or any ``*``. RBAC cannot limit
what a patch changes, and a job that may rewrite a manager's pod template can run any image
with the manager's runner token; a ValidatingAdmissionPolicy therefore keeps CI jobs from
changing a Deployment's pod spec, pod labels or replicas in the ``operate`` namespaces
(``rollout restart`` changes only a pod-template annotation).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.role_binding_v1 import (
    RoleBindingV1,
    RoleBindingV1Metadata,
    RoleBindingV1RoleRef,
    RoleBindingV1Subject,
)
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1, RoleV1Metadata, RoleV1Rule
from constructs import Construct

from constructs_lib.kubernetes.admission_policy import deny_admission_policy, policy_manifest
from constructs_lib.runners.labels import PART_OF
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "ACCESS_LEVELS",
    "OPERATE_RULES",
    "READ_RULES",
    "Access",
    "AgentCiAccess",
    "AgentCiAccessProps",
    "AgentGrant",
]

Access = Literal["read", "operate"]
"""What a grant allows: ``read`` (get, list, watch, logs) or ``operate``."""
ACCESS_LEVELS: tuple[Access, ...] = ("read", "operate")
"""Every access level."""
_ID = re.compile(r"^[1-9][0-9]*$")
_READ = ["get", "list", "watch"]
READ_RULES: tuple[dict[str, list[str]], ...] = (
    {"api_groups": [""], "resources": ["pods", "events"], "verbs": _READ},
    {"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"api_groups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": _READ},
    {"api_groups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _READ},
    {"api_groups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _READ},
    {"api_groups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
)
"""Role rules of ``read``: see workloads, their pods, events and logs."""
OPERATE_RULES = (
    *READ_RULES,
    {"api_groups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]},
)
"""Role rules of ``operate``: ``read`` plus deleting pods and restarting Deployments."""
RULES: dict[Access, tuple[dict[str, list[str]], ...]] = {
    "read": READ_RULES,
    "operate": OPERATE_RULES,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentGrant:
    """What the CI jobs of one GitLab project or group may do in some namespaces.

    Attributes:
        namespaces: namespaces the grant applies to (each must exist; see ``depends_on``).
        project_id: numeric GitLab project id. Default ``None``; set it or ``group_id``.
        group_id: numeric GitLab group id; covers every project below the group, however deep.
            Default ``None``.
        access: ``"read"`` or ``"operate"``. Default ``"read"``.
    """

    namespaces: Sequence[str]
    project_id: str | None = None
    group_id: str | None = None
    access: Access = "read"

    @property
    def subject(self) -> str:
        """The impersonated group kas gives this project's (or group's) CI jobs."""
        if self.project_id is not None:
            return f"gitlab:project:{self.project_id}"
        return f"gitlab:group:{self.group_id}"


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentCiAccessProps:
    """Props of :class:`AgentCiAccess`.

    Attributes:
        grants: the grants (at least one).
        name: prefix of the Roles and RoleBindings, named ``<name>-<access>``.
            Default ``"gitlab-ci"``.
        admission_policy: add the ValidatingAdmissionPolicy that limits CI jobs' Deployment
            patches to restarts, when any grant is ``operate`` (Kubernetes >= 1.30).
            Default ``True``.
        depends_on: resources that must exist first (the namespaces, named here by value).
            Default - none.
    """

    grants: Sequence[AgentGrant]
    name: str = "gitlab-ci"
    admission_policy: bool = True
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class AgentCiAccess(Construct):
    """One Role per (namespace, access level) in use, bound to the Groups granted that level.

    Creates ``Role-<namespace>-<access>`` and ``RoleBinding-<namespace>-<access>`` (both named
    ``<name>-<access>``), and when a grant is ``operate`` and ``admission_policy`` is on, a
    ValidatingAdmissionPolicy and its binding (``AdmissionPolicy``,
    ``AdmissionPolicyBinding``) that allow Deployment patches only to restart.

    Attributes:
        subjects: ``(namespace, access)`` to the impersonated groups bound there, sorted.
        admission_policy_manifest: the restart-only ValidatingAdmissionPolicy, or ``None``.

    Example:
        ```python
        from constructs_lib.runners.agent_access import (
            AgentCiAccess,
            AgentCiAccessProps,
            AgentGrant,
        )

        AgentCiAccess(
            stack,
            "CiAccess",
            AgentCiAccessProps(
                grants=[
                    AgentGrant(namespaces=["gitlab-runners"], group_id="42", access="read"),
                    AgentGrant(namespaces=["attic"], project_id="1234", access="operate"),
                ]
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AgentCiAccessProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("AgentCiAccess", _problems(props))
        self.subjects: dict[tuple[str, Access], list[str]] = {}
        for grant in props.grants:
            for namespace in grant.namespaces:
                self.subjects.setdefault((namespace, grant.access), []).append(grant.subject)
        labels = {
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/component": "ci-access",
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        for (namespace, access), groups in sorted(self.subjects.items()):
            groups.sort()
            name = f"{props.name}-{access}"
            role = RoleV1(
                self,
                f"Role-{namespace}-{access}",
                metadata=RoleV1Metadata(name=name, namespace=namespace, labels=labels),
                rule=[RoleV1Rule(**rule) for rule in RULES[access]],
                depends_on=list(props.depends_on) or None,
            )
            RoleBindingV1(
                self,
                f"RoleBinding-{namespace}-{access}",
                metadata=RoleBindingV1Metadata(name=name, namespace=namespace, labels=labels),
                role_ref=RoleBindingV1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name=name
                ),
                subject=[
                    RoleBindingV1Subject(
                        kind="Group", name=group, api_group="rbac.authorization.k8s.io"
                    )
                    for group in groups
                ],
                depends_on=[role],
            )
        operated = sorted({ns for ns, access in self.subjects if access == "operate"})
        self.admission_policy_manifest: dict[str, Any] | None = None
        if props.admission_policy and operated:
            self._restart_only(props.name, operated, labels)

    def _restart_only(self, name: str, namespaces: list[str], labels: dict[str, str]) -> None:
        policy_name = f"{name}-restart-only.attic-iac.io"
        unchanged = [
            ("spec.template.spec", "their pods"),
            ("spec.template.metadata.labels", "their pod labels"),
            ("spec.replicas", "their replicas"),
        ]
        self.admission_policy_manifest = policy_manifest(
            name=policy_name,
            labels=labels,
            api_group="apps",
            resource="deployments",
            operations=["UPDATE"],
            conditions=[
                {
                    "name": "gitlab-ci-job",
                    "expression": "request.userInfo.username.startsWith('gitlab:ci_job:')",
                },
                {
                    "name": "operated-namespace",
                    "expression": "request.namespace in ["
                    + ", ".join(f"'{ns}'" for ns in namespaces)
                    + "]",
                },
            ],
            validations=[
                {
                    "expression": f"object.{path} == oldObject.{path}",
                    "message": f"CI jobs may restart Deployments here, not change {what}",
                }
                for path, what in unchanged
            ],
        )
        deny_admission_policy(self, self.admission_policy_manifest)


def _problems(props: AgentCiAccessProps) -> list[str]:
    problems = [
        check_dns_label("name", props.name),
        "" if props.grants else "grants: at least one grant is needed",
    ]
    seen: set[tuple[str, str]] = set()
    for index, grant in enumerate(props.grants):
        where = f"grants[{index}]"
        if (grant.project_id is None) == (grant.group_id is None):
            problems.append(f"{where}: set exactly one of project_id and group_id")
        for prop, value in (("project_id", grant.project_id), ("group_id", grant.group_id)):
            if value is not None and not _ID.match(value):
                problems.append(f"{where}.{prop}: {value!r} is not a numeric GitLab id")
        if grant.access not in ACCESS_LEVELS:
            problems.append(
                f"{where}.access: {grant.access!r} is not one of {', '.join(ACCESS_LEVELS)}"
            )
        if not grant.namespaces:
            problems.append(f"{where}.namespaces: at least one namespace is needed")
        for namespace in grant.namespaces:
            problems.append(check_dns_label(f"{where}.namespaces", namespace))
            if (grant.subject, namespace) in seen:
                problems.append(f"{where}: {grant.subject} is granted {namespace} twice")
            seen.add((grant.subject, namespace))
    return problems
