"""Pod and container security contexts that pass the ``restricted`` Pod Security Standard.

Charts spell these in Kubernetes camelCase, so they are plain dicts meant for Helm values.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from typing import Any


def restricted_pod_security_context() -> dict[str, Any]:
    """Pod-level context: never root, default seccomp profile."""
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_container_security_context(uid: int) -> dict[str, Any]:
    """Container-level context: fixed non-root user, read-only root fs, no capabilities."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
