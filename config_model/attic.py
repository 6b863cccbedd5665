"""The ``attic:`` section: atticd's API and garbage collector, chunking, compression, the
Postgres database, object storage and ingress, and the section's root model."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from config_model.attic_operations import AtticCache, AtticDns, AtticToken, BazelCache, CacheWarming
from config_model.base import (
    BUCKET,
    CRON5,
    CRON6,
    Cidr,
    Duration,
    EndpointUrl,
    Hostname,
    ImageOverride,
    K8sName,
    Port,
    Quantity,
    Resources,
    StrictModel,
    check_url,
    resources_field,
)
from upstream_formats.attic_tokens import NAMESPACE, build_claims, resolve_permissions
from upstream_formats.postgres_options import TIME_SETTING


def _slash_url(value: str) -> str:
    check_url(value, ("https", "http"), "http(s)://")
    if not value.endswith("/"):
        raise ValueError("must end with '/' (atticd appends paths to it verbatim)")
    return value


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
    statement_timeout: Annotated[str, Field(pattern=TIME_SETTING)] | None = Field(
        default="60s",
        description="Postgres statement_timeout of the API's own database sessions (units ms, "
        "s, min, h, d); null: none. Migrations and garbage collection never get one.",
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
        pattern=CRON5,
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


class BackupS3(StrictModel):
    """An S3 endpoint outside the cluster for the Postgres backups."""

    endpoint: EndpointUrl | None = Field(
        default=None, description="S3 API URL. Default: AWS S3 in the region."
    )
    region: str = Field(default="us-east-1", min_length=1, description="'auto' for R2.")
    credentials: Literal["variables", "secret", "workload_identity"] = Field(
        default="variables",
        description="'variables': TF_VAR_backup_s3_access_key_id/..._secret_access_key; "
        "'secret': an existing Secret in attic.namespace with keys access_key_id and "
        "secret_access_key (secret_name); 'workload_identity': the Postgres pods' identity.",
    )
    secret_name: K8sName | None = Field(
        default=None, description="credentials 'secret': that Secret's name."
    )
    service_account_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="workload_identity: annotations for the Postgres service account "
        "(e.g. eks.amazonaws.com/role-arn).",
    )


class DatabaseBackup(StrictModel):
    """Barman Cloud plugin backups of the Postgres cluster to object storage."""

    enabled: bool = Field(default=True, description="WAL archiving plus scheduled base backups.")
    schedule: str = Field(
        default="0 0 2 * * *",
        pattern=CRON6,
        description="Base backup schedule: 6 fields, seconds first (02:00 daily).",
    )
    retention: str = Field(default="30d", pattern=r"^[1-9][0-9]*[dwm]$")
    bucket: str = Field(
        default="attic-pg-backups",
        pattern=BUCKET,
        description="Bucket of the backups, one folder per cluster name; with s3, one bucket "
        "(or cluster name) per environment.",
    )
    s3: BackupS3 | None = Field(
        default=None,
        description="Back up to this S3 endpoint, outside the cluster. Default: attic.storage, "
        "which with seaweedfs and minio is inside the cluster, beside the cache.",
    )
    in_cluster: Literal["warn", "refuse", "allow"] = Field(
        default="warn",
        description="Backups inside the cluster (seaweedfs/minio storage, no s3) in an "
        "environment with protect_stateful: losing that storage loses the database and its "
        "backups together. 'warn' on every command, 'refuse' them, or 'allow' them silently.",
    )


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
    filer_store: Literal["auto", "postgres", "leveldb"] = Field(
        default="auto",
        description="Where the filer keeps its index of which chunks make each object (lose "
        "it and every NAR is lost): 'postgres': a database in attic's Postgres cluster, so "
        "its backups and point-in-time recovery cover it; 'leveldb': the filer's volume, no "
        "backup; 'auto': postgres, unless the Postgres backups are stored in this SeaweedFS "
        "(a restore would need the index it restores), then leveldb.",
    )
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
    bucket: str = Field(default="attic", pattern=BUCKET)
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


class ClientIp(StrictModel):
    """How the ingress controller tells one client from another for the rate limit."""

    source: Literal["remote_address", "forwarded_for", "header"] = Field(
        default="remote_address",
        description="'remote_address': the connection's address (right when clients reach the "
        "controller directly or the load balancer keeps their address); 'forwarded_for': an "
        "X-Forwarded-For entry (Traefik only, with forwardedHeaders.trustedIPs set for your "
        "proxies, or Traefik strips the header and every client shares one limit); 'header': "
        "a header your proxy sets (Traefik only).",
    )
    depth: int | None = Field(
        default=None,
        ge=1,
        description="forwarded_for: the entry this far from the right (1: the address your "
        "nearest proxy saw).",
    )
    excluded_ips: list[Cidr] = Field(
        default_factory=list,
        description="forwarded_for, instead of depth: your proxies' ranges; the first entry "
        "from the right outside them is the client.",
    )
    header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]+$",
        description="header: its name, e.g. CF-Connecting-IP.",
    )


class RateLimit(StrictModel):
    """Per-client limit on atticd's API (/_api/: cache administration, uploads). Binary cache
    reads (nix-cache-info, narinfo, NARs) are never limited."""

    average: int = Field(default=100, ge=1, description="Requests per second per client.")
    burst: int = Field(
        default=200, ge=1, description="Requests at once above the average (nginx: a multiple)."
    )
    client_ip: ClientIp = Field(default_factory=ClientIp)


# The ports the controllers' pods listen on, which is what a NetworkPolicy sees once kube-proxy
# has translated the Service's 80/443: Traefik's chart ports.web.port 8000 and
# ports.websecure.port 8443 (traefik-helm-chart traefik/values.yaml; k3s installs that chart);
# ingress-nginx's controller.containerPort http 80 and https 443.
CONTROLLER_POD_PORTS: dict[str, tuple[int, ...]] = {"traefik": (8000, 8443), "nginx": (80, 443)}


class AtticIngress(StrictModel):
    """Public HTTPS access to atticd (and to in-cluster storage's public endpoint)."""

    enabled: bool = True
    host: Hostname | None = Field(default=None, description="Default: attic.<environment domain>.")
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
    controller_ports: list[Port] | None = Field(
        default=None,
        min_length=1,
        description="Ports the controller's pods listen on (NetworkPolicy sees these, not the "
        "Service's 80/443). Default: traefik 8000, 8443 (the Traefik chart's web and "
        "websecure); nginx 80, 443.",
    )
    load_balancer_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Addresses of the load balancer in front of the controller, when traffic "
        "from pods to it leaves the node instead of being short-circuited by kube-proxy (a "
        "hostname load balancer, ipMode Proxy, or an internal one on a private range). Pods "
        "that use the public endpoints (nix jobs, cache warming, atticd with public storage) "
        "may then connect to them on the endpoints' ports.",
    )
    cluster_issuer: K8sName = Field(
        default="letsencrypt-prod", description="cert-manager ClusterIssuer for the TLS cert."
    )
    acme_http01: bool = Field(
        default=True,
        description="The ClusterIssuer solves ACME HTTP-01 challenges: the solver pods "
        "cert-manager starts beside each Ingress may be reached from the controller's "
        "namespace on 8089. false for a DNS-01 or non-ACME issuer: nothing is opened.",
    )
    rate_limit: RateLimit | None = Field(
        default_factory=RateLimit,
        description="Per-client limit on the API paths (Traefik Middleware or nginx "
        "annotations); null disables it.",
    )

    def pod_ports(self) -> list[int]:
        """The controller pods' ports: configured, else the controller's defaults."""
        if self.controller_ports is not None:
            return list(self.controller_ports)
        return list(CONTROLLER_POD_PORTS[self.controller])


class SigningKey(StrictModel):
    """atticd's RS256 key, which signs every token: whoever holds it can mint admin tokens."""

    source: Literal["in_cluster", "terraform"] = Field(
        default="in_cluster",
        description="'in_cluster': a Job generates it with OpenSSL into Secret "
        "attic-token-signing if that Secret is absent (an existing one is kept), so it never "
        "enters Terraform state; 'terraform': a tls_private_key, kept in the state (readable "
        "by everyone who can read the state project).",
    )
    image: ImageOverride | None = Field(
        default=None,
        description="in_cluster: image with openssl 3 and base64 that generates the key. "
        "Default: the pinned docker:dind image (Alpine, OpenSSL 3).",
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
    signing_key: SigningKey = Field(default_factory=SigningKey)
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


def token_can_push(token: AtticToken, cache: str) -> bool:
    """Whether atticd would let this token pull and push ``cache`` (``attic push`` needs both)."""
    claims = build_claims(sub="check", validity=1, now=0, grants=token.permissions.model_dump())
    granted, _ = resolve_permissions(claims[NAMESPACE]["caches"], cache)
    return granted["pull"] and granted["push"]


def token_secret(attic: Attic, token: AtticToken) -> tuple[str, str]:
    """(namespace, Secret name) of a token, defaults applied."""
    return (token.namespace or attic.namespace, token.secret_name or f"attic-{token.name}-token")
