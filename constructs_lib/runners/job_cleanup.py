"""A CronJob that deletes runner job pods (and per-job namespaces) that outlived their job.

A killed, evicted or upgraded runner manager leaves its job pods behind, and pods can hang in
Terminating; the runner never comes back for them. The cleanup lists pods by the job-pod labels
(:func:`~constructs_lib.runners.labels.job_pod_selector`) and decides by age, phase and
deletion timestamp itself, because Kubernetes has no field selector for those.

Its RBAC is ``get``/``list``/``delete`` on pods in the job namespaces only. With
``namespace_per_job`` it also needs ``list``/``delete`` on namespaces, which RBAC can only grant
cluster-wide, so a ValidatingAdmissionPolicy (Kubernetes >= 1.30) rejects every namespace
deletion by its service account whose name is not ``<prefix><digits>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.cluster_role_binding_v1 import (
    ClusterRoleBindingV1,
    ClusterRoleBindingV1RoleRef,
    ClusterRoleBindingV1Subject,
)
from cdktf_cdktf_provider_kubernetes.cluster_role_v1 import ClusterRoleV1, ClusterRoleV1Rule
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from cdktf_cdktf_provider_kubernetes.cron_job_v1 import CronJobV1, CronJobV1Spec
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1Rule
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from constructs import Construct

from constructs_lib.kubernetes.admission_policy import deny_admission_policy, policy_manifest
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.ops.bundle import shipped_script
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.role_grant import grant_role
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.runners.labels import PART_OF, job_pod_selector
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import OPS_PYTHON_IMAGE

__all__ = [
    "DEFAULT_NAME",
    "RUNNER_NAMESPACE_PER_JOB_PREFIX",
    "RunnerJobCleanup",
    "RunnerJobCleanupProps",
]

SCRIPT = "runner_cleanup.py"
SPEC = "cleanup.json"
SCRIPT_DIR = "/opt/runner-cleanup"
#: The distroless image's ``nonroot`` user.
UID = 65532
RUNNER_NAMESPACE_PER_JOB_PREFIX = "ci-job-"
"""What gitlab-runner names per-job namespaces: ``ci-job-<job id>`` (the prefix is fixed in
the runner's Kubernetes executor; it has no setting for it)."""
#: One run lists and deletes; it must never overlap the next (concurrencyPolicy Forbid).
RUN_DEADLINE_SECONDS = 300
DEFAULT_NAME = "runner-cleanup"
"""The default base name of the CronJob and its objects."""
_PREFIX = re.compile(r"^[a-z0-9][-a-z0-9]{0,61}$")
# CronJob names get an 11-character suffix for their Jobs.
_MAX_NAME = 52


def cleanup_script() -> str:
    """The script as the ConfigMap ships it: ``ops/runner_cleanup.py`` with the shared client
    (``constructs_lib/kubernetes/ops/incluster.py``) inlined, one standard-library file."""
    return shipped_script("constructs_lib.runners.ops", SCRIPT)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunnerJobCleanupProps:
    """Props of :class:`RunnerJobCleanup`.

    Attributes:
        namespace: where the CronJob runs (must exist when the stack is applied).
        job_namespaces: namespaces whose runner job pods are cleaned (at least one).
        max_age_seconds: a job pod created longer ago than this is deleted whatever its phase;
            keep it above the longest job timeout. Also the age at which per-job namespaces go.
        schedule: CronJob schedule (5 cron fields). Default ``"*/10 * * * *"``.
        finished_after_seconds: a ``Succeeded``/``Failed`` job pod is deleted this long after it
            finished; at most ``max_age_seconds``. Default 900.
        stuck_terminating_seconds: a pod still there this long after its grace period ended is
            force-deleted. Default 600.
        namespace_per_job_prefix: set when runners use ``namespace_per_job``: namespaces named
            ``<prefix><digits>`` older than ``max_age_seconds`` are deleted too. gitlab-runner
            always uses :data:`RUNNER_NAMESPACE_PER_JOB_PREFIX`. Default ``None`` - no namespace
            is ever deleted and no cluster-wide permission is granted.
        image: image that runs the script (Python 3.11+, standard library only). Default - the
            pinned distroless Python.
        name: base name of the objects (at most 52 characters). Default ``"runner-cleanup"``.
        resources: of the cleanup container. Default 20m / 32Mi requested, 500m / 128Mi limit.
        depends_on: resources that must exist first, e.g. the namespaces, which are named here
            by value. Default - none.
    """

    namespace: str
    job_namespaces: Sequence[str]
    max_age_seconds: int
    schedule: str = "*/10 * * * *"
    finished_after_seconds: int = 900
    stuck_terminating_seconds: int = 600
    namespace_per_job_prefix: str | None = None
    image: str = OPS_PYTHON_IMAGE.ref
    name: str = DEFAULT_NAME
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="20m", memory_request="32Mi", cpu_limit="500m", memory_limit="128Mi"
        )
    )
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class RunnerJobCleanup(Construct):
    """Scheduled deletion of leaked, finished and stuck runner job pods.

    Creates a ServiceAccount (``ServiceAccount``), a ConfigMap with the script and its settings
    (``Config``), a Role and RoleBinding per job namespace (``Role-<namespace>``,
    ``RoleBinding-<namespace>``) that may list and delete pods, with
    ``namespace_per_job_prefix`` a ClusterRole and binding (``ClusterRole``,
    ``ClusterRoleBinding``) limited by a ValidatingAdmissionPolicy (``AdmissionPolicy``,
    ``AdmissionPolicyBinding``) to deleting those namespaces, and the CronJob (``Schedule``).

    Attributes:
        admission_policy_manifest: the namespace-deletion policy as data, when it is added.
        labels: labels of the cleanup pods (for the NetworkPolicy that lets them reach the
            API server).
        service_account_name: the service account the cleanup pods run as.

    Example:
        ```python
        from constructs_lib.runners.job_cleanup import RunnerJobCleanup, RunnerJobCleanupProps

        RunnerJobCleanup(
            stack,
            "Cleanup",
            RunnerJobCleanupProps(
                namespace="gitlab-runners",
                job_namespaces=["ci-docker"],
                max_age_seconds=4 * 3600,
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: RunnerJobCleanupProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("RunnerJobCleanup", _problems(props))
        ns, name = props.namespace, props.name
        after = list(props.depends_on) or None
        self.labels = {
            "app.kubernetes.io/name": "runner-cleanup",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "job-cleanup",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        self.service_account_name = name
        account = ServiceAccountV1(
            self,
            "ServiceAccount",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            automount_service_account_token=False,
            depends_on=after,
        )
        spec = {
            "job_namespaces": list(props.job_namespaces),
            "label_selector": job_pod_selector(),
            "max_age_seconds": props.max_age_seconds,
            "finished_after_seconds": props.finished_after_seconds,
            "stuck_terminating_seconds": props.stuck_terminating_seconds,
            "namespace_per_job": None
            if props.namespace_per_job_prefix is None
            else {"prefix": props.namespace_per_job_prefix},
        }
        config = ConfigMapV1(
            self,
            "Config",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            data={
                SCRIPT: cleanup_script(),
                SPEC: json.dumps(spec, indent=2, sort_keys=True),
            },
            depends_on=after,
        )
        access: list[ITerraformDependable] = []
        for target in props.job_namespaces:
            access += self._grant_pods(props, target, account.metadata.name)
        if props.namespace_per_job_prefix is not None:
            access += self._grant_namespaces(
                props, props.namespace_per_job_prefix, account.metadata.name
            )
        CronJobV1(
            self,
            "Schedule",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            spec=to_struct(
                CronJobV1Spec,
                {
                    "schedule": props.schedule,
                    "concurrency_policy": "Forbid",
                    "starting_deadline_seconds": RUN_DEADLINE_SECONDS,
                    "successful_jobs_history_limit": 1,
                    "failed_jobs_history_limit": 3,
                    "job_template": {
                        "metadata": {"labels": self.labels},
                        "spec": {
                            # A failed run is reported (and alerted on), not retried: the next
                            # scheduled run tries again.
                            "backoff_limit": 0,
                            "active_deadline_seconds": RUN_DEADLINE_SECONDS,
                            "ttl_seconds_after_finished": str(6 * 3600),
                            "template": self._pod(
                                props, account.metadata.name, config.metadata.name
                            ),
                        },
                    },
                },
            ),
            depends_on=[*props.depends_on, *access],
        )

    def _pod(self, props: RunnerJobCleanupProps, account: str, config_map: str) -> dict[str, Any]:
        container = {
            "name": "cleanup",
            "image": props.image,
            "image_pull_policy": "IfNotPresent",
            "command": ["python3", f"{SCRIPT_DIR}/{SCRIPT}", f"{SCRIPT_DIR}/{SPEC}"],
            "env": [
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                {"name": "PYTHONUNBUFFERED", "value": "1"},
            ],
            "volume_mount": [{"name": "script", "mount_path": SCRIPT_DIR, "read_only": True}],
            "resources": props.resources.to_values(),
            "security_context": restricted_container(UID),
        }
        return {
            "metadata": {"labels": self.labels},
            "spec": {
                "service_account_name": account,
                # The script calls the Kubernetes API with this token.
                "automount_service_account_token": True,
                "enable_service_links": False,
                "restart_policy": "Never",
                "security_context": restricted_pod(UID),
                "container": [container],
                "volume": [{"name": "script", "config_map": {"name": config_map}}],
            },
        }

    def _grant_pods(
        self, props: RunnerJobCleanupProps, target: str, account: str
    ) -> list[ITerraformDependable]:
        return grant_role(
            self,
            target,
            name=props.name,
            labels=self.labels,
            account=account,
            account_namespace=props.namespace,
            depends_on=props.depends_on,
            rules=[
                RoleV1Rule(api_groups=[""], resources=["pods"], verbs=["get", "list", "delete"])
            ],
        )

    def _grant_namespaces(
        self, props: RunnerJobCleanupProps, prefix: str, account: str
    ) -> list[ITerraformDependable]:
        cluster_name = f"{props.name}.{props.namespace}.attic-iac.io"
        metadata = {"name": cluster_name, "labels": self.labels}
        user = f"system:serviceaccount:{props.namespace}:{account}"
        # _problems allows only [-a-z0-9] in the prefix: nothing to escape for CEL or RE2.
        pattern = f"^{prefix}[0-9]+$"
        self.admission_policy_manifest: dict[str, Any] = policy_manifest(
            name=cluster_name,
            labels=self.labels,
            api_group="",
            resource="namespaces",
            operations=["DELETE"],
            conditions=[
                {"name": "runner-cleanup", "expression": f"request.userInfo.username == '{user}'"}
            ],
            validations=[
                {
                    "expression": f"request.name.matches('{pattern}')",
                    "message": f"the runner job cleanup may only delete namespaces {pattern}",
                    "reason": "Forbidden",
                }
            ],
        )
        policy, policy_binding = deny_admission_policy(self, self.admission_policy_manifest)
        role = ClusterRoleV1(
            self,
            "ClusterRole",
            metadata=metadata,
            rule=[
                ClusterRoleV1Rule(
                    api_groups=[""], resources=["namespaces"], verbs=["list", "delete"]
                )
            ],
        )
        binding = ClusterRoleBindingV1(
            self,
            "ClusterRoleBinding",
            metadata=metadata,
            # The policy is in force before the permission it narrows is granted.
            depends_on=[role, policy_binding],
            role_ref=ClusterRoleBindingV1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_name
            ),
            subject=[
                ClusterRoleBindingV1Subject(
                    kind="ServiceAccount", name=account, namespace=props.namespace
                )
            ],
        )
        return [policy, policy_binding, role, binding]


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _problems(props: RunnerJobCleanupProps) -> list[str]:
    problems = [
        check_dns_label("namespace", props.namespace),
        check_dns_label("name", props.name),
        ""
        if len(props.name) <= _MAX_NAME
        else f"name: {props.name!r} is longer than {_MAX_NAME} characters (CronJob limit)",
        "" if props.job_namespaces else "job_namespaces: at least one namespace is needed",
        *(check_dns_label("job_namespaces", ns) for ns in props.job_namespaces),
        *(
            f"job_namespaces: {ns!r} is listed twice"
            for ns in sorted(set(props.job_namespaces))
            if list(props.job_namespaces).count(ns) > 1
        ),
        ""
        if len(props.schedule.split()) == 5
        else f"schedule: {props.schedule!r} must have 5 cron fields",
        *(
            f"{prop}: must be a positive number of seconds (got {value!r})"
            for prop, value in (
                ("max_age_seconds", props.max_age_seconds),
                ("finished_after_seconds", props.finished_after_seconds),
                ("stuck_terminating_seconds", props.stuck_terminating_seconds),
            )
            if not _is_positive_int(value)
        ),
    ]
    if (
        _is_positive_int(props.max_age_seconds)
        and _is_positive_int(props.finished_after_seconds)
        and props.finished_after_seconds > props.max_age_seconds
    ):
        problems.append(
            f"finished_after_seconds: {props.finished_after_seconds} exceeds max_age_seconds "
            f"{props.max_age_seconds} (finished pods would outlive leaked ones)"
        )
    prefix = props.namespace_per_job_prefix
    if prefix is not None:
        if not _PREFIX.match(prefix):
            problems.append(
                f"namespace_per_job_prefix: {prefix!r} is not the start of a Kubernetes name "
                "(lowercase letters, digits and '-', starting with a letter or digit, "
                "at most 62 characters)"
            )
        else:
            problems += [
                f"namespace_per_job_prefix: {prefix!r} would match namespace {ns!r}, "
                "which the cleanup would then delete"
                for ns in (props.namespace, *props.job_namespaces)
                if re.fullmatch(f"{prefix}[0-9]+", ns)
            ]
    return problems
