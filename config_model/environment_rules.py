"""Rules that need an environment's own settings or compare environments: where a protected
environment keeps its Postgres backups, and that no two environments archive into one folder.

The loader applies them to each environment's merged config; warnings go to the user on every
command, problems stop it like any other.
"""

from __future__ import annotations

from collections.abc import Mapping

from config_model.base import Problems
from config_model.organization import OrganizationConfig
from config_model.wiring import backup_store_in_cluster

_IN_CLUSTER = ("attic", "database", "backup", "in_cluster")
_BUCKET = ("attic", "database", "backup", "bucket")


def environment_findings(name: str, config: OrganizationConfig) -> tuple[Problems, list[str]]:
    """(problems, warnings) of environment ``name`` in its merged ``config``."""
    backup = config.attic.database.backup
    settings = config.environments[name]
    if not (settings.protect_stateful and backup.enabled and backup_store_in_cluster(config)):
        return [], []
    risk = (
        "the environment protects its state (protect_stateful), but its Postgres backups go to "
        f"the in-cluster {config.attic.storage.backend} that also holds the cache: losing that "
        "storage loses the database and its backups together"
    )
    if backup.in_cluster == "refuse":
        remedy = "allowed: back up off the cluster (attic.database.backup.s3), or 'allow'"
        return [(_IN_CLUSTER, f"{risk}; {remedy}", backup.in_cluster)], []
    if backup.in_cluster == "warn":
        remedy = (
            "set attic.database.backup.s3 to back up off the cluster, or "
            "attic.database.backup.in_cluster to 'allow' (accept) or 'refuse'"
        )
        return [], [f"{name}: {risk}; {remedy}"]
    return [], []


def shared_archive_problems(configs: Mapping[str, OrganizationConfig]) -> dict[str, Problems]:
    """Environments whose backups would share a folder of an external bucket, by environment.

    The Barman Cloud plugin archives to ``<bucket>/<cluster name>/`` and refuses to start
    archiving into a folder that already holds WAL, so the second environment never gets a
    backup. In-cluster storage is per environment and cannot collide."""
    seen: dict[tuple[str, str, str], str] = {}
    found: dict[str, Problems] = {}
    for name, config in configs.items():
        destination = _external_archive(config)
        if destination is None:
            continue
        if destination in seen:
            endpoint, bucket, folder = destination
            found.setdefault(name, []).append(
                (
                    _BUCKET,
                    f"environments '{seen[destination]}' and '{name}' would archive Postgres "
                    f"into the same folder ({endpoint}, bucket {bucket}, folder {folder}/) and "
                    "the second never gets a backup; give each environment its own bucket or "
                    "attic.database.cluster_name",
                    bucket,
                )
            )
        else:
            seen[destination] = name
    return found


def _external_archive(config: OrganizationConfig) -> tuple[str, str, str] | None:
    """(endpoint, bucket, folder) of an environment archiving outside the cluster."""
    attic = config.attic
    backup = attic.database.backup
    if not backup.enabled:
        return None
    if backup.s3 is not None:
        endpoint, region = backup.s3.endpoint, backup.s3.region
    elif attic.storage.backend == "s3":
        endpoint, region = attic.storage.s3.endpoint, attic.storage.s3.region
    else:
        return None
    where = (endpoint or f"AWS S3 {region}").rstrip("/")
    return where, backup.bucket, attic.database.cluster_name
