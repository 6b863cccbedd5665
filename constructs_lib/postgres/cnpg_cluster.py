"""A CloudNativePG ``Cluster`` hardened for a service database, with its backups and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.platform.barman_cloud_plugin import PLUGIN_NAME
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import POSTGRESQL_IMAGE, ImagePin

__all__ = [
    "DEFAULT_PARAMETERS",
    "METRICS_PORT",
    "PG_HBA",
    "POSTGRES_PORT",
    "STATUS_PORT",
    "ClusterBackup",
    "ClusterRecovery",
    "CnpgCluster",
    "CnpgClusterProps",
    "ManagedRole",
]

POSTGRES_PORT = 5432
"""Postgres' port on every instance and on the ``<name>-rw`` Service."""
STATUS_PORT = 8000  # instance manager; the operator polls it
"""The instance manager's status port, which the operator polls."""
METRICS_PORT = 9187
"""The instances' metrics port (``metrics``)."""

# No cluster-wide statement_timeout: it would also cut migrations and bulk deletes, whose
# statements grow with the data. Clients that want one set it for their own sessions.
DEFAULT_PARAMETERS: Mapping[str, str] = {
    "idle_in_transaction_session_timeout": "10min",
    "log_statement": "ddl",
    "log_connections": "on",
    "log_disconnections": "on",
    "log_min_duration_statement": "5s",
    "max_connections": "200",
    "shared_buffers": "256MB",
}
"""``postgresql.conf`` settings every cluster gets; ``CnpgClusterProps.parameters`` wins.

No cluster-wide ``statement_timeout``: it would also cut migrations and bulk deletes, whose
statements grow with the data. Clients that want one set it for their own sessions.
"""
# Our lines come before CNPG's own trailing "host all all all ..." rule: TLS with SCRAM only,
# and anything without TLS is rejected before it could reach that rule.
PG_HBA = ("hostssl all all all scram-sha-256", "hostnossl all all all reject")
"""``pg_hba`` lines before CNPG's own: TLS with SCRAM only; anything without TLS is rejected
before it could reach CNPG's trailing ``host all all all`` rule.
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterBackup:
    """Continuous backup through the Barman Cloud plugin.

    Attributes:
        object_store: name of the ``ObjectStore`` in the cluster's namespace.
        schedule: base backup schedule, 6 cron fields with seconds first.
    """

    object_store: str
    schedule: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterRecovery:
    """Bootstrap from another cluster's backups instead of an empty database.

    Attributes:
        object_store: the ``ObjectStore`` holding the source's backups.
        source_cluster: the source cluster's name (its folder in the bucket).
        target_time: RFC 3339 time to stop WAL replay at. Default ``None``: replay everything.
    """

    object_store: str
    source_cluster: str
    target_time: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagedRole:
    """A login role the operator keeps in the cluster (``spec.managed.roles``).

    Attributes:
        name: role name.
        password_secret: ``kubernetes.io/basic-auth`` Secret in the cluster's namespace whose
            ``username`` is ``name``.
    """

    name: str
    password_secret: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CnpgClusterProps:
    """Props of :class:`CnpgCluster`.

    Attributes:
        name: cluster name; CNPG derives ``<name>-rw`` (Service), ``<name>-app`` (credentials)
            and ``<name>-ca`` (CA Secret) from it.
        namespace: namespace of the cluster.
        instances: Postgres instances (one primary, the rest streaming replicas). Default 3.
        storage_size: volume per instance. Default ``"20Gi"``.
        storage_class: StorageClass of the volumes. Default - the cluster default.
        resources: per instance. Default 500m / 1Gi requested, 2 CPU / 2Gi limit.
        image: PostgreSQL image. Default - the pinned catalog image.
        anti_affinity: ``"preferred"`` or ``"required"`` spread of instances over nodes.
            Default ``"preferred"``.
        database: application database, owned by a user of the same name. Default ``"app"``.
        parameters: ``postgresql.conf`` settings merged over :data:`DEFAULT_PARAMETERS`.
            Default - none.
        backup: WAL archiving and scheduled backups. Default - none.
        recovery: bootstrap from backups (point-in-time recovery). Default - none.
        roles: further login roles, e.g. for another service's database. Default - none.
        service_account_annotations: for workload identity towards object storage.
            Default - none.
        pod_monitor: create a ``PodMonitor`` (the Cluster's own flag is deprecated).
            Default ``False``.
        pod_monitor_labels: labels on that PodMonitor, e.g. the ``release`` label a
            kube-prometheus-stack ``podMonitorSelector`` picks monitors up by. Default - none.
        protect: ``prevent_destroy`` on the Cluster. Default ``False``.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    instances: int = 3
    storage_size: str = "20Gi"
    storage_class: str | None = None
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"
        )
    )
    image: ImagePin = POSTGRESQL_IMAGE
    anti_affinity: Literal["preferred", "required"] = "preferred"
    database: str = "app"
    parameters: Mapping[str, str] = field(default_factory=dict)
    backup: ClusterBackup | None = None
    recovery: ClusterRecovery | None = None
    roles: Sequence[ManagedRole] = ()
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    pod_monitor: bool = False
    pod_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class CnpgCluster(Construct):
    """Postgres with TLS-only SCRAM logins, no superuser access, spread instances.

    Creates a CNPG ``Cluster`` (child id ``Cluster``) that waits until Ready, and as the props
    ask a ``ScheduledBackup`` ``<name>-daily`` (``ScheduledBackup``) through the Barman Cloud
    plugin and a ``PodMonitor`` (``PodMonitor``). The operator and, for backups, the plugin
    and an ``ObjectStore`` must exist first.

    Attributes:
        name: the cluster's name.
        app_secret: ``<name>-app``, the Secret with the application user's credentials and URI.
        ca_secret: ``<name>-ca``, the Secret with the server CA (``ca.crt``).
        pod_labels: labels of the instance pods (for NetworkPolicies).
        cluster: the Cluster custom resource construct (its ``resource`` for ``depends_on``).

    Example:
        ```python
        from constructs_lib.postgres.cnpg_cluster import (
            ClusterBackup,
            CnpgCluster,
            CnpgClusterProps,
        )

        database = CnpgCluster(
            stack,
            "Postgres",
            CnpgClusterProps(
                name="attic-db",
                namespace="attic",
                instances=3,
                storage_size="50Gi",
                backup=ClusterBackup(object_store="pg-backups", schedule="0 0 3 * * *"),
                protect=True,
            ),
        )
        database.app_secret  # "attic-db-app"
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: CnpgClusterProps) -> None:
        super().__init__(scope, construct_id)
        recovery = props.recovery
        raise_if_problems(
            "CnpgCluster",
            [
                check_dns_label("name", props.name),
                "" if props.instances >= 1 else f"instances: {props.instances} must be >= 1",
                ""
                if props.backup is None or len(props.backup.schedule.split()) == 6
                else f"backup.schedule: {props.backup.schedule!r} needs 6 fields, seconds "
                "first (a 5-field cron is read as seconds and fires hourly)",
                ""
                if recovery is None or recovery.source_cluster != props.name
                else "recovery.source_cluster: must differ from name (got the same)",
                *(
                    f"parameters.{k}: values are strings (got {v!r})"
                    for k, v in props.parameters.items()
                    if not isinstance(v, str)
                ),
                *(
                    f"roles: {r.name!r} is the application database's owner, which the "
                    "operator already manages"
                    for r in props.roles
                    if r.name == props.database
                ),
            ],
        )
        self.name = props.name
        self.app_secret = f"{props.name}-app"
        self.ca_secret = f"{props.name}-ca"
        self.pod_labels = {"cnpg.io/cluster": props.name}

        spec: dict[str, Any] = {
            "instances": props.instances,
            "imageName": props.image.ref,
            "enableSuperuserAccess": False,
            "storage": {"size": props.storage_size},
            "resources": props.resources.to_values(),
            "affinity": {
                "enablePodAntiAffinity": True,
                "podAntiAffinityType": props.anti_affinity,
                "topologyKey": "kubernetes.io/hostname",
            },
            "postgresql": {
                "parameters": {**DEFAULT_PARAMETERS, **props.parameters},
                "pg_hba": list(PG_HBA),
            },
            "primaryUpdateStrategy": "unsupervised",
            "primaryUpdateMethod": "switchover",
        }
        if props.storage_class:
            spec["storage"]["storageClass"] = props.storage_class
        if props.service_account_annotations:
            spec["serviceAccountTemplate"] = {
                "metadata": {"annotations": dict(props.service_account_annotations)}
            }
        if props.roles:
            spec["managed"] = {
                "roles": [
                    {
                        "name": role.name,
                        "ensure": "present",
                        "login": True,
                        "passwordSecret": {"name": role.password_secret},
                    }
                    for role in props.roles
                ]
            }
        if props.backup is not None:
            spec["plugins"] = [
                {
                    "name": PLUGIN_NAME,
                    "isWALArchiver": True,
                    "parameters": {"barmanObjectName": props.backup.object_store},
                }
            ]
        if recovery is None:
            spec["bootstrap"] = {"initdb": {"database": props.database, "owner": props.database}}
        else:
            target = {"targetTime": recovery.target_time} if recovery.target_time else None
            spec["bootstrap"] = {
                "recovery": {
                    "source": "origin",
                    "database": props.database,
                    "owner": props.database,
                    **({"recoveryTarget": target} if target else {}),
                }
            }
            spec["externalClusters"] = [
                {
                    "name": "origin",
                    "plugin": {
                        "name": PLUGIN_NAME,
                        "parameters": {
                            "barmanObjectName": recovery.object_store,
                            "serverName": recovery.source_cluster,
                        },
                    },
                }
            ]
        self.cluster = CustomResource(
            self,
            "Cluster",
            CustomResourceProps(
                manifest={
                    "apiVersion": "postgresql.cnpg.io/v1",
                    "kind": "Cluster",
                    "metadata": {"name": props.name, "namespace": props.namespace},
                    "spec": spec,
                },
                ready_condition="Ready",
                timeout="30m",
                protect=props.protect,
                depends_on=props.depends_on,
            ),
        )
        if props.backup is not None:
            CustomResource(
                self,
                "ScheduledBackup",
                CustomResourceProps(
                    manifest={
                        "apiVersion": "postgresql.cnpg.io/v1",
                        "kind": "ScheduledBackup",
                        "metadata": {"name": f"{props.name}-daily", "namespace": props.namespace},
                        "spec": {
                            "cluster": {"name": props.name},
                            "schedule": props.backup.schedule,
                            "method": "plugin",
                            "pluginConfiguration": {"name": PLUGIN_NAME},
                            "backupOwnerReference": "self",
                            "immediate": True,
                        },
                    },
                    depends_on=[self.cluster.resource],
                ),
            )
        if props.pod_monitor:
            CustomResource(
                self,
                "PodMonitor",
                CustomResourceProps(
                    manifest={
                        "apiVersion": "monitoring.coreos.com/v1",
                        "kind": "PodMonitor",
                        "metadata": {
                            "name": props.name,
                            "namespace": props.namespace,
                            **(
                                {"labels": dict(props.pod_monitor_labels)}
                                if props.pod_monitor_labels
                                else {}
                            ),
                        },
                        "spec": {
                            "selector": {"matchLabels": dict(self.pod_labels)},
                            "podMetricsEndpoints": [{"port": "metrics"}],
                        },
                    }
                ),
            )
