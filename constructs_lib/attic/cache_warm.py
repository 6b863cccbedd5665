"""A CronJob that builds installables with Nix and pushes their closures to an Attic cache.

Nix runs as a plain user so the pod passes the ``restricted`` Pod Security level: an init
container copies the image's ``/nix`` into an emptyDir the user owns, Nix then runs
single-user with its build sandbox off (the sandbox needs user namespaces and mounts that a
restricted pod does not get). Builds are therefore not isolated from each other: warm only
installables you trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import tomli_w
from cdktf_cdktf_provider_kubernetes.cron_job_v1 import CronJobV1, CronJobV1Spec
from constructs import Construct

from constructs_lib.attic.ops_pod import ops_objects
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import NIX_IMAGE, ImagePin
from upstream_formats.attic_names import NAME_RULE, is_cache_name

__all__ = ["DEFAULT_NAME", "AtticCacheWarm", "AtticCacheWarmProps"]

SCRIPT = "cache_warm.sh"
UID = 30000
HOME = "/home/warm"
SCRIPT_DIR = "/opt/cache-warm"
TOKEN_DIR = "/var/run/attic"
NIX_CONFIG = "\n".join(
    [
        "experimental-features = nix-command flakes",
        # The build sandbox needs user namespaces and mounts; a restricted pod has neither.
        "sandbox = false",
        "filter-syscalls = false",
        "build-users-group =",
        "accept-flake-config = false",
        "max-jobs = auto",
    ]
)


DEFAULT_NAME = "attic-cache-warm"
"""The default base name of the CronJob and its objects."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticCacheWarmProps:
    """Props of :class:`AtticCacheWarm`.

    Attributes:
        namespace: where the CronJob runs (the token Secret's namespace).
        endpoint: atticd URL ending in ``/`` (in-cluster is fine: the client then follows
            the server's advertised API endpoint).
        cache: cache to push to.
        token_secret: Secret with key ``token``: a token that may pull and push the cache.
        installables: flake installables to build.
        name: base name of the objects. Default ``"attic-cache-warm"``.
        schedule: CronJob schedule. Default ``"0 2 * * *"``.
        attic_client: flake installable that provides ``bin/attic``.
            Default ``"github:NixOS/nixpkgs/nixos-25.05#attic-client"``.
        image: Nix image. Default - the pinned ``nixos/nix``.
        store_size: size limit of the ``/nix`` emptyDir. Default ``"50Gi"``.
        timeout_seconds: deadline of one run. Default 14400.
        resources: of the build container. Default 1 CPU / 2Gi requested, 4 CPU / 8Gi limit.
    """

    namespace: str
    endpoint: str
    cache: str
    token_secret: str
    installables: Sequence[str]
    name: str = DEFAULT_NAME
    schedule: str = "0 2 * * *"
    attic_client: str = "github:NixOS/nixpkgs/nixos-25.05#attic-client"
    image: ImagePin = NIX_IMAGE
    store_size: str = "50Gi"
    timeout_seconds: int = 14400
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="1", memory_request="2Gi", cpu_limit="4", memory_limit="8Gi"
        )
    )


class AtticCacheWarm(Construct):
    """Nightly (by default) builds that really push; a failure never blocks the next run.

    Creates a ConfigMap with the script and the client config (``Config``) and the CronJob
    ``name`` (``Schedule``) whose pods run Nix as a plain user on an emptyDir ``/nix``, then
    ``attic push`` the closures. The token Secret must exist.

    Attributes:
        labels: labels of the warming pods (for NetworkPolicies).

    Example:
        ```python
        from constructs_lib.attic.cache_warm import AtticCacheWarm, AtticCacheWarmProps

        AtticCacheWarm(
            stack,
            "Warm",
            AtticCacheWarmProps(
                namespace="attic",
                endpoint="http://attic.attic.svc/",
                cache="main",
                token_secret="attic-warm-token",
                installables=["github:NixOS/nixpkgs/nixos-25.05#hello"],
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AtticCacheWarmProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "AtticCacheWarm",
            [
                check_dns_label("name", props.name),
                check_dns_label("token_secret", props.token_secret),
                "" if is_cache_name(props.cache) else f"cache: {props.cache!r} ({NAME_RULE})",
                "" if props.installables else "installables: at least one is needed",
                *(
                    f"installables: {i!r} must not be empty or start with '-'"
                    for i in props.installables
                    if not i.strip() or i.startswith("-")
                ),
                ""
                if props.endpoint.startswith(("http://", "https://"))
                and props.endpoint.endswith("/")
                else f"endpoint: {props.endpoint!r} must be an http(s) URL ending in '/'",
                ""
                if len(props.schedule.split()) == 5
                else f"schedule: {props.schedule!r} must have 5 cron fields",
                "" if props.timeout_seconds >= 600 else "timeout_seconds: must be >= 600",
            ],
        )
        self.labels = {
            "app.kubernetes.io/name": "attic",
            "app.kubernetes.io/component": "cache-warm",
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        script = resources.files("constructs_lib.attic.ops").joinpath(SCRIPT).read_text()
        # The attic client reads the token from the mounted Secret; this file holds no secret.
        client_config = tomli_w.dumps(
            {
                "default-server": "cluster",
                "servers": {
                    "cluster": {"endpoint": props.endpoint, "token-file": f"{TOKEN_DIR}/token"}
                },
            }
        )
        account, config = ops_objects(
            self,
            "Config",
            name=props.name,
            namespace=props.namespace,
            labels=self.labels,
            data={SCRIPT: script, "config.toml": client_config},
        )
        checksum = hashlib.sha256(f"{script}\n{client_config}".encode()).hexdigest()
        CronJobV1(
            self,
            "Schedule",
            metadata={"name": props.name, "namespace": props.namespace, "labels": self.labels},
            spec=to_struct(
                CronJobV1Spec,
                {
                    "schedule": props.schedule,
                    "concurrency_policy": "Forbid",
                    "starting_deadline_seconds": 3600,
                    "successful_jobs_history_limit": 3,
                    "failed_jobs_history_limit": 3,
                    "job_template": {
                        "metadata": {"labels": self.labels},
                        "spec": {
                            # A failed run is reported, not retried: the next run tries again.
                            "backoff_limit": 0,
                            "active_deadline_seconds": props.timeout_seconds,
                            "template": _pod(
                                props,
                                self.labels,
                                account.metadata.name,
                                config.metadata.name,
                                checksum,
                            ),
                        },
                    },
                },
            ),
        )


def _pod(
    props: AtticCacheWarmProps,
    labels: dict[str, str],
    account: str,
    config_map: str,
    checksum: str,
) -> dict[str, Any]:
    image = props.image.ref
    path = "/nix/var/nix/profiles/default/bin:/usr/bin:/bin"
    small = ComputeResources(
        cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
    )
    seed = {
        "name": "seed-store",
        "image": image,
        "image_pull_policy": "IfNotPresent",
        # The image's store, owned by the build user from here on.
        "command": ["/bin/sh", "-c", "cp -a /nix/. /seed/"],
        "env": [{"name": "PATH", "value": path}],
        "volume_mount": [{"name": "nix", "mount_path": "/seed"}],
        "resources": small.to_values(),
        "security_context": restricted_container(UID),
    }
    warm = {
        "name": "warm",
        "image": image,
        "image_pull_policy": "IfNotPresent",
        "command": ["/bin/sh", f"{SCRIPT_DIR}/{SCRIPT}", *props.installables],
        "env": [
            {"name": "PATH", "value": path},
            {"name": "HOME", "value": HOME},
            {"name": "USER", "value": "warm"},
            {"name": "XDG_CONFIG_HOME", "value": f"{HOME}/.config"},
            {"name": "TMPDIR", "value": "/tmp"},
            {"name": "NIX_CONFIG", "value": NIX_CONFIG},
            {"name": "ATTIC_CLIENT", "value": props.attic_client},
            {"name": "ATTIC_CACHE", "value": props.cache},
        ],
        "volume_mount": [
            {"name": "nix", "mount_path": "/nix"},
            {"name": "home", "mount_path": HOME},
            {"name": "tmp", "mount_path": "/tmp"},
            {"name": "script", "mount_path": SCRIPT_DIR, "read_only": True},
            {
                "name": "script",
                "mount_path": f"{HOME}/.config/attic/config.toml",
                "sub_path": "config.toml",
                "read_only": True,
            },
            {"name": "token", "mount_path": TOKEN_DIR, "read_only": True},
        ],
        "resources": props.resources.to_values(),
        "security_context": restricted_container(UID),
    }
    return {
        "metadata": {"labels": labels, "annotations": {"checksum/config": checksum}},
        "spec": {
            "service_account_name": account,
            "automount_service_account_token": False,
            "restart_policy": "Never",
            "security_context": restricted_pod(UID),
            "init_container": [seed],
            "container": [warm],
            "volume": [
                {"name": "nix", "empty_dir": {"size_limit": props.store_size}},
                {"name": "home", "empty_dir": {"size_limit": "1Gi"}},
                {"name": "tmp", "empty_dir": {"size_limit": props.store_size}},
                {"name": "script", "config_map": {"name": config_map}},
                {
                    "name": "token",
                    "secret": {
                        "secret_name": props.token_secret,
                        "items": [{"key": "token", "path": "token"}],
                    },
                },
            ],
        },
    }
