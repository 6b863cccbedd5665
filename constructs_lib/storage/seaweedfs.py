"""SeaweedFS in the cluster, serving S3 from its filer, one key pair per consumer.

Every pod passes the ``restricted`` Pod Security Standard: the chart's hostPath defaults are
replaced by volume claims and emptyDirs, the bucket hook inherits the filer's security
contexts, and the volume resize hook (no security context, needs API access) is off, so a grown
volume claim is resized by hand.

The filer's index (which chunks make each object) is its store: leveldb2 on the filer's volume
by default, or a Postgres database (the postgres2 store). The filer reads its store from
``WEED_<STORE>_<KEY>`` variables (viper, prefix ``weed``) and refuses two enabled stores
(weed/filer/configuration.go), so the chart's ``WEED_LEVELDB2_ENABLED`` is turned off then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from cdktf import Fn, ITerraformDependable, Token
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from constructs import Construct

from constructs_lib.helm.operator_release import add_release
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.storage.generated_keys import GeneratedKeys
from constructs_lib.storage.s3_endpoint import StorageIdentity
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import SEAWEEDFS_CHART, SEAWEEDFS_IMAGE, ImagePin

__all__ = [
    "DEFAULT_RELEASE",
    "S3_PORT",
    "FilerPostgres",
    "SeaweedFs",
    "SeaweedFsProps",
    "filer_pod_labels",
]

S3_PORT = 8333
"""The filer's S3 gateway port (``<release>-s3`` Service)."""
DEFAULT_RELEASE = "seaweedfs"
"""The default Helm release name."""
_VERIFYING_OR_REQUIRED = ("require", "verify-ca", "verify-full")
_UID = 1000
_CONFIG_KEY = "seaweedfs_s3_config"  # the key the chart mounts as the gateway's identities


@dataclass(frozen=True, kw_only=True, slots=True)
class FilerPostgres:
    """A Postgres database for the filer's index.

    Attributes:
        host: server host name (e.g. CNPG's ``<cluster>-rw.<namespace>.svc``).
        database: database name; its owner is ``user``.
        user: login role.
        password: a reference to the role's password (never a literal).
        port: server port. Default 5432.
        sslmode: ``require`` (encrypted; the server's CA is not in this namespace to verify
            against), ``verify-ca`` or ``verify-full``. Default ``"require"``.
        max_connections: connections the filer may open. Default 20.
        depends_on: the database and role, so the filer starts when they exist.
            Default - none.
    """

    host: str
    database: str
    user: str
    password: str
    port: int = 5432
    sslmode: str = "require"
    max_connections: int = 20
    depends_on: Sequence[ITerraformDependable] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class SeaweedFsProps:
    """Props of :class:`SeaweedFs`.

    Attributes:
        namespace: namespace name (``restricted`` Pod Security is fine); a literal, because
            it becomes part of the S3 URL in atticd's config, whose checksum must be stable.
        identities: consumers; each gets a key pair valid for its bucket only, and the
            buckets are created.
        client_namespaces: namespaces whose pods may call the S3 API. Default - none.
        volume_size: data volume of the volume server. Default ``"100Gi"``.
        storage_class: StorageClass of every volume. Default - the cluster default.
        resources: of the volume server and the filer. Default 250m / 512Mi requested,
            2 CPU / 2Gi limit.
        image: SeaweedFS image. Default - the pinned release.
        release_name: Helm release; must contain "seaweedfs" so services are named
            ``<release>-<component>``. Default ``"seaweedfs"``.
        filer_postgres: keep the filer's index in this database instead of on the filer's
            volume. Default - none (leveldb2 on the volume, no backup).
        protect: refuse to uninstall (``prevent_destroy``). Default ``False``.
        depends_on: resources to create first, such as the namespace. Default - none.
    """

    namespace: str
    identities: Sequence[StorageIdentity]
    client_namespaces: Sequence[str] = ()
    volume_size: str = "100Gi"
    storage_class: str | None = None
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="250m", memory_request="512Mi", cpu_limit="2", memory_limit="2Gi"
        )
    )
    image: ImagePin = SEAWEEDFS_IMAGE
    release_name: str = DEFAULT_RELEASE
    filer_postgres: FilerPostgres | None = None
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class SeaweedFs(Construct):
    """Master, volume server and filer (with its S3 gateway) as one pinned Helm release.

    Creates a key pair per identity (:class:`~constructs_lib.storage.generated_keys.GeneratedKeys`,
    ``Keys``), the gateway's identities Secret ``<release>-s3-config`` (``S3Config``), with
    ``filer_postgres`` the Secret holding its password (``FilerPostgres``), and the chart's
    release (``Release``).

    Attributes:
        pod_labels: labels of the filer pods, which serve S3 (for NetworkPolicies).
        service_name: the S3 Service, ``<release>-s3`` on port :data:`S3_PORT`.
        endpoints: identity name -> :class:`~constructs_lib.storage.s3_endpoint.S3Endpoint`,
            what each consumer passes on to its workload.
        helm: the release construct (its ``release`` is the ``helm_release``).

    Example:
        ```python
        from constructs_lib.storage.s3_endpoint import StorageIdentity
        from constructs_lib.storage.seaweedfs import SeaweedFs, SeaweedFsProps

        store = SeaweedFs(
            stack,
            "SeaweedFs",
            SeaweedFsProps(
                namespace="attic-storage",
                identities=[
                    StorageIdentity(
                        name="attic",
                        bucket="attic",
                        secret_namespace="attic",
                        secret_name="attic-s3",
                    )
                ],
                client_namespaces=["attic"],
            ),
        )
        store.endpoints["attic"].url  # "http://seaweedfs-s3.attic-storage.svc:8333"
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: SeaweedFsProps) -> None:
        super().__init__(scope, construct_id)
        names = [i.name for i in props.identities]
        filer_db = props.filer_postgres
        raise_if_problems(
            "SeaweedFs",
            [
                check_dns_label("release_name", props.release_name),
                ""
                if "seaweedfs" in props.release_name
                else f"release_name: {props.release_name!r} must contain 'seaweedfs' (the "
                "chart otherwise appends it to every service name)",
                "" if props.identities else "identities: at least one is required",
                ""
                if len(set(names)) == len(names)
                else f"identities: names must be unique (got {names})",
                ""
                if filer_db is None or Token.is_unresolved(filer_db.password)
                else "filer_postgres.password: must be a reference (generated password), never "
                "a literal that would be written to cdktf.out",
                ""
                if filer_db is None or filer_db.sslmode in _VERIFYING_OR_REQUIRED
                else f"filer_postgres.sslmode: {filer_db.sslmode!r} may send the password "
                f"without TLS; allowed: {', '.join(_VERIFYING_OR_REQUIRED)}",
            ],
        )
        keys = GeneratedKeys(self, "Keys", props.identities)
        config_secret = SecretV1(
            self,
            "S3Config",
            metadata=SecretV1Metadata(
                name=f"{props.release_name}-s3-config", namespace=props.namespace
            ),
            depends_on=list(props.depends_on) or None,
            data={
                _CONFIG_KEY: Fn.jsonencode(
                    {
                        "identities": [
                            {
                                "name": identity.name,
                                "credentials": [
                                    {
                                        "accessKey": keys.access_key_ids[identity.name],
                                        "secretKey": keys.secret_access_keys[identity.name],
                                    }
                                ],
                                "actions": [
                                    f"{action}:{identity.bucket}"
                                    for action in ("Read", "Write", "List", "Tagging")
                                ],
                            }
                            for identity in props.identities
                        ]
                    }
                )
            },
        )
        self.pod_labels = filer_pod_labels(props.release_name)
        self.service_name = f"{props.release_name}-s3"
        self.endpoints = keys.endpoints(
            url=f"http://{self.service_name}.{props.namespace}.svc:{S3_PORT}",
            namespace=props.namespace,
            pod_labels=self.pod_labels,
            port=S3_PORT,
        )
        values = _values(props, config_secret.metadata.name)
        ready: list[ITerraformDependable] = [config_secret, *props.depends_on]
        if filer_db is not None:
            secret_name = f"{props.release_name}-filer-postgres"
            filer_secret = SecretV1(
                self,
                "FilerPostgres",
                metadata=SecretV1Metadata(name=secret_name, namespace=props.namespace),
                depends_on=list(props.depends_on) or None,
                data={"password": filer_db.password},
            )
            # The literal name: the release waits for the Secret through depends_on.
            values["filer"].update(_filer_store(filer_db, secret_name))
            ready += [filer_secret, *filer_db.depends_on]
        self.helm = add_release(self, props, chart=SEAWEEDFS_CHART, depends_on=ready, values=values)


def _filer_store(db: FilerPostgres, password_secret: str) -> dict[str, Any]:
    """Filer values selecting the postgres2 store (its keys: weed/filer/postgres2)."""
    return {
        "extraEnvironmentVars": {
            "WEED_LEVELDB2_ENABLED": "false",
            "WEED_POSTGRES2_ENABLED": "true",
            "WEED_POSTGRES2_HOSTNAME": db.host,
            "WEED_POSTGRES2_PORT": str(db.port),
            "WEED_POSTGRES2_DATABASE": db.database,
            "WEED_POSTGRES2_USERNAME": db.user,
            "WEED_POSTGRES2_SSLMODE": db.sslmode,
            "WEED_POSTGRES2_CONNECTION_MAX_OPEN": str(db.max_connections),
        },
        "secretExtraEnvironmentVars": {
            "WEED_POSTGRES2_PASSWORD": {
                "secretKeyRef": {"name": password_secret, "key": "password"}
            }
        },
    }


def filer_pod_labels(release_name: str = DEFAULT_RELEASE) -> dict[str, str]:
    """Labels of the filer pods, which serve S3 (the chart's standard labels)."""
    return {
        "app.kubernetes.io/name": "seaweedfs",
        "app.kubernetes.io/instance": release_name,
        "app.kubernetes.io/component": "filer",
    }


def _values(props: SeaweedFsProps, config_secret: str) -> dict[str, Any]:
    storage_class = props.storage_class or ""
    pod_security = {
        "enabled": True,
        "runAsNonRoot": True,
        "runAsUser": _UID,
        "runAsGroup": _UID,
        "fsGroup": _UID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container_security = {
        "enabled": True,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    small = ComputeResources(
        cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi"
    )
    buckets = sorted({identity.bucket for identity in props.identities})
    client_rule = {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
            for namespace in props.client_namespaces
        ],
        "ports": [{"protocol": "TCP", "port": S3_PORT}],
    }
    return {
        "global": {
            "seaweedfs": {
                "createClusterRole": False,
                "automountServiceAccountToken": False,
                "image": {"name": props.image.repository},
            }
        },
        "image": {"tag": props.image.tag_ref},
        "master": {
            "replicas": 1,
            "data": {"type": "persistentVolumeClaim", "size": "5Gi", "storageClass": storage_class},
            "logs": {"type": "emptyDir"},
            "resources": small.to_values(),
            "podSecurityContext": pod_security,
            "containerSecurityContext": container_security,
        },
        "volume": {
            "replicas": 1,
            "dataDirs": [
                {
                    "name": "data1",
                    "type": "persistentVolumeClaim",
                    "size": props.volume_size,
                    "storageClass": storage_class,
                    "maxVolumes": 0,
                }
            ],
            "resizeHook": {"enabled": False},
            "resources": props.resources.to_values(),
            "podSecurityContext": pod_security,
            "containerSecurityContext": container_security,
        },
        "filer": {
            "replicas": 1,
            "data": {
                "type": "persistentVolumeClaim",
                "size": "20Gi",
                "storageClass": storage_class,
            },
            "logs": {"type": "emptyDir"},
            "resources": props.resources.to_values(),
            # Also the bucket hook's contexts (the chart reuses the filer's).
            "podSecurityContext": pod_security,
            "containerSecurityContext": container_security,
            # The filer and its S3 gateway listen on unix sockets in /tmp.
            "extraVolumes": yaml.safe_dump([{"name": "tmp", "emptyDir": {}}]),
            "extraVolumeMounts": yaml.safe_dump([{"name": "tmp", "mountPath": "/tmp"}]),
            "s3": {
                "enabled": True,
                "enableAuth": True,
                "existingConfigSecret": config_secret,
                "createBuckets": [{"name": bucket} for bucket in buckets],
            },
        },
        "networkPolicy": {
            "enabled": True,
            "extraIngress": [client_rule] if props.client_namespaces else [],
        },
    }
