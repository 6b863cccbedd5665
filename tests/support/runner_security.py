"""The security context gitlab-runner 19.3's Kubernetes executor gives each container of a job
pod, computed from a rendered ``[runners.kubernetes]`` table, and what the API server and Pod
Security admission then say about it.

The runner (gitlab-runner tag v19.3.0, commit 9cbf0074ddb0e2f79d79f44406cafebf09117b64):

* ``common/config.go`` 1159-1187, ``GetContainerSecurityContext``: ``privileged`` and
  ``allow_privilege_escalation`` are the container table's, else the global
  ``[runners.kubernetes]`` flag (``getContainerSecurityContextEffectiveFlagValue``, 1212-1218);
  every other field is the container table's alone.
* ``common/config.go`` 1037-1071 and 1189-1210, capabilities: the global ``cap_add`` and
  ``cap_drop`` over the executor's default drop list, then the container table's ``add`` and
  ``drop``, each replacing the merged list whenever it is set.
* ``executors/kubernetes/kubernetes.go`` 2416-2426: the default drop list is ``NET_RAW``.
  Which table each container uses: the init-permissions container (created unless
  FF_USE_LEGACY_KUBERNETES_EXECUTION_STRATEGY is on, 1105-1128)
  ``init_permissions_container_security_context`` (1250-1253); ``build``
  ``build_container_security_context`` (2575-2579); ``helper``
  ``helper_container_security_context`` (2598-2602); every service
  ``service_container_security_context`` (2451-2455).

The API server (kubernetes ``pkg/apis/core/validation/security_contexts.go``,
``ValidateSecurityContext``): ``allowPrivilegeEscalation: false`` together with
``privileged: true``, or with ``CAP_SYS_ADMIN`` added, makes the pod invalid.

Pod Security admission, ``baseline`` (kubernetes ``staging/src/k8s.io/pod-security-admission/
policy``): no privileged container (``check_privileged.go``), no capability added beyond the
baseline set (``check_capabilities_baseline.go``), no ``Unconfined`` seccomp profile
(``check_seccompProfile_baseline.go``), ``procMount`` Default only (``check_procMount.go``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_CAP_DROP = ("NET_RAW",)
# The container roles of a job pod and the runner table each one takes its context from.
CONTEXT_TABLES = {
    "init-permissions": "init_permissions_container_security_context",
    "build": "build_container_security_context",
    "helper": "helper_container_security_context",
    "service": "service_container_security_context",
}
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


@dataclass(frozen=True)
class EffectiveContext:
    """A container's ``securityContext`` as the runner sends it (None = field not sent)."""

    privileged: bool | None
    allow_privilege_escalation: bool | None
    add: tuple[str, ...]
    drop: tuple[str, ...]
    seccomp: str | None
    proc_mount: str | None


def _flag(table: Mapping[str, Any], global_: Mapping[str, Any], key: str) -> bool | None:
    value = table.get(key)
    if value is None:
        value = global_.get(key)
    return None if value is None else bool(value)


def effective_context(kubernetes: Mapping[str, Any], role: str) -> EffectiveContext:
    """The context of the ``role`` container (a key of :data:`CONTEXT_TABLES`)."""
    table: Mapping[str, Any] = kubernetes.get(CONTEXT_TABLES[role]) or {}
    enabled = dict.fromkeys(DEFAULT_CAP_DROP, False)
    enabled.update(dict.fromkeys(kubernetes.get("cap_add", ()), True))
    enabled.update(dict.fromkeys(kubernetes.get("cap_drop", ()), False))
    add = tuple(sorted(c for c, on in enabled.items() if on))
    drop = tuple(sorted(c for c, on in enabled.items() if not on))
    capabilities = table.get("capabilities")
    if capabilities is not None:
        if capabilities.get("add") is not None:
            add = tuple(sorted(capabilities["add"]))
        if capabilities.get("drop") is not None:
            drop = tuple(sorted(capabilities["drop"]))
    seccomp = (table.get("seccomp_profile") or {}).get("type")
    return EffectiveContext(
        privileged=_flag(table, kubernetes, "privileged"),
        allow_privilege_escalation=_flag(table, kubernetes, "allow_privilege_escalation"),
        add=add,
        drop=drop,
        seccomp=seccomp,
        proc_mount=table.get("proc_mount") or None,
    )


def pod_contexts(kubernetes: Mapping[str, Any]) -> dict[str, EffectiveContext]:
    """Every container role of a job pod with its context; one service stands for all (they
    share one table)."""
    return {role: effective_context(kubernetes, role) for role in CONTEXT_TABLES}


def api_server_problems(context: EffectiveContext) -> list[str]:
    """Why ``ValidateSecurityContext`` refuses the container, if it does."""
    if context.allow_privilege_escalation is not False:
        return []
    problems = []
    if context.privileged:
        problems.append("cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
    if "CAP_SYS_ADMIN" in context.add:
        problems.append(
            "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"
        )
    return problems


def pod_security_problems(
    level: str, context: EffectiveContext, pod_seccomp: str | None
) -> list[str]:
    """Why Pod Security admission at ``level`` (``privileged`` or ``baseline``) refuses it."""
    if level == "privileged":
        return []
    if level != "baseline":
        raise ValueError(f"level {level!r} is not modelled here")
    problems = []
    if context.privileged:
        problems.append("privileged")
    problems += [f"capability {c} added" for c in context.add if c not in BASELINE_CAPABILITIES]
    if "Unconfined" in (context.seccomp, pod_seccomp):
        problems.append("seccomp Unconfined")
    if context.proc_mount not in (None, "Default", "default"):
        problems.append(f"procMount {context.proc_mount}")
    return problems
