"""A MinIO Tenant on the MinIO operator.

MinIO's open-source project was archived in 2026 and publishes no new community images; this
backend is kept for existing deployments. Prefer SeaweedFS or an external S3 service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktf import Fn, ITerraformDependable
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.storage.generated_keys import GeneratedKeys
from constructs_lib.storage.s3_endpoint import StorageIdentity
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import MINIO_IMAGE, ImagePin

__all__ = ["S3_PORT", "MinioTenant", "MinioTenantProps", "tenant_pod_labels"]

S3_PORT = 9000
"""The MinIO pods' S3 port; the operator's ``minio`` Service maps port 80 to it."""
_UID = 1000


def tenant_pod_labels(name: str) -> dict[str, str]:
    """Labels the operator puts on a Tenant's pods."""
    return {"v1.min.io/tenant": name}


@dataclass(frozen=True, kw_only=True, slots=True)
class MinioTenantProps:
    """Props of :class:`MinioTenant`.

    Attributes:
        name: Tenant name (one Tenant per namespace).
        namespace: namespace name; a literal (it becomes part of the S3 URL).
        identities: consumers; each becomes a MinIO user with its own key pair (the operator
            grants such users MinIO's ``consoleAdmin`` policy), and their buckets are created.
        servers: MinIO pods; immutable after the first apply. Default 1.
        volumes_per_server: immutable after the first apply. Default 4.
        volume_size: per volume. Default ``"50Gi"``.
        storage_class: StorageClass of the volumes. Default - the cluster default.
        resources: per MinIO pod. Default 250m / 1Gi requested, 2 CPU / 2Gi limit.
        image: MinIO image. Default - the pinned release.
        protect: ``prevent_destroy`` on the Tenant. Default ``False``.
        depends_on: resources to create first, such as the namespace. Default - none.
    """

    name: str
    namespace: str
    identities: Sequence[StorageIdentity]
    servers: int = 1
    volumes_per_server: int = 4
    volume_size: str = "50Gi"
    storage_class: str | None = None
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="250m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"
        )
    )
    image: ImagePin = MINIO_IMAGE
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class MinioTenant(Construct):
    """Tenant with generated root credentials, per-consumer users and buckets; plain HTTP
    inside the cluster (clients outside reach it through the TLS ingress).

    Creates ``random_password`` root credentials (``RootUser``, ``RootPassword``) in the
    Secret ``<name>-env-configuration`` (``RootConfig``), a key pair per identity
    (:class:`~constructs_lib.storage.generated_keys.GeneratedKeys`, ``Keys``) with a user
    Secret each (``User-<identity>``), and the ``Tenant`` (``Tenant``). The MinIO operator must
    be installed. MinIO's open-source project was archived in 2026: prefer
    :class:`~constructs_lib.storage.seaweedfs.SeaweedFs` or external S3.

    Attributes:
        pod_labels: labels of the tenant's pods (for NetworkPolicies).
        service_name: the S3 Service (``minio``, port 80).
        endpoints: identity name -> :class:`~constructs_lib.storage.s3_endpoint.S3Endpoint`,
            what each consumer passes on to its workload.
        tenant: the Tenant custom resource construct.

    Example:
        ```python
        from constructs_lib.storage.minio_tenant import MinioTenant, MinioTenantProps
        from constructs_lib.storage.s3_endpoint import StorageIdentity

        store = MinioTenant(
            stack,
            "Storage",
            MinioTenantProps(
                name="attic-store",
                namespace="attic-storage",
                identities=[
                    StorageIdentity(
                        name="attic",
                        bucket="attic",
                        secret_namespace="attic",
                        secret_name="attic-s3",
                    )
                ],
            ),
        )
        store.endpoints["attic"].url  # "http://minio.attic-storage.svc"
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: MinioTenantProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "MinioTenant",
            [
                check_dns_label("name", props.name),
                "" if props.identities else "identities: at least one is required",
                *(
                    f"{prop}: must be >= 1 (got {getattr(props, prop)})"
                    for prop in ("servers", "volumes_per_server")
                    if getattr(props, prop) < 1
                ),
            ],
        )
        root_user = Password(self, "RootUser", length=20, special=False, lower=False)
        root_password = Password(self, "RootPassword", length=40, special=False)
        root = SecretV1(
            self,
            "RootConfig",
            metadata=SecretV1Metadata(
                name=f"{props.name}-env-configuration", namespace=props.namespace
            ),
            data={
                # MinIO reads this file with sh-style export lines; values are alphanumeric.
                "config.env": Fn.format(
                    "export MINIO_ROOT_USER=%s\nexport MINIO_ROOT_PASSWORD=%s\n",
                    [root_user.result, root_password.result],
                )
            },
        )
        keys = GeneratedKeys(self, "Keys", props.identities)
        users = []
        for identity in props.identities:
            user = SecretV1(
                self,
                f"User-{identity.name}",
                metadata=SecretV1Metadata(
                    name=f"{props.name}-user-{identity.name}", namespace=props.namespace
                ),
                depends_on=list(props.depends_on) or None,
                data={
                    "CONSOLE_ACCESS_KEY": keys.access_key_ids[identity.name],
                    "CONSOLE_SECRET_KEY": keys.secret_access_keys[identity.name],
                },
            )
            users.append(user)
        self.pod_labels = tenant_pod_labels(props.name)
        self.service_name = "minio"
        self.endpoints = keys.endpoints(
            url=f"http://{self.service_name}.{props.namespace}.svc",
            namespace=props.namespace,
            pod_labels=self.pod_labels,
            port=S3_PORT,
        )
        claim_spec: dict[str, object] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": props.volume_size}},
        }
        if props.storage_class:
            claim_spec["storageClassName"] = props.storage_class
        self.tenant = CustomResource(
            self,
            "Tenant",
            CustomResourceProps(
                manifest={
                    "apiVersion": "minio.min.io/v2",
                    "kind": "Tenant",
                    "metadata": {"name": props.name, "namespace": props.namespace},
                    "spec": {
                        "image": props.image.ref,
                        "configuration": {"name": root.metadata.name},
                        "users": [{"name": user.metadata.name} for user in users],
                        "buckets": [
                            {"name": bucket}
                            for bucket in sorted({i.bucket for i in props.identities})
                        ],
                        "requestAutoCert": False,
                        "exposeServices": {"minio": False, "console": False},
                        "pools": [
                            {
                                "name": "pool-0",
                                "servers": props.servers,
                                "volumesPerServer": props.volumes_per_server,
                                "volumeClaimTemplate": {
                                    "metadata": {"name": "data"},
                                    "spec": claim_spec,
                                },
                                "resources": props.resources.to_values(),
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "runAsUser": _UID,
                                    "runAsGroup": _UID,
                                    "fsGroup": _UID,
                                    "fsGroupChangePolicy": "OnRootMismatch",
                                    "seccompProfile": {"type": "RuntimeDefault"},
                                },
                                "containerSecurityContext": {
                                    "runAsNonRoot": True,
                                    "runAsUser": _UID,
                                    "runAsGroup": _UID,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"},
                                },
                            }
                        ],
                    },
                },
                protect=props.protect,
                depends_on=[root, *users],
                timeout="20m",
            ),
        )
