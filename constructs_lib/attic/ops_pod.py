"""Pods for Attic operations: ``atticadm`` mints tokens in init containers, a stdlib Python
script (``ops/attic_ops.py``) uses them.

Tokens are minted inside the cluster with the signing key and handed over in a memory-backed
emptyDir, so no token ever passes through Terraform. The attic image has ``atticadm`` but no
HTTP client; the Python image has an HTTP client but never sees the signing key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from constructs import Construct

from constructs_lib.attic.pod import CONFIG_DIR, secret_env
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.ops.bundle import shipped_script
from constructs_lib.kubernetes.resources import ComputeResources

__all__ = ["AtticadmInputs"]

TOKEN_DIR = "/run/attic-tokens"
OPS_DIR = "/opt/attic-ops"
SCRIPT = "attic_ops.py"
UID = 65534
# atticadm loads the whole server config, which needs a database URL; it never connects.
_UNUSED_DATABASE = "sqlite://:memory:"
# make-token's flag per permission, in atticadm's processing order.
MINT_FLAGS = (
    ("pull", "--pull"),
    ("push", "--push"),
    ("delete", "--delete"),
    ("create_cache", "--create-cache"),
    ("configure_cache", "--configure-cache"),
    ("configure_cache_retention", "--configure-cache-retention"),
    ("destroy_cache", "--destroy-cache"),
)
SMALL = ComputeResources(
    cpu_request="20m", memory_request="32Mi", cpu_limit="500m", memory_limit="128Mi"
)


def ops_script() -> str:
    """The in-cluster script as its ConfigMap ships it: ``ops/attic_ops.py`` with the shared
    client (``constructs_lib/kubernetes/ops/incluster.py``) inlined, one standard-library file."""
    return shipped_script("constructs_lib.attic.ops", SCRIPT)


def ops_revision(attic: AtticadmInputs, python_image: str, script: str, spec: str) -> str:
    """Short hash of everything an operations Job runs, for its name: a change replaces the
    Job (so it runs again), no change leaves it alone."""
    return content_revision(attic.image, python_image, script, spec)


def content_revision(*parts: str) -> str:
    """Short hash of the images, script and input a Job runs (see :func:`ops_revision`)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]


@dataclass(frozen=True, kw_only=True, slots=True)
class Mint:
    """One ``atticadm make-token`` run.

    Attributes:
        file: token file name under :data:`TOKEN_DIR` (``<file>.jwt``).
        sub: the token's subject.
        validity: humantime validity, e.g. ``"10 minutes"``.
        grants: permission name (``pull``, ``push``, ...) to cache patterns.
    """

    file: str
    sub: str
    validity: str
    grants: Mapping[str, Sequence[str]]

    def args(self) -> list[str]:
        args = ["--sub", self.sub, "--validity", self.validity]
        for permission, flag in MINT_FLAGS:
            for pattern in self.grants.get(permission, ()):
                args += [flag, pattern]
        return args


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticadmInputs:
    """What ``atticadm`` needs: the image, ``server.toml`` and the signing key.

    Attributes:
        image: the atticd image (it ships ``/bin/atticadm`` and busybox).
        config_map: ConfigMap with ``server.toml``.
        signing_secret: Secret with the signing key.
        signing_key: its key, named like the env var atticd reads.
    """

    image: str
    config_map: str
    signing_secret: str
    signing_key: str


def mint_container(attic: AtticadmInputs, mint: Mint) -> dict[str, Any]:
    """Init container writing one token to ``<TOKEN_DIR>/<file>.jwt`` (mode 0600)."""
    return {
        "name": f"mint-{mint.file}",
        "image": attic.image,
        "image_pull_policy": "IfNotPresent",
        # A fixed script; the make-token arguments follow as positional parameters.
        "command": [
            "/bin/sh",
            "-c",
            'umask 077 && exec /bin/atticadm -f "$ATTIC_CONFIG" make-token "$@" > "$TOKEN_FILE"',
            "mint",
            *mint.args(),
        ],
        "env": [
            {"name": "ATTIC_CONFIG", "value": f"{CONFIG_DIR}/server.toml"},
            {"name": "TOKEN_FILE", "value": f"{TOKEN_DIR}/{mint.file}.jwt"},
            {"name": "ATTIC_SERVER_DATABASE_URL", "value": _UNUSED_DATABASE},
            secret_env(attic.signing_key, attic.signing_secret, attic.signing_key),
        ],
        "volume_mount": [
            {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
            {"name": "tokens", "mount_path": TOKEN_DIR},
        ],
        "resources": SMALL.to_values(),
        "security_context": restricted_container(UID),
    }


def ops_pod(
    *,
    attic: AtticadmInputs,
    mints: Sequence[Mint],
    python_image: str,
    script_config_map: str,
    args: Sequence[str],
    labels: Mapping[str, str],
    service_account: str,
    api_access: bool,
) -> dict[str, Any]:
    """Pod template: one init container per token, then ``attic_ops.py <args>``.

    ``api_access`` mounts the service-account token (only the rotation needs the API).
    """
    runner = {
        "name": "attic-ops",
        "image": python_image,
        "image_pull_policy": "IfNotPresent",
        "command": ["python3", f"{OPS_DIR}/{SCRIPT}", *args],
        "env": [
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "volume_mount": [
            {"name": "ops", "mount_path": OPS_DIR, "read_only": True},
            {"name": "tokens", "mount_path": TOKEN_DIR, "read_only": True},
        ],
        "resources": SMALL.to_values(),
        "security_context": restricted_container(UID),
    }
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "service_account_name": service_account,
            "automount_service_account_token": api_access,
            "restart_policy": "Never",
            "security_context": restricted_pod(UID),
            "init_container": [mint_container(attic, mint) for mint in mints],
            "container": [runner],
            "volume": [
                {"name": "config", "config_map": {"name": attic.config_map}},
                {"name": "ops", "config_map": {"name": script_config_map}},
                # Tokens live in memory only, for the life of the pod.
                {"name": "tokens", "empty_dir": {"medium": "Memory", "size_limit": "1Mi"}},
            ],
        },
    }


def ops_objects(
    scope: Construct,
    config_id: str,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    data: Mapping[str, str],
) -> tuple[ServiceAccountV1, ConfigMapV1]:
    """An ops workload's ServiceAccount (no automounted token: the script reads a projected one
    only where it calls the API) and its ConfigMap ``name`` holding the script and its input."""
    account = ServiceAccountV1(
        scope,
        "ServiceAccount",
        metadata={"name": name, "namespace": namespace},
        automount_service_account_token=False,
    )
    config = ConfigMapV1(
        scope,
        config_id,
        metadata={"name": name, "namespace": namespace, "labels": dict(labels)},
        data=dict(data),
    )
    return account, config
