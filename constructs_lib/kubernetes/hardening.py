"""Security contexts that pass Pod Security ``restricted``, written once for every workload.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from typing import Any


def restricted_container(uid: int) -> dict[str, Any]:
    """Container context: non-root ``uid``, read-only root, no privilege, no capabilities."""
    return {
        "run_as_non_root": True,
        "run_as_user": str(uid),
        "run_as_group": str(uid),
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def restricted_pod(uid: int) -> dict[str, Any]:
    """Pod context: non-root ``uid`` that also owns mounted volumes (``fs_group``)."""
    return {
        "run_as_non_root": True,
        "run_as_user": str(uid),
        "run_as_group": str(uid),
        "fs_group": str(uid),
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
