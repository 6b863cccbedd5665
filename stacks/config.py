"""The configuration model: every key users may set, every default, every per-key rule.

This module must stay free of cdktf/jsii imports: config errors are reported before the
(slow) jsii runtime starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from constructs_lib.attic.humantime import parse_duration
from constructs_lib.attic.names import PATTERN_RULE, is_cache_pattern
from stacks.config_base import (
    CacheName,
    Duration,
    ImageOverride,
    K8sName,
    Quantity,
    Resources,
    StrictModel,
    check_url,
    digits,
    resources_field,
)
from stacks.config_runners import Runners, attic_wiring_active, runner_problems

STACK_NAME = re.compile(r"^[a-z0-9-]+$")
_ENV_NAME = r"^[a-z][a-z0-9-]*$"
_ORG_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _https_url(value: str) -> str:
    check_url(value, ("https",), "https://")
    return value.rstrip("/")


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("must be a lowercase DNS name such as dev.example.com")
    return value


class Organization(StrictModel):
    """Who runs this deployment."""

    name: str = Field(
        pattern=_ORG_NAME,
        max_length=40,
        description="Short slug used in labels and descriptions: lowercase letters, digits, '-'.",
    )
    full_name: str = Field(min_length=1, description="Display name, e.g. 'Acme Corp'.")


class GitLab(StrictModel):
    """The GitLab that holds the Terraform state (and, later, the runners)."""

    url: Annotated[str, AfterValidator(_https_url)] = Field(
        description="GitLab base URL, https only, e.g. https://gitlab.com."
    )
    state_project_id: Annotated[str, BeforeValidator(digits)] = Field(
        pattern=r"^[0-9]+$",
        description="Numeric id of the project whose Terraform states hold every stack.",
    )
    state_username: str = Field(
        default="gitlab-ci-token",
        min_length=1,
        description="HTTP backend username; the password only ever comes from TF_HTTP_PASSWORD.",
    )


class Environment(StrictModel):
    """One deployment target: a cluster reached through a GitLab agent context."""

    cluster_context: str = Field(
        min_length=1,
        description="kubeconfig context (e.g. the GitLab agent context 'group/project:agent').",
    )
    domain: Annotated[str, AfterValidator(_hostname)] = Field(
        description="DNS domain under which this environment's hosts live."
    )
    protect_stateful: bool = Field(
        default=True,
        description="Set prevent_destroy on stateful resources so OpenTofu refuses to delete them.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Config deep-merged over the base for this environment (maps merge, "
        "lists and scalars replace); the result is validated as a whole.",
    )


class PlatformNamespaces(StrictModel):
    """Namespaces of the cluster-wide operators."""

    cnpg: K8sName = Field(
        default="cnpg-system",
        description="CloudNativePG operator namespace; the Barman Cloud plugin runs there too.",
    )
    cert_manager: K8sName = Field(default="cert-manager")
    minio_operator: K8sName = Field(default="minio-operator")


class Platform(StrictModel):
    """What the platform-<env> stack installs. 'external' means: already in the cluster."""

    cnpg_operator: Literal["install", "external"] = Field(
        default="install", description="CloudNativePG operator (chart pinned in versions)."
    )
    barman_cloud_plugin: Literal["install", "external", "none"] = Field(
        default="install",
        description="CNPG Barman Cloud plugin, the supported way to back up Postgres; "
        "'none' disables database backups.",
    )
    cert_manager: Literal["external", "install", "none"] = Field(
        default="external",
        description="cert-manager: most clusters have it ('external'); 'install' uses our pinned "
        "chart; 'none' is only allowed without the Barman Cloud plugin.",
    )
    minio_operator: Literal["install", "external"] = Field(
        default="install",
        description="MinIO operator, used only when attic.storage.backend is 'minio'.",
    )
    namespaces: PlatformNamespaces = Field(default_factory=PlatformNamespaces)


class Slo(StrictModel):
    """Service level objectives of the Attic cache, measured at the ingress controller."""

    availability_percent: float = Field(
        default=99.9,
        gt=90,
        lt=100,
        description="Share of requests that must not fail with 5xx over the window.",
    )
    window: Literal["7d", "28d", "30d"] = Field(default="30d", description="SLO window.")
    cache_hit_p99_ms: int = Field(
        default=500, ge=1, description="p99 latency target of narinfo lookups (cache hits)."
    )
    cache_info_p99_ms: int = Field(
        default=200, ge=1, description="p99 latency target of <cache>/nix-cache-info."
    )


class Monitoring(StrictModel):
    """Integration with a prometheus-operator based monitoring stack."""

    prometheus_operator: bool = Field(
        default=False,
        description="Create PodMonitors/ServiceMonitors and PrometheusRules; needs the "
        "prometheus-operator CRDs.",
    )
    slo: Slo = Field(default_factory=Slo)


_CRON5 = r"^\S+( \S+){4}$"
_CRON6 = r"^\S+( \S+){5}$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


def _endpoint_url(value: str) -> str:
    check_url(value, ("https", "http"), "http(s)://")
    return value


def _slash_url(value: str) -> str:
    _endpoint_url(value)
    if not value.endswith("/"):
        raise ValueError("must end with '/' (atticd appends paths to it verbatim)")
    return value


EndpointUrl = Annotated[str, AfterValidator(_endpoint_url)]


class AtticApi(StrictModel):
    """The stateless ``atticd --mode api-server`` Deployment."""

    min_replicas: int = Field(default=2, ge=1, description="HPA floor.")
    max_replicas: int = Field(default=10, ge=1, description="HPA ceiling.")
    cpu_target_percent: int = Field(default=70, ge=1, le=100)
    memory_target_percent: int = Field(default=80, ge=1, le=100)
    resources: Resources = resources_field("250m", "256Mi", "2", "1Gi")
    termination_grace_seconds: int = Field(
        default=600,
        ge=30,
        description="How long a stopping pod may finish in-flight uploads (a killed upload "
        "leaves rows that garbage collection never reclaims).",
    )
    endpoint: Annotated[str, AfterValidator(_slash_url)] | None = Field(
        default=None,
        description="Public API URL ending in '/'. Default: https://<ingress host>/ with the "
        "ingress, else the in-cluster Service URL.",
    )
    client_namespaces: list[K8sName] = Field(
        default_factory=list,
        description="Namespaces whose pods call atticd (and in-cluster storage) directly, "
        "e.g. CI runners; everything else comes through the ingress.",
    )


class AtticGc(StrictModel):
    """The single garbage collector."""

    interval: Duration = Field(
        default="12 hours",
        description="Pause between GC passes (humantime). '0s' runs GC from a CronJob instead.",
    )
    default_retention: Duration = Field(
        default="90 days",
        description="Objects not downloaded for this long are collected unless a cache sets "
        "its own retention; '0s' keeps everything.",
    )
    schedule: str = Field(
        default="0 3 * * *",
        pattern=_CRON5,
        description="CronJob schedule (5 fields), used only when interval is '0s'.",
    )
    resources: Resources = resources_field("100m", "128Mi", "1", "512Mi")


class AtticChunking(StrictModel):
    """Content-defined chunking. Changing it later hurts deduplication for a while."""

    nar_size_threshold: int = Field(default=65536, ge=0, description="0 disables chunking.")
    min_size: int = Field(default=16384)
    avg_size: int = Field(default=65536)
    max_size: int = Field(default=262144)


class AtticCompression(StrictModel):
    type: Literal["zstd", "brotli", "xz", "none"] = "zstd"
    level: int | None = Field(default=None, description="Default: atticd's (zstd 8).")


class DatabaseBackup(StrictModel):
    """Barman Cloud plugin backups of the Postgres cluster to object storage."""

    enabled: bool = Field(default=True, description="WAL archiving plus scheduled base backups.")
    schedule: str = Field(
        default="0 0 2 * * *",
        pattern=_CRON6,
        description="Base backup schedule: 6 fields, seconds first (02:00 daily).",
    )
    retention: str = Field(default="30d", pattern=r"^[1-9][0-9]*[dwm]$")
    bucket: str = Field(default="attic-pg-backups", pattern=_BUCKET)


class DatabaseRecovery(StrictModel):
    """Point-in-time recovery: bootstrap the cluster from another cluster's backups."""

    source_cluster: K8sName = Field(
        description="Name of the cluster whose backups to restore (its folder in the bucket)."
    )
    target_time: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$",
        description="RFC 3339 time to stop replay at, e.g. 2026-11-20T09:30:00Z. "
        "Default: the end of the archived WAL.",
    )


class AtticDatabase(StrictModel):
    """PostgreSQL through a CloudNativePG Cluster."""

    cluster_name: K8sName = Field(default="attic-pg")
    instances: int = Field(default=3, ge=1, le=9, description="1 primary + replicas.")
    storage_size: Quantity = "20Gi"
    storage_class: K8sName | None = Field(default=None, description="Default: the cluster's.")
    anti_affinity: Literal["preferred", "required"] = Field(
        default="preferred",
        description="'required' never puts two instances on one node (pending pods if it can't).",
    )
    resources: Resources = resources_field("500m", "1Gi", "2", "2Gi")
    image: ImageOverride | None = None
    backup: DatabaseBackup = Field(default_factory=DatabaseBackup)
    recovery: DatabaseRecovery | None = Field(
        default=None, description="Set only to restore; see the README's PITR runbook."
    )


class S3Storage(StrictModel):
    """An external S3-compatible endpoint (AWS, Backblaze B2, Cloudflare R2, ...)."""

    endpoint: EndpointUrl | None = Field(
        default=None,
        description="S3 API URL; Nix clients are redirected to it, so it must be public. "
        "Default: AWS S3 in the region.",
    )
    region: str = Field(default="us-east-1", min_length=1, description="'auto' for R2.")
    credentials: Literal["variables", "workload_identity"] = Field(
        default="variables",
        description="'variables': TF_VAR_attic_s3_access_key_id/..._secret_access_key (and "
        "TF_VAR_backup_s3_* for backups); 'workload_identity': none, the pods' identity.",
    )
    service_account_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations for the atticd and Postgres service accounts "
        "(e.g. eks.amazonaws.com/role-arn) with workload identity.",
    )
    create_bucket: bool = Field(
        default=False,
        description="Create the buckets with the AWS provider (AWS only; versioned, "
        "encrypted, public access blocked, lifecycle rules).",
    )


class SeaweedfsStorage(StrictModel):
    """In-cluster SeaweedFS (Apache-2.0, maintained)."""

    namespace: K8sName = Field(default="attic-storage")
    volume_size: Quantity = "100Gi"
    storage_class: K8sName | None = None
    resources: Resources = resources_field("250m", "512Mi", "2", "2Gi")
    image: ImageOverride | None = None


class MinioStorage(StrictModel):
    """In-cluster MinIO Tenant. MinIO's open-source project was archived in 2026."""

    namespace: K8sName = Field(default="attic-storage")
    servers: int = Field(default=1, ge=1, description="Immutable after the first apply.")
    volumes_per_server: int = Field(default=4, ge=1, description="Immutable.")
    volume_size: Quantity = "50Gi"
    storage_class: K8sName | None = None
    resources: Resources = resources_field("250m", "1Gi", "2", "2Gi")
    image: ImageOverride | None = None


class AtticStorage(StrictModel):
    """Object storage for the Attic cache."""

    backend: Literal["s3", "seaweedfs", "minio"] = Field(
        default="seaweedfs",
        description="'s3': any external S3 endpoint; 'seaweedfs': in-cluster, maintained; "
        "'minio': in-cluster via the MinIO operator (project archived in 2026).",
    )
    bucket: str = Field(default="attic", pattern=_BUCKET)
    clients_outside_cluster: bool = Field(
        default=True,
        description="Nix clients outside the cluster pull from this cache. atticd redirects "
        "them to the storage endpoint, so in-cluster backends then need public_endpoint.",
    )
    public_endpoint: EndpointUrl | None = Field(
        default=None,
        description="Public https URL of the in-cluster S3 API, served through the ingress; "
        "atticd uses it too, so presigned URLs work. Default with clients outside the "
        "cluster: https://s3.<ingress host>.",
    )
    s3: S3Storage = Field(default_factory=S3Storage)
    seaweedfs: SeaweedfsStorage = Field(default_factory=SeaweedfsStorage)
    minio: MinioStorage = Field(default_factory=MinioStorage)


class RateLimit(StrictModel):
    average: int = Field(default=100, ge=1, description="Requests per second per client.")
    burst: int = Field(default=200, ge=1)


class AtticIngress(StrictModel):
    """Public HTTPS access to atticd (and to in-cluster storage's public endpoint)."""

    enabled: bool = True
    host: Annotated[str, AfterValidator(_hostname)] | None = Field(
        default=None, description="Default: attic.<environment domain>."
    )
    controller: Literal["traefik", "nginx"] = Field(
        default="traefik",
        description="Annotations and middleware flavour. ingress-nginx is retired (2026).",
    )
    class_name: K8sName | None = Field(default=None, description="Default: the controller.")
    controller_namespace: K8sName = Field(
        default="traefik",
        description="Namespace of the ingress controller pods (allowed in by NetworkPolicy; "
        "k3s: kube-system).",
    )
    cluster_issuer: K8sName = Field(
        default="letsencrypt-prod", description="cert-manager ClusterIssuer for the TLS cert."
    )
    rate_limit: RateLimit | None = Field(
        default_factory=RateLimit,
        description="Traefik rateLimit middleware per client IP; null disables it.",
    )


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
    schedule: str = Field(default="0 2 * * *", pattern=_CRON5)
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
    bucket: str = Field(default="bazel-cache", pattern=_BUCKET)
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


class Attic(StrictModel):
    """The Attic binary cache (stack attic-<env>)."""

    namespace: K8sName = Field(default="attic")
    image: ImageOverride | None = None
    api: AtticApi = Field(default_factory=AtticApi)
    gc: AtticGc = Field(default_factory=AtticGc)
    chunking: AtticChunking = Field(default_factory=AtticChunking)
    compression: AtticCompression = Field(default_factory=AtticCompression)
    database: AtticDatabase = Field(default_factory=AtticDatabase)
    storage: AtticStorage = Field(default_factory=AtticStorage)
    ingress: AtticIngress = Field(default_factory=AtticIngress)
    server_extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra server.toml keys (kebab-case, e.g. soft-delete-caches); "
        "checked against the keys atticd knows.",
    )
    caches: list[AtticCache] = Field(
        default_factory=list, description="Caches an init Job creates and keeps configured."
    )
    tokens: list[AtticToken] = Field(
        default_factory=list, description="Scoped tokens minted into Secrets and rotated hourly."
    )
    cache_warming: CacheWarming = Field(default_factory=CacheWarming)
    bazel_cache: BazelCache = Field(default_factory=BazelCache)
    dns: AtticDns = Field(default_factory=AtticDns)


class OrganizationConfig(StrictModel):
    """config/organization.yaml: one file for every environment."""

    organization: Organization
    gitlab: GitLab
    environments: dict[Annotated[str, Field(pattern=_ENV_NAME, max_length=20)], Environment] = (
        Field(min_length=1, description="Environments by name (lowercase, digits, '-', <= 20).")
    )
    platform: Platform = Field(default_factory=Platform)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    attic: Attic = Field(default_factory=Attic)
    runners: Runners = Field(default_factory=Runners)


def cross_field_problems(config: OrganizationConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    """Rules that span several keys, as ``(path, message, value)``."""
    problems: list[tuple[tuple[str, ...], str, Any]] = []
    platform = config.platform
    if platform.cert_manager == "none" and platform.barman_cloud_plugin != "none":
        problems.append(
            (
                ("platform", "cert_manager"),
                "cert-manager is required while platform.barman_cloud_plugin is "
                f"'{platform.barman_cloud_plugin}' (the plugin's operator link uses "
                "cert-manager certificates); allowed: 'external', 'install', or set "
                "platform.barman_cloud_plugin to 'none' to run without database backups",
                platform.cert_manager,
            )
        )
    problems += _attic_problems(config)
    problems += runner_problems(config)
    return problems


def _attic_problems(config: OrganizationConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    attic = config.attic
    storage = attic.storage
    database = attic.database
    problems: list[tuple[tuple[str, ...], str, Any]] = []
    in_cluster = storage.backend != "s3"
    if (
        in_cluster
        and storage.clients_outside_cluster
        and storage.public_endpoint is None
        and not attic.ingress.enabled
    ):
        problems.append(
            (
                ("attic", "storage", "clients_outside_cluster"),
                f"with backend '{storage.backend}' Nix clients outside the cluster are "
                "redirected to the storage endpoint for single-chunk NARs, which needs a public "
                "endpoint served by the ingress, and attic.ingress.enabled is false; allowed: "
                "false (in-cluster clients only), enable the ingress, or use backend 's3'",
                True,
            )
        )
    if storage.public_endpoint is not None and not in_cluster:
        problems.append(
            (
                ("attic", "storage", "public_endpoint"),
                "only for in-cluster backends; with backend 's3' set storage.s3.endpoint",
                storage.public_endpoint,
            )
        )
    if storage.public_endpoint is not None and in_cluster and not attic.ingress.enabled:
        problems.append(
            (
                ("attic", "storage", "public_endpoint"),
                "is served through the ingress, which is disabled (attic.ingress.enabled)",
                storage.public_endpoint,
            )
        )
    if storage.backend == "s3" and storage.s3.create_bucket and storage.s3.endpoint:
        problems.append(
            (
                ("attic", "storage", "s3", "create_bucket"),
                "creates AWS S3 buckets; with a custom endpoint create the bucket with your "
                "provider and set create_bucket: false",
                True,
            )
        )
    if database.backup.enabled and config.platform.barman_cloud_plugin == "none":
        problems.append(
            (
                ("attic", "database", "backup", "enabled"),
                "backups need the Barman Cloud plugin (platform.barman_cloud_plugin is "
                "'none'); allowed: false, or install the plugin",
                True,
            )
        )
    recovery = database.recovery
    if recovery is not None:
        if recovery.source_cluster == database.cluster_name:
            problems.append(
                (
                    ("attic", "database", "recovery", "source_cluster"),
                    "must differ from attic.database.cluster_name: the restored cluster "
                    "archives into its own folder, never over its source's",
                    recovery.source_cluster,
                )
            )
        if config.platform.barman_cloud_plugin == "none":
            problems.append(
                (
                    ("attic", "database", "recovery"),
                    "restores from Barman Cloud backups, so platform.barman_cloud_plugin "
                    "must not be 'none'",
                    recovery.source_cluster,
                )
            )
    problems += _operations_problems(config)
    if attic.api.min_replicas > attic.api.max_replicas:
        problems.append(
            (
                ("attic", "api", "min_replicas"),
                f"must not exceed attic.api.max_replicas ({attic.api.max_replicas})",
                attic.api.min_replicas,
            )
        )
    return problems


def attic_client_namespaces(config: OrganizationConfig) -> list[str]:
    """Namespaces whose pods call atticd directly: the configured ones, plus the runners' job
    namespace when nix jobs use the in-cluster endpoint."""
    names = list(config.attic.api.client_namespaces)
    if attic_wiring_active(config) and config.runners.attic.endpoint == "in_cluster":
        names.append(config.runners.job_namespace)
    return list(dict.fromkeys(names))


def token_can_push(token: AtticToken, cache: str) -> bool:
    """Whether atticd would let this token pull and push ``cache`` (``attic push`` needs both)."""
    from constructs_lib.attic.tokens import NAMESPACE, build_claims, resolve_permissions

    claims = build_claims(sub="check", validity=1, now=0, grants=token.permissions.model_dump())
    granted, _ = resolve_permissions(claims[NAMESPACE]["caches"], cache)
    return granted["pull"] and granted["push"]


def token_secret(attic: Attic, token: AtticToken) -> tuple[str, str]:
    """(namespace, Secret name) of a token, defaults applied."""
    return (token.namespace or attic.namespace, token.secret_name or f"attic-{token.name}-token")


def _operations_problems(config: OrganizationConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    """Rules for declared caches, tokens, cache warming, the Bazel cache and DNS."""
    return [
        *_cache_problems(config.attic),
        *_token_problems(config.attic),
        *_warming_problems(config.attic),
        *_bazel_dns_problems(config.attic),
    ]


Problems = list[tuple[tuple[str, ...], str, Any]]
_RESERVED_SECRETS = frozenset(
    {
        "attic-token-signing",
        "attic-s3",
        "attic-pg-backup-s3",
        "attic-bazel-s3",
        "attic-tls",
        "attic-s3-tls",
    }
)


def _cache_problems(attic: Attic) -> Problems:
    problems: Problems = []
    seen: set[str] = set()
    for index, cache in enumerate(attic.caches):
        if cache.name in seen:
            problems.append(
                (("attic", "caches", str(index), "name"), "duplicate cache", cache.name)
            )
        seen.add(cache.name)
    return problems


def _token_problems(attic: Attic) -> Problems:
    problems: Problems = []
    names: set[str] = set()
    secrets: set[tuple[str, str]] = set()
    for index, token in enumerate(attic.tokens):
        path = ("attic", "tokens", str(index))
        namespace, secret = token_secret(attic, token)
        if token.name in names:
            problems.append(((*path, "name"), "duplicate token name", token.name))
        names.add(token.name)
        if (namespace, secret) in secrets:
            problems.append(
                ((*path, "secret_name"), f"another token already uses {namespace}/{secret}", secret)
            )
        secrets.add((namespace, secret))
        if namespace == attic.namespace and (
            secret in _RESERVED_SECRETS or secret.startswith(f"{attic.database.cluster_name}-")
        ):
            problems.append(
                (
                    (*path, "secret_name"),
                    "is one of the stack's own Secrets; choose another",
                    secret,
                )
            )
        problems += _grant_problems(token, path)
    return problems


def _grant_problems(token: AtticToken, path: tuple[str, ...]) -> Problems:
    problems: Problems = []
    granted = token.permissions.model_dump()
    if not any(granted.values()):
        problems.append(
            ((*path, "permissions"), "grants nothing; list cache patterns per permission", {})
        )
    extra = sorted(k for k, v in granted.items() if v and k != "pull")
    if token.type == "read_only" and extra:
        problems.append(
            (
                (*path, "permissions"),
                f"a read_only token may only pull (got {', '.join(extra)}); "
                "allowed: type ci or service for write access",
                extra,
            )
        )
    validity, window = token.validity_seconds(), token.rotate_before_seconds()
    shown = token.rotate_before or TOKEN_TYPE_DEFAULTS[token.type][1]
    if window >= validity:
        problems.append(
            (
                (*path, "rotate_before"),
                "must be shorter than the validity, or every hourly run re-mints",
                shown,
            )
        )
    elif window < MIN_ROTATE_WINDOW_SECONDS:
        problems.append(
            (
                (*path, "rotate_before"),
                "must leave at least 2 hours (the rotation CronJob runs hourly)",
                shown,
            )
        )
    return problems


def _warming_problems(attic: Attic) -> Problems:
    warming = attic.cache_warming
    if not warming.enabled:
        return []
    problems: Problems = []
    path = ("attic", "cache_warming")
    declared = sorted(c.name for c in attic.caches)
    if not warming.installables:
        problems.append(((*path, "installables"), "is empty; list flake installables", []))
    if warming.cache not in declared:
        problems.append(
            (
                (*path, "cache"),
                f"is not declared in attic.caches (declared: {', '.join(declared) or 'none'})",
                warming.cache,
            )
        )
    token = next((t for t in attic.tokens if t.name == warming.token), None)
    if token is None:
        have = ", ".join(sorted(t.name for t in attic.tokens)) or "none"
        return [
            *problems,
            ((*path, "token"), f"names no attic.tokens entry (have: {have})", warming.token),
        ]
    if token_secret(attic, token)[0] != attic.namespace:
        problems.append(
            (
                (*path, "token"),
                f"the warming job runs in {attic.namespace}, so its token's Secret must be "
                "there too (leave that token's namespace unset)",
                warming.token,
            )
        )
    if not token_can_push(token, warming.cache):
        problems.append(
            (
                (*path, "token"),
                f"token '{token.name}' cannot pull and push '{warming.cache}' (atticd uses "
                "the exact entry, else the first matching wildcard)",
                warming.token,
            )
        )
    return problems


def _bazel_dns_problems(attic: Attic) -> Problems:
    problems: Problems = []
    bazel = attic.bazel_cache
    if bazel.enabled and bazel.min_replicas > bazel.max_replicas:
        problems.append(
            (
                ("attic", "bazel_cache", "min_replicas"),
                f"must not exceed attic.bazel_cache.max_replicas ({bazel.max_replicas})",
                bazel.min_replicas,
            )
        )
    dns = attic.dns
    if dns.provider != "cloudflare":
        return problems
    for key in ("zone_id", "target"):
        if getattr(dns, key) is None:
            problems.append((("attic", "dns", key), "is required with provider 'cloudflare'", None))
    if dns.proxied:
        problems.append(
            (
                ("attic", "dns", "proxied"),
                "Cloudflare's proxy caps request bodies at 100 MB and NAR uploads are single "
                "requests; allowed: false",
                True,
            )
        )
    if not attic.ingress.enabled:
        problems.append(
            (
                ("attic", "dns", "provider"),
                "publishes the ingress host, and attic.ingress.enabled is false",
                dns.provider,
            )
        )
    return problems
