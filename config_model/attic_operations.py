"""Attic operations under ``attic:``: declared caches, scoped tokens and their rotation, cache
warming, the Bazel cache and DNS."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from config_model.base import (
    BUCKET,
    CRON5,
    CacheName,
    Duration,
    ImageOverride,
    K8sName,
    Quantity,
    Resources,
    StrictModel,
    resources_field,
)
from upstream_formats.attic_names import PATTERN_RULE, is_cache_pattern
from upstream_formats.humantime import parse_duration


def _cache_pattern(value: str) -> str:
    if not is_cache_pattern(value):
        raise ValueError(f"not an Attic cache pattern ({PATTERN_RULE})")
    return value


CachePattern = Annotated[str, AfterValidator(_cache_pattern)]
# Per-cache retention is stored as an i32 of seconds.
_MAX_RETENTION = 2**31 - 1


def _retention(value: str) -> str:
    if parse_duration(value) > _MAX_RETENTION:
        raise ValueError("atticd stores retention as i32 seconds (at most about 68 years)")
    return value


class AtticCache(StrictModel):
    """A cache the init Job creates and keeps configured."""

    name: CacheName = Field(description="Cache name, as in <url>/<name> and `attic push <name>`.")
    public: bool = Field(
        default=False, description="Anyone may pull without a token (pushing still needs one)."
    )
    priority: int = Field(
        default=41,
        ge=0,
        le=2**31 - 1,
        description="Nix substituter priority; lower is tried first (cache.nixos.org is 40).",
    )
    retention: Annotated[Duration, AfterValidator(_retention)] | None = Field(
        default=None,
        description="Collect objects not downloaded for this long; '0s' keeps everything. "
        "Default: attic.gc.default_retention.",
    )
    upstream_cache_key_names: list[str] = Field(
        default_factory=lambda: ["cache.nixos.org-1"],
        description="Paths signed by these keys are not pushed (they are already upstream).",
    )


TOKEN_TYPE_DEFAULTS: dict[str, tuple[str, str]] = {
    # type: (validity, rotate_before) - the seeds' rotation schedule.
    "ci": ("90 days", "14 days"),
    "read_only": ("90 days", "14 days"),
    "service": ("365 days", "30 days"),
    "admin": ("1 day", "6 hours"),
}
# The rotation CronJob runs hourly; a window shorter than two runs could let a token lapse.
MIN_ROTATE_WINDOW_SECONDS = 2 * 3600
_PERCENT = re.compile(r"^([1-9][0-9]?)%$")


class TokenPermissions(StrictModel):
    """Cache patterns per permission, as atticadm make-token's flags (``*`` is a wildcard).

    atticd uses the token's entry for the exact cache name, else the first matching wildcard,
    and never merges entries: list specific patterns before broad ones.
    """

    pull: list[CachePattern] = Field(default_factory=list)
    push: list[CachePattern] = Field(default_factory=list)
    delete: list[CachePattern] = Field(default_factory=list)
    create_cache: list[CachePattern] = Field(default_factory=list)
    configure_cache: list[CachePattern] = Field(default_factory=list)
    configure_cache_retention: list[CachePattern] = Field(default_factory=list)
    destroy_cache: list[CachePattern] = Field(default_factory=list)


def _rotate_before(value: str) -> str:
    if not _PERCENT.match(value):
        parse_duration(value)
    return value


class AtticToken(StrictModel):
    """A scoped token kept fresh in a Secret by the rotation CronJob."""

    name: K8sName = Field(description="Token id; also its JWT subject (attic-iac/<name>).")
    type: Literal["ci", "read_only", "service", "admin"] = Field(
        description="Sets validity and rotation defaults: ci and read_only 90 days (rotated "
        "14 days before expiry), service 365 days (30 days before), admin 1 day (6 hours)."
    )
    namespace: K8sName | None = Field(
        default=None,
        description="Namespace of the Secret; it must exist before attic-<env> is applied. "
        "Default: attic.namespace.",
    )
    secret_name: K8sName | None = Field(
        default=None,
        description="Secret holding the token under key 'token'. Default: attic-<name>-token.",
    )
    validity: Duration | None = Field(default=None, description="Default: from type.")
    rotate_before: Annotated[str, AfterValidator(_rotate_before)] | None = Field(
        default=None,
        description="Re-mint when less than this remains: a duration ('14 days') or a "
        "percentage of validity ('15%'). Default: from type.",
    )
    permissions: TokenPermissions

    def validity_seconds(self) -> int:
        return int(parse_duration(self.validity or TOKEN_TYPE_DEFAULTS[self.type][0]))

    def rotate_before_seconds(self) -> int:
        value = self.rotate_before or TOKEN_TYPE_DEFAULTS[self.type][1]
        percent = _PERCENT.match(value)
        if percent:
            return self.validity_seconds() * int(percent.group(1)) // 100
        return int(parse_duration(value))


class CacheWarming(StrictModel):
    """A CronJob that builds installables and pushes their closures to a cache."""

    enabled: bool = False
    schedule: str = Field(default="0 2 * * *", pattern=CRON5)
    cache: CacheName = Field(default="main", description="Declared cache to push to.")
    token: K8sName = Field(
        default="warm",
        description="attic.tokens entry (in attic.namespace, with push on the cache).",
    )
    installables: list[str] = Field(
        default_factory=list,
        description="Flake installables to build, e.g. 'github:NixOS/nixpkgs/nixos-25.05#hello'.",
    )
    attic_client: str = Field(
        default="github:NixOS/nixpkgs/nixos-25.05#attic-client",
        min_length=1,
        description="Flake installable providing the `attic` client used to push.",
    )
    image: ImageOverride | None = Field(default=None, description="Default: the pinned Nix image.")
    store_size: Quantity = Field(default="50Gi", description="Size limit of the /nix emptyDir.")
    timeout_seconds: int = Field(default=14400, ge=600, description="Job deadline.")
    resources: Resources = resources_field("1", "2Gi", "4", "8Gi")


class BazelCache(StrictModel):
    """bazel-remote on the cache's object storage (HTTP and gRPC, in-cluster)."""

    enabled: bool = False
    bucket: str = Field(default="bazel-cache", pattern=BUCKET)
    local_cache_size_gi: int = Field(
        default=20, ge=1, description="Disk tier per pod (emptyDir), in GiB."
    )
    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=6, ge=1)
    resources: Resources = resources_field("250m", "512Mi", "2", "2Gi")
    client_namespaces: list[K8sName] = Field(
        default_factory=list, description="Namespaces whose pods may call the cache (CI jobs)."
    )
    image: ImageOverride | None = None


class AtticDns(StrictModel):
    """A DNS record for the Attic host (and the public storage host)."""

    provider: Literal["none", "cloudflare"] = Field(
        default="none",
        description="'cloudflare': records through the Cloudflare provider; the API token comes "
        "from TF_VAR_cloudflare_api_token.",
    )
    zone_id: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{32}$", description="Cloudflare zone id."
    )
    target: str | None = Field(
        default=None,
        description="The ingress load balancer: an IPv4/IPv6 address (A/AAAA record) or a "
        "host name (CNAME).",
    )
    ttl: int = Field(default=300, ge=60, le=86400)
    proxied: bool = Field(
        default=False,
        description="Must stay false: Cloudflare's proxy caps request bodies at 100 MB and "
        "every NAR upload is one request.",
    )
