"""Object storage for attic-<env>: which backend, which buckets, which credentials.

Each backend yields two endpoints: one for atticd (its URL is the public endpoint whenever
Nix clients are redirected to it) and one for Postgres backups (always the internal URL),
unless the backups go to their own S3 endpoint outside the cluster (``backup.s3``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cdktf import ITerraformDependable, TerraformVariable
from constructs import Construct

from config_model.attic import BackupS3
from config_model.base import ImageOverride, Resources
from config_model.loader import ResolvedEnvironment
from config_model.wiring import storage_client_namespaces
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.kubernetes.web_ingress import WebIngress, WebIngressProps
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)
from constructs_lib.storage.s3_endpoint import S3Credentials, S3Endpoint, StorageIdentity
from constructs_lib.storage.seaweedfs import FilerPostgres
from constructs_lib.versions import ImagePin
from stacks.attic_endpoints import MINIO_TENANT, ingress_egress, storage_public_url

ATTIC_IDENTITY = "attic"
BACKUP_IDENTITY = "postgres"
BAZEL_IDENTITY = "bazel"
# Secrets in the attic namespace holding each consumer's S3 key pair.
ATTIC_KEYS_SECRET = "attic-s3"
BACKUP_KEYS_SECRET = "attic-pg-backup-s3"
BAZEL_KEYS_SECRET = "attic-bazel-s3"


@dataclass(frozen=True, slots=True)
class BackupWiring:
    """Where Postgres archives, what must exist before it starts, and the identity of its pods
    there (workload identity)."""

    endpoint: S3Endpoint
    depends_on: tuple[ITerraformDependable, ...]
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StorageWiring:
    attic: S3Endpoint
    backup: BackupWiring | None
    public_url: str | None
    depends_on: tuple[ITerraformDependable, ...]
    # bazel-remote's bucket (internal URL), when the Bazel cache is on.
    bazel: S3Endpoint | None = None
    # For atticd's pods when they authenticate to storage by workload identity.
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    # Pods outside the attic namespace that connect to Postgres (SeaweedFS's filer).
    database_clients: tuple[Peer, ...] = ()


def compute(resources: Resources) -> ComputeResources:
    return ComputeResources(**resources.model_dump())


def image_pin(override: ImageOverride | None, default: ImagePin) -> ImagePin:
    """The configured image, else the pinned default."""
    if override is None:
        return default
    return ImagePin(repository=override.repository, tag=override.tag, digest=override.digest)


def build_storage(
    scope: Construct,
    env: ResolvedEnvironment,
    namespace: str,
    backups: bool,
    *,
    filer: FilerPostgres | None = None,
) -> StorageWiring:
    """Create the configured backend and return how atticd and, with ``backups``, Postgres
    reach it; ``filer``: SeaweedFS keeps its index in that database."""
    if env.config.attic.storage.backend == "s3":
        return _external_s3(scope, env, namespace, backups)
    return _in_cluster(scope, env, namespace, backups, storage_public_url(env), filer=filer)


def build_backup_destination(
    scope: Construct, namespace: str, s3: BackupS3, bucket: str
) -> BackupWiring:
    """The S3 endpoint outside the cluster that ``attic.database.backup.s3`` names. Nothing in
    the cluster has to exist before Postgres archives there."""
    if s3.credentials == "variables":
        credentials: S3Credentials | None = _variable_credentials(
            scope, namespace, "backup", BACKUP_KEYS_SECRET
        )
    elif s3.credentials == "secret":
        credentials = S3Credentials(secret_name=s3.secret_name or "")
    else:
        credentials = None
    endpoint = S3Endpoint(
        url=s3.endpoint,
        region=s3.region,
        bucket=bucket,
        credentials=credentials,
        egress=_internet_egress(s3.endpoint),
    )
    return BackupWiring(
        endpoint=endpoint, depends_on=(), service_account_annotations=s3.service_account_annotations
    )


def _internet_egress(url: str | None) -> tuple[Rule, ...]:
    """Any address on the endpoint's port (443 for AWS S3)."""
    parts = urlsplit(url) if url else None
    port = (parts.port or (80 if parts.scheme == "http" else 443)) if parts else 443
    return (Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=[port]),)


def _variable_credentials(
    scope: Construct, namespace: str, prefix: str, secret: str
) -> S3Credentials:
    """A key pair from the sensitive variables ``<prefix>_s3_access_key_id`` and
    ``<prefix>_s3_secret_access_key`` (``TF_VAR_...``), in Secret ``secret``."""
    key_id = TerraformVariable(
        scope,
        f"{prefix}_s3_access_key_id",
        type="string",
        sensitive=True,
        description=f"S3 access key id for {prefix} (export TF_VAR_{prefix}_s3_access_key_id)",
    )
    secret_key = TerraformVariable(
        scope,
        f"{prefix}_s3_secret_access_key",
        type="string",
        sensitive=True,
        description=f"S3 secret key for {prefix} (TF_VAR_{prefix}_s3_secret_access_key)",
    )
    return S3CredentialsSecret(
        scope,
        f"{prefix.capitalize()}S3Credentials",
        S3CredentialsSecretProps(
            name=secret,
            namespace=namespace,
            access_key_id=key_id.string_value,
            secret_access_key=secret_key.string_value,
        ),
    ).credentials


def _external_s3(
    scope: Construct, env: ResolvedEnvironment, namespace: str, backups: bool
) -> StorageWiring:
    storage = env.config.attic.storage
    s3 = storage.s3
    protect = env.settings.protect_stateful
    depends: list[ITerraformDependable] = []
    if s3.create_bucket:
        from constructs_lib.storage.aws_s3_bucket import AwsS3Bucket, AwsS3BucketProps
        from stacks.providers import aws_provider

        aws_provider(scope, s3.region)
        buckets = [("Bucket", storage.bucket)]
        if backups:
            buckets.append(("BackupBucket", env.config.attic.database.backup.bucket))
        if env.config.attic.bazel_cache.enabled:
            buckets.append(("BazelBucket", env.config.attic.bazel_cache.bucket))
        for construct_id, name in buckets:
            depends.append(
                AwsS3Bucket(
                    scope, construct_id, AwsS3BucketProps(name=name, protect=protect)
                ).bucket
            )
    url = s3.endpoint
    egress = _internet_egress(url)

    def credentials(prefix: str, secret: str) -> S3Credentials | None:
        if s3.credentials == "workload_identity":
            return None
        return _variable_credentials(scope, namespace, prefix, secret)

    attic_endpoint = S3Endpoint(
        url=url,
        region=s3.region,
        bucket=storage.bucket,
        credentials=credentials("attic", ATTIC_KEYS_SECRET),
        egress=egress,
    )
    backup = (
        BackupWiring(
            endpoint=S3Endpoint(
                url=url,
                region=s3.region,
                bucket=env.config.attic.database.backup.bucket,
                credentials=credentials("backup", BACKUP_KEYS_SECRET),
                egress=egress,
            ),
            depends_on=tuple(depends),
            service_account_annotations=s3.service_account_annotations,
        )
        if backups
        else None
    )
    bazel = env.config.attic.bazel_cache
    bazel_endpoint = (
        S3Endpoint(
            url=url,
            region=s3.region,
            bucket=bazel.bucket,
            credentials=credentials("bazel", BAZEL_KEYS_SECRET),
            egress=egress,
        )
        if bazel.enabled
        else None
    )
    return StorageWiring(
        attic=attic_endpoint,
        backup=backup,
        public_url=None,
        depends_on=tuple(depends),
        bazel=bazel_endpoint,
        service_account_annotations=s3.service_account_annotations,
    )


def _in_cluster(
    scope: Construct,
    env: ResolvedEnvironment,
    namespace: str,
    backups: bool,
    public_url: str | None,
    *,
    filer: FilerPostgres | None,
) -> StorageWiring:
    config = env.config
    attic = config.attic
    storage = attic.storage
    protect = env.settings.protect_stateful
    identities = [
        StorageIdentity(
            name=ATTIC_IDENTITY,
            bucket=storage.bucket,
            secret_namespace=namespace,
            secret_name=ATTIC_KEYS_SECRET,
        )
    ]
    if backups:
        identities.append(
            StorageIdentity(
                name=BACKUP_IDENTITY,
                bucket=attic.database.backup.bucket,
                secret_namespace=namespace,
                secret_name=BACKUP_KEYS_SECRET,
            )
        )
    if attic.bazel_cache.enabled:
        identities.append(
            StorageIdentity(
                name=BAZEL_IDENTITY,
                bucket=attic.bazel_cache.bucket,
                secret_namespace=namespace,
                secret_name=BAZEL_KEYS_SECRET,
            )
        )
    clients = storage_client_namespaces(config, public_endpoint=public_url is not None)
    if public_url:
        clients.append(attic.ingress.controller_namespace)
    database_clients: tuple[Peer, ...] = ()

    if storage.backend == "seaweedfs":
        from constructs_lib.storage.seaweedfs import S3_PORT, SeaweedFs, SeaweedFsProps
        from constructs_lib.versions import SEAWEEDFS_IMAGE

        settings = storage.seaweedfs
        storage_ns = SecureNamespace(
            scope,
            "StorageNamespace",
            SecureNamespaceProps(name=settings.namespace, protect=protect),
        )
        server = SeaweedFs(
            scope,
            "SeaweedFs",
            SeaweedFsProps(
                namespace=settings.namespace,
                depends_on=[storage_ns.namespace],
                identities=identities,
                client_namespaces=clients,
                volume_size=settings.volume_size,
                storage_class=settings.storage_class,
                resources=compute(settings.resources),
                image=image_pin(settings.image, SEAWEEDFS_IMAGE),
                filer_postgres=filer,
                protect=protect,
            ),
        )
        endpoints, service, port = server.endpoints, server.service_name, S3_PORT
        release: ITerraformDependable = server.helm.release
        if filer is not None:
            database_clients = (Peer(namespace=settings.namespace, pod_labels=server.pod_labels),)
    else:
        from constructs_lib.storage.minio_tenant import (
            S3_PORT as MINIO_PORT,
            MinioTenant,
            MinioTenantProps,
        )
        from constructs_lib.versions import MINIO_IMAGE

        settings_m = storage.minio
        # baseline, not restricted: the operator adds containers to Tenant pods whose
        # security contexts we do not control.
        storage_ns = SecureNamespace(
            scope,
            "StorageNamespace",
            SecureNamespaceProps(
                name=settings_m.namespace, pod_security="baseline", protect=protect
            ),
        )
        tenant = MinioTenant(
            scope,
            "MinioTenant",
            MinioTenantProps(
                name=MINIO_TENANT,
                namespace=settings_m.namespace,
                depends_on=[storage_ns.namespace],
                identities=identities,
                servers=settings_m.servers,
                volumes_per_server=settings_m.volumes_per_server,
                volume_size=settings_m.volume_size,
                storage_class=settings_m.storage_class,
                resources=compute(settings_m.resources),
                image=image_pin(settings_m.image, MINIO_IMAGE),
                protect=protect,
            ),
        )
        TrafficPolicy(
            scope,
            "MinioIngressPolicy",
            TrafficPolicyProps(
                name="minio-s3",
                namespace=storage_ns.name,
                pod_selector=tenant.pod_labels,
                ingress=[
                    Rule(
                        peers=[
                            Peer(),  # the tenant's own pods (distributed mode)
                            Peer(namespace=config.platform.namespaces.minio_operator),
                            *(Peer(namespace=ns) for ns in clients),
                        ],
                        ports=[MINIO_PORT],
                    )
                ],
            ),
        )
        endpoints, service, port = tenant.endpoints, tenant.service_name, 80
        release = tenant.tenant.resource

    if public_url:
        ingress = attic.ingress
        WebIngress(
            scope,
            "StorageIngress",
            WebIngressProps(
                name="attic-s3",
                namespace=storage_ns.name,
                host=urlsplit(public_url).hostname or "",
                service_name=service,
                service_port=port,
                controller=ingress.controller,
                controller_namespace=ingress.controller_namespace,
                class_name=ingress.class_name,
                cluster_issuer=ingress.cluster_issuer,
                acme_http01=ingress.acme_http01,
                depends_on=(release,),
            ),
        )
    attic_endpoint = endpoints[ATTIC_IDENTITY]
    if public_url:
        # atticd signs redirect URLs for the host it talks to, so it must use the public one;
        # its traffic then goes through the ingress controller.
        attic_endpoint = S3Endpoint(
            url=public_url.rstrip("/"),
            region=attic_endpoint.region,
            bucket=attic_endpoint.bucket,
            credentials=attic_endpoint.credentials,
            egress=tuple(ingress_egress(env, [public_url])),
        )
    backup_endpoint = endpoints.get(BACKUP_IDENTITY)
    return StorageWiring(
        attic=attic_endpoint,
        backup=BackupWiring(endpoint=backup_endpoint, depends_on=(release,))
        if backup_endpoint
        else None,
        public_url=public_url,
        depends_on=(release,),
        bazel=endpoints.get(BAZEL_IDENTITY),
        database_clients=database_clients,
    )
