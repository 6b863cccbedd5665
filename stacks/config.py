"""The configuration model: every key users may set, every default, every per-key rule.

This module must stay free of cdktf/jsii imports: config errors are reported before the
(slow) jsii runtime starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from constructs_lib.attic.humantime import parse_duration

STACK_NAME = re.compile(r"^[a-z0-9-]+$")
_ENV_NAME = r"^[a-z][a-z0-9-]*$"
_ORG_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class StrictModel(BaseModel):
    """Base for every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_url(value: str, schemes: tuple[str, ...], shown: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an {shown} URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not contain credentials, a query or a fragment")


def _https_url(value: str) -> str:
    _check_url(value, ("https",), "https://")
    return value.rstrip("/")


def _digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("must be a lowercase DNS name such as dev.example.com")
    return value


K8sName = Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]


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
    state_project_id: Annotated[str, BeforeValidator(_digits)] = Field(
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


class Monitoring(StrictModel):
    """Integration with a prometheus-operator based monitoring stack."""

    prometheus_operator: bool = Field(
        default=False,
        description="Create PodMonitors/ServiceMonitors; needs the prometheus-operator CRDs.",
    )


_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
_CRON5 = r"^\S+( \S+){4}$"
_CRON6 = r"^\S+( \S+){5}$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
Quantity = Annotated[str, Field(pattern=_QUANTITY)]


def _duration(value: str) -> str:
    parse_duration(value)  # raises ValueError with the reason
    return value


def _endpoint_url(value: str) -> str:
    _check_url(value, ("https", "http"), "http(s)://")
    return value


def _slash_url(value: str) -> str:
    _endpoint_url(value)
    if not value.endswith("/"):
        raise ValueError("must end with '/' (atticd appends paths to it verbatim)")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
EndpointUrl = Annotated[str, AfterValidator(_endpoint_url)]


class Resources(StrictModel):
    """Container requests and limits (Kubernetes quantities)."""

    cpu_request: Quantity
    memory_request: Quantity
    cpu_limit: Quantity
    memory_limit: Quantity


def _resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> Any:
    return Field(
        default_factory=lambda: Resources(
            cpu_request=cpu_request,
            memory_request=memory_request,
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
        )
    )


class ImageOverride(StrictModel):
    """Replace a pinned image (e.g. a mirror). Give the digest: tags can be re-pushed."""

    repository: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


class AtticApi(StrictModel):
    """The stateless ``atticd --mode api-server`` Deployment."""

    min_replicas: int = Field(default=2, ge=1, description="HPA floor.")
    max_replicas: int = Field(default=10, ge=1, description="HPA ceiling.")
    cpu_target_percent: int = Field(default=70, ge=1, le=100)
    memory_target_percent: int = Field(default=80, ge=1, le=100)
    resources: Resources = _resources("250m", "256Mi", "2", "1Gi")
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
    resources: Resources = _resources("100m", "128Mi", "1", "512Mi")


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
    resources: Resources = _resources("500m", "1Gi", "2", "2Gi")
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
    resources: Resources = _resources("250m", "512Mi", "2", "2Gi")
    image: ImageOverride | None = None


class MinioStorage(StrictModel):
    """In-cluster MinIO Tenant. MinIO's open-source project was archived in 2026."""

    namespace: K8sName = Field(default="attic-storage")
    servers: int = Field(default=1, ge=1, description="Immutable after the first apply.")
    volumes_per_server: int = Field(default=4, ge=1, description="Immutable.")
    volume_size: Quantity = "50Gi"
    storage_class: K8sName | None = None
    resources: Resources = _resources("250m", "1Gi", "2", "2Gi")
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
    if attic.api.min_replicas > attic.api.max_replicas:
        problems.append(
            (
                ("attic", "api", "min_replicas"),
                f"must not exceed attic.api.max_replicas ({attic.api.max_replicas})",
                attic.api.min_replicas,
            )
        )
    return problems
