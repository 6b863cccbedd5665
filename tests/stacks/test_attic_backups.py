"""attic-<env>'s Postgres backups and SeaweedFS's file index: where they live, and the order a
restore needs."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from config_model.wiring import backup_store_in_cluster, filer_in_postgres
from tests.support.graph import reachable
from tests.support.seaweedfs_filer import enabled_stores, filer_env, store_settings
from tests.support.synth_output import (
    SynthOutput,
    dependencies,
    manifests,
    namespace_name,
    resources,
)


def _address(doc: dict[str, Any], kind: str) -> str:
    (name,) = [
        n
        for n, item in resources(doc, "kubernetes_manifest").items()
        if item["manifest"]["kind"] == kind
    ]
    return f"kubernetes_manifest.{name}"


def _seaweedfs(doc: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    found = [(n, r) for n, r in resources(doc, "helm_release").items() if r["chart"] == "seaweedfs"]
    return found[0] if found else None


def _in_cluster(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.endswith((".svc", ".svc.cluster.local"))


def test_backups_use_the_plugin_daily_with_30_day_retention(example_synth: SynthOutput):
    doc = example_synth.stack("attic-staging")
    (cluster,) = manifests(doc, "Cluster")
    assert cluster["spec"]["plugins"] == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "pg-backups"},
        }
    ]
    (store,) = manifests(doc, "ObjectStore")
    assert store["spec"]["retentionPolicy"] == "30d"
    assert store["spec"]["configuration"]["destinationPath"] == "s3://attic-pg-backups/"
    (scheduled,) = manifests(doc, "ScheduledBackup")
    assert scheduled["spec"]["method"] == "plugin"
    assert scheduled["spec"]["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
    assert len(scheduled["spec"]["schedule"].split()) == 6
    assert "backup" not in cluster["spec"]  # the deprecated in-tree path


def test_point_in_time_recovery_bootstraps_from_the_object_store(variants_synth: SynthOutput):
    (cluster,) = manifests(variants_synth.stack("attic-full"), "Cluster")
    spec = cluster["spec"]
    assert cluster["metadata"]["name"] == "attic-pg-restored"
    assert spec["bootstrap"]["recovery"]["source"] == "origin"
    assert spec["bootstrap"]["recovery"]["recoveryTarget"] == {"targetTime": "2026-11-20T09:30:00Z"}
    (origin,) = spec["externalClusters"]
    assert origin["plugin"]["parameters"] == {
        "barmanObjectName": "pg-backups",
        "serverName": "attic-pg",
    }
    assert spec["plugins"][0]["isWALArchiver"] is True  # the restored cluster archives again


def test_prod_backs_up_off_the_cluster_with_keys_from_sensitive_variables(
    example_synth: SynthOutput,
):
    doc = example_synth.stack("attic-prod")
    (store,) = manifests(doc, "ObjectStore")
    configuration = store["spec"]["configuration"]
    assert not _in_cluster(configuration["endpointURL"])
    assert configuration["destinationPath"] == "s3://acme-attic-pg-prod/"
    reference = configuration["s3Credentials"]["accessKeyId"]["name"]
    secret = resources(doc, "kubernetes_secret_v1")[reference.split(".")[1]]
    assert secret["data"] == {
        "access_key_id": "${var.backup_s3_access_key_id}",
        "secret_access_key": "${var.backup_s3_secret_access_key}",
    }
    for variable in ("backup_s3_access_key_id", "backup_s3_secret_access_key"):
        assert doc["variable"][variable]["sensitive"] is True


def test_backups_in_the_cluster_only_where_the_config_accepts_them(attic_environments):
    """A protected environment may archive beside its cache only with in_cluster: allow (the
    config warns for 'warn' and refuses 'refuse')."""
    beside = 0
    for env_name, env, doc in attic_environments:
        stores = manifests(doc, "ObjectStore")
        if not stores or not manifests(doc, "ScheduledBackup"):
            continue
        in_cluster = _in_cluster(stores[0]["spec"]["configuration"].get("endpointURL", ""))
        assert in_cluster == backup_store_in_cluster(env.config), env_name
        if in_cluster and env.settings.protect_stateful:
            assert env.config.attic.database.backup.in_cluster == "allow", env_name
            beside += 1
    assert beside


def test_the_filer_index_lives_in_postgres_unless_the_backups_live_in_seaweedfs(
    attic_environments, refdata: Path
):
    """What the filer reads (chart defaults + our values + the image's filer.toml), and that
    the cluster has what it connects to: the -rw Service's cluster, a managed role with the
    same password the filer gets, the database owned by it, TLS, and a way in."""
    defaults = yaml.safe_load((refdata / "charts/seaweedfs/values.yaml").read_text())
    seen: set[str] = set()
    for env_name, env, doc in attic_environments:
        found = _seaweedfs(doc)
        if found is None:
            continue
        _name, release = found
        variables = filer_env(yaml.safe_load(release["values"][0]), defaults)
        stores = enabled_stores(variables)
        wanted = "postgres2" if filer_in_postgres(env.config) else "leveldb2"
        assert stores == [wanted], (env_name, stores)
        seen.add(wanted)
        if wanted == "postgres2":
            _check_filer_database(doc, store_settings(variables, "postgres2"), release)
    assert seen == {"postgres2", "leveldb2"}


def _check_filer_database(doc: dict[str, Any], settings: dict[str, Any], release: dict) -> None:
    (cluster,) = manifests(doc, "Cluster")
    namespace = namespace_name(doc, cluster["metadata"]["namespace"])
    host = settings["hostname"]
    assert host == f"{cluster['metadata']['name']}-rw.{namespace}.svc"
    assert settings["sslmode"] in ("require", "verify-ca", "verify-full")  # pg_hba: hostssl only
    (role,) = [r for r in cluster["spec"]["managed"]["roles"] if r["name"] == settings["username"]]
    assert role["login"] is True
    secrets = {s["metadata"]["name"]: s for s in resources(doc, "kubernetes_secret_v1").values()}
    login = secrets[role["passwordSecret"]["name"]]
    assert login["type"] == "kubernetes.io/basic-auth"
    assert login["data"]["username"] == settings["username"]
    reference = settings["password"]["secretKeyRef"]
    filer_secret = secrets[reference["name"]]
    assert namespace_name(doc, filer_secret["metadata"]["namespace"]) == release["namespace"]
    assert filer_secret["data"][reference["key"]] == login["data"]["password"]
    (database,) = manifests(doc, "Database")
    assert database["spec"]["cluster"] == {"name": cluster["metadata"]["name"]}
    assert (database["spec"]["name"], database["spec"]["owner"]) == (
        settings["database"],
        settings["username"],
    )


def test_restore_order_has_no_cycle(attic_environments):
    """The filer waits for its database; Postgres waits for the SeaweedFS release only when it
    archives there (or restores from there), never when the filer's index is in Postgres."""
    checked = set()
    for env_name, env, doc in attic_environments:
        graph = dependencies(doc)
        _assert_acyclic(graph, env_name)
        found = _seaweedfs(doc)
        if found is None:
            continue
        release = f"helm_release.{found[0]}"
        cluster = _address(doc, "Cluster")
        if filer_in_postgres(env.config):
            assert {_address(doc, "Database"), cluster} <= reachable(graph, release), env_name
            assert release not in reachable(graph, cluster), env_name
            checked.add("index in postgres")
        elif backup_store_in_cluster(env.config):
            assert release in reachable(graph, cluster), env_name
            checked.add("backups in seaweedfs")
    assert checked == {"index in postgres", "backups in seaweedfs"}


def _assert_acyclic(graph: dict[str, set[str]], stack: str) -> None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:  # OpenTofu refuses such a plan
        raise AssertionError(f"{stack}: {error.args[1]}") from None
