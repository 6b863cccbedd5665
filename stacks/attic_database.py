"""Postgres for attic-<env>: the CNPG Cluster, where it archives, and (with SeaweedFS) the
database holding SeaweedFS's file index, so Postgres backups and point-in-time recovery cover
the index too. The order they are built in is the order they need each other."""

from __future__ import annotations

from cdktf import ITerraformDependable
from constructs import Construct

from config_model.loader import ResolvedEnvironment
from config_model.wiring import filer_in_postgres
from constructs_lib.postgres.barman_object_store import (
    BarmanObjectStore,
    BarmanObjectStoreProps,
)
from constructs_lib.postgres.cnpg_cluster import (
    ClusterBackup,
    ClusterRecovery,
    CnpgCluster,
    CnpgClusterProps,
    ManagedRole,
)
from constructs_lib.postgres.cnpg_database import CnpgDatabase, CnpgDatabaseProps
from constructs_lib.postgres.database_login import DatabaseLogin, DatabaseLoginProps
from constructs_lib.storage.seaweedfs import FilerPostgres
from constructs_lib.versions import POSTGRESQL_IMAGE
from stacks.attic_storage import (
    BackupWiring,
    StorageWiring,
    build_backup_destination,
    build_storage,
    compute,
    image_pin,
)

OBJECT_STORE = "pg-backups"
# Database and role of SeaweedFS's filer index, when it lives in attic's Postgres cluster.
FILER_DATABASE = "seaweedfs"


def build_storage_and_database(
    scope: Construct, env: ResolvedEnvironment, ns: str
) -> tuple[StorageWiring, CnpgCluster, BackupWiring | None]:
    """Object storage, Postgres and where Postgres archives, in the order they need each other.

    With SeaweedFS's file index in Postgres, Postgres comes first and its backups go outside
    the cluster (the rules see to it). Otherwise the storage comes first, since Postgres may
    archive into it or restore from it."""
    db = env.config.attic.database
    archive = db.backup.enabled or db.recovery is not None
    external = (
        build_backup_destination(scope, ns, db.backup.s3, db.backup.bucket)
        if archive and db.backup.s3 is not None
        else None
    )
    if not filer_in_postgres(env.config):
        storage = build_storage(scope, env, ns, archive and external is None)
        backup = external or storage.backup
        return storage, _database(scope, env, ns, backup), backup
    login = DatabaseLogin(
        scope,
        "FilerLogin",
        DatabaseLoginProps(
            role=FILER_DATABASE, namespace=ns, secret_name=f"{db.cluster_name}-{FILER_DATABASE}"
        ),
    )
    database = _database(scope, env, ns, external, roles=(login.role,), after=(login.secret,))
    filer_db = CnpgDatabase(
        scope,
        "FilerDatabase",
        CnpgDatabaseProps(
            cluster=database.name,
            namespace=ns,
            database=FILER_DATABASE,
            owner=FILER_DATABASE,
            depends_on=[database.cluster.resource],
        ),
    )
    filer = FilerPostgres(
        host=f"{database.name}-rw.{env.config.attic.namespace}.svc",
        database=FILER_DATABASE,
        user=FILER_DATABASE,
        password=login.password,
        depends_on=(filer_db.resource,),
    )
    return build_storage(scope, env, ns, False, filer=filer), database, external


def _database(
    scope: Construct,
    env: ResolvedEnvironment,
    ns: str,
    backup: BackupWiring | None,
    *,
    roles: tuple[ManagedRole, ...] = (),
    after: tuple[ITerraformDependable, ...] = (),
) -> CnpgCluster:
    """The Cluster and, with ``backup``, the ObjectStore it archives to (both wait for what
    the destination needs)."""
    db = env.config.attic.database
    recovery = db.recovery
    protect = env.settings.protect_stateful
    ready: list[ITerraformDependable] = list(after)
    if backup is not None:
        store = BarmanObjectStore(
            scope,
            "BackupStore",
            BarmanObjectStoreProps(
                name=OBJECT_STORE,
                namespace=ns,
                bucket=backup.endpoint.bucket,
                endpoint_url=backup.endpoint.url,
                credentials=backup.endpoint.credentials,
                retention=db.backup.retention,
                protect=protect,
                depends_on=backup.depends_on,
            ),
        )
        ready += [*backup.depends_on, store.store.resource]
    return CnpgCluster(
        scope,
        "Postgres",
        CnpgClusterProps(
            name=db.cluster_name,
            namespace=ns,
            instances=db.instances,
            storage_size=db.storage_size,
            storage_class=db.storage_class,
            resources=compute(db.resources),
            image=image_pin(db.image, POSTGRESQL_IMAGE),
            anti_affinity=db.anti_affinity,
            database="attic",
            backup=ClusterBackup(object_store=OBJECT_STORE, schedule=db.backup.schedule)
            if db.backup.enabled
            else None,
            recovery=ClusterRecovery(
                object_store=OBJECT_STORE,
                source_cluster=recovery.source_cluster,
                target_time=recovery.target_time,
            )
            if recovery
            else None,
            roles=roles,
            service_account_annotations=backup.service_account_annotations if backup else {},
            pod_monitor=env.config.monitoring.prometheus_operator,
            pod_monitor_labels=env.config.monitoring.discovery_labels,
            protect=protect,
            depends_on=ready,
        ),
    )
