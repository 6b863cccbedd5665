"""Declared caches, created and kept configured by a Job over atticd's HTTP API.

The Job is named after a hash of what it applies, so OpenTofu replaces it (and it runs again)
whenever the declared caches, the images or the script change; otherwise it is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.job_v1 import JobV1, JobV1Spec, JobV1Timeouts
from constructs import Construct

from constructs_lib.attic.ops_pod import (
    OPS_DIR,
    SCRIPT,
    TOKEN_DIR,
    AtticadmInputs,
    Mint,
    ops_objects,
    ops_pod,
    ops_revision,
    ops_script,
)
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import raise_if_problems
from upstream_formats.attic_names import NAME_RULE, is_cache_name

__all__ = ["AtticCaches", "AtticCachesProps", "CacheSpec"]

_MAX_RETENTION = 2**31 - 1


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheSpec:
    """One cache as atticd's cache-config API spells it.

    Attributes:
        name: cache name (atticd's rules).
        public: anyone may pull. Default ``False``.
        priority: Nix substituter priority. Default 41 (atticd's default).
        upstream_cache_key_names: paths signed by these keys are not pushed.
            Default ``("cache.nixos.org-1",)``.
        retention_seconds: time-based GC for this cache; ``None`` uses the server's default,
            0 keeps everything. Default ``None``.
    """

    name: str
    public: bool = False
    priority: int = 41
    upstream_cache_key_names: Sequence[str] = ("cache.nixos.org-1",)
    retention_seconds: int | None = None

    def wire(self) -> dict[str, object]:
        """The cache as the in-cluster script reads it (atticd's cache-config fields)."""
        return {
            "name": self.name,
            "is_public": self.public,
            "priority": self.priority,
            "upstream_cache_key_names": list(self.upstream_cache_key_names),
            "retention_period": "Global"
            if self.retention_seconds is None
            else {"Period": self.retention_seconds},
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticCachesProps:
    """Props of :class:`AtticCaches`.

    Attributes:
        namespace: atticd's namespace.
        caches: the caches to create and configure (at least one).
        endpoint: atticd's in-cluster URL ending in ``/`` (its Host must be allowed).
        attic: image, ``server.toml`` and signing key for minting the Job's token.
        python_image: image that runs the script (Python 3.11+, standard library only).
        name: base name of the objects. Default ``"attic-caches"``.
        token_validity: validity of the Job's token. Default ``"30 minutes"``.
        timeout: how long OpenTofu waits for the Job. Default ``"15m"``.
        depends_on: e.g. the API Deployment. Default - none.
    """

    namespace: str
    caches: Sequence[CacheSpec]
    endpoint: str
    attic: AtticadmInputs
    python_image: str
    name: str = "attic-caches"
    token_validity: str = "30 minutes"
    timeout: str = "15m"
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class AtticCaches(Construct):
    """A Job that creates missing caches and applies their settings; never fails on
    "already exists". Its token is minted in the pod and only grants what it needs on
    exactly the declared caches: pull, create, configure and configure retention.

    Creates a ServiceAccount (``ServiceAccount``), a ConfigMap with the script and the caches
    (``Spec``) and the Job ``<name>-<revision>`` (``Job``), named after a hash of what it
    applies, so it runs again whenever the declared caches, the images or the script change.

    Attributes:
        labels: labels of the Job's pods (for NetworkPolicies: it calls ``endpoint``).
        job: the Job resource; OpenTofu waits for it to complete.

    Example:
        ```python
        from constructs_lib.attic.cache_init import AtticCaches, AtticCachesProps, CacheSpec
        from constructs_lib.attic.ops_pod import AtticadmInputs
        from constructs_lib.versions import ATTIC_IMAGE, OPS_PYTHON_IMAGE

        AtticCaches(
            stack,
            "Caches",
            AtticCachesProps(
                namespace="attic",
                caches=[CacheSpec(name="main", public=True), CacheSpec(name="ci")],
                endpoint="http://attic.attic.svc/",
                attic=AtticadmInputs(
                    image=ATTIC_IMAGE.ref,
                    config_map="attic-config",
                    signing_secret="attic-token-signing",
                    signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
                ),
                python_image=OPS_PYTHON_IMAGE.ref,
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AtticCachesProps) -> None:
        super().__init__(scope, construct_id)
        names = [cache.name for cache in props.caches]
        raise_if_problems(
            "AtticCaches",
            [
                "" if props.caches else "caches: at least one cache is needed",
                *(
                    f"caches: {name!r} is not a cache name ({NAME_RULE})"
                    for name in names
                    if not is_cache_name(name)
                ),
                *(
                    f"caches: {name!r} is declared twice"
                    for name in sorted({n for n in names if names.count(n) > 1})
                ),
                *(
                    f"caches: {c.name!r} retention_seconds must be 0..{_MAX_RETENTION}"
                    for c in props.caches
                    if c.retention_seconds is not None
                    and not 0 <= c.retention_seconds <= _MAX_RETENTION
                ),
                ""
                if props.endpoint.startswith(("http://", "https://"))
                and props.endpoint.endswith("/")
                else f"endpoint: {props.endpoint!r} must be an http(s) URL ending in '/'",
            ],
        )
        spec = json.dumps(
            {"endpoint": props.endpoint, "caches": [c.wire() for c in props.caches]},
            indent=2,
            sort_keys=True,
        )
        script = ops_script()
        labels = {
            "app.kubernetes.io/name": "attic",
            "app.kubernetes.io/component": "cache-init",
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        self.labels = labels
        account, config = ops_objects(
            self,
            "Spec",
            name=props.name,
            namespace=props.namespace,
            labels=labels,
            data={SCRIPT: script, "caches.json": spec},
        )
        revision = ops_revision(props.attic, props.python_image, script, spec)
        mint = Mint(
            file="caches",
            sub="attic-iac/cache-init",
            validity=props.token_validity,
            grants=dict.fromkeys(
                ("pull", "create_cache", "configure_cache", "configure_cache_retention"), names
            ),
        )
        self.job = JobV1(
            self,
            "Job",
            metadata={
                "name": f"{props.name}-{revision}",
                "namespace": props.namespace,
                "labels": labels,
            },
            spec=to_struct(
                JobV1Spec,
                {
                    "backoff_limit": 3,
                    "active_deadline_seconds": 900,
                    "template": ops_pod(
                        attic=props.attic,
                        mints=[mint],
                        python_image=props.python_image,
                        script_config_map=config.metadata.name,
                        args=[
                            "caches",
                            "--spec",
                            f"{OPS_DIR}/caches.json",
                            "--token-file",
                            f"{TOKEN_DIR}/caches.jwt",
                        ],
                        labels=labels,
                        service_account=account.metadata.name,
                        api_access=False,
                    ),
                },
            ),
            wait_for_completion=True,
            timeouts=JobV1Timeouts(create=props.timeout, update=props.timeout),
            depends_on=list(props.depends_on) or None,
        )
