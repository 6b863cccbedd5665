"""Alerts on what an Attic cache depends on: its workloads (the API Deployment, garbage
collection, CronJobs and their Jobs, from kube-state-metrics), and Postgres and its backups (from
CloudNativePG's exporter and the Barman Cloud plugin).

:func:`~constructs_lib.monitoring.attic_slo.attic_rule_groups` puts them in the
``attic-workloads`` and ``attic-postgres`` groups, next to the SLO rules.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from typing import Any

from constructs_lib.monitoring.attic_slo_props import (
    AtticSloProps,
    GcCronJob,
    GcDeployment,
    selector as _selector,
)
from constructs_lib.monitoring.prometheus_rule import (
    alert_rule as _alert,
    promql_number as _num,
    short_duration as _human,
)


def workload_alerts(props: AtticSloProps) -> list[dict[str, Any]]:
    ns = props.namespace
    rules = [
        _alert(
            "AtticApiUnavailable",
            _no_available_replicas(ns, props.api_deployment),
            for_="5m",
            severity="critical",
            summary=f"Attic ({props.host}) has no available API pod.",
            description=f"Deployment {ns}/{props.api_deployment} wants replicas but has none "
            "available (kube_deployment_status_replicas_available, kube-state-metrics). "
            "Ingress controllers may answer 404 or 503 without counting it as a backend 5xx, so "
            "the burn-rate alerts can miss this.",
            runbook=f"kubectl -n {ns} describe deploy/{props.api_deployment}; kubectl -n {ns} "
            "get events --sort-by=.lastTimestamp",
        )
    ]
    if isinstance(props.gc, GcDeployment):
        rules.append(
            _alert(
                "AtticGarbageCollectorDown",
                _no_available_replicas(ns, props.gc.name),
                for_="30m",
                severity="warning",
                summary="Attic's garbage collector is not running.",
                description=f"Deployment {ns}/{props.gc.name} has no available replica "
                "(kube_deployment_status_replicas_available, kube-state-metrics); expired "
                "objects and orphan chunks pile up in storage.",
                runbook=f"kubectl -n {ns} logs deploy/{props.gc.name} --previous. If the GC "
                "interval is 0 the process exits at once: use a CronJob instead.",
            )
        )
    elif isinstance(props.gc, GcCronJob):
        rules.append(
            _alert(
                "AtticGarbageCollectionStale",
                _cronjob_stale(ns, props.gc.name, props.gc.max_age_seconds),
                for_="15m",
                severity="warning",
                summary="Attic's garbage collection has not succeeded recently.",
                description=f"CronJob {ns}/{props.gc.name} last succeeded "
                f"{{{{ $value | humanizeDuration }}}} ago (limit "
                f"{_human(props.gc.max_age_seconds)}; kube_cronjob_status_last_successful_time "
                "from kube-state-metrics, or its creation time if it never succeeded).",
                runbook=f"kubectl -n {ns} get jobs | grep {props.gc.name}; kubectl -n {ns} "
                "logs job/<the latest of them>",
            )
        )
    if props.cronjobs_max_age:
        limits = ", ".join(f"{n} {_human(s)}" for n, s in sorted(props.cronjobs_max_age.items()))
        rules.append(
            _alert(
                "AtticCronJobNotSucceeding",
                "\nor\n".join(
                    _cronjob_stale(ns, name, seconds)
                    for name, seconds in sorted(props.cronjobs_max_age.items())
                ),
                for_="15m",
                severity="warning",
                summary="Attic CronJob {{ $labels.cronjob }} has not succeeded recently.",
                description="CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} last "
                "succeeded {{ $value | humanizeDuration }} ago, or was created that long ago and "
                f"never succeeded (limits: {limits}; kube_cronjob_status_last_successful_time "
                "and kube_cronjob_created from kube-state-metrics).",
                runbook=f"kubectl -n {ns} get cronjob {{{{ $labels.cronjob }}}} -o wide; "
                f"kubectl -n {ns} get jobs; kubectl -n {ns} logs job/<latest job>",
            )
        )
    if props.failed_jobs_cronjobs:
        owners = "|".join(props.failed_jobs_cronjobs)
        failed = _selector("kube_job_failed", f'namespace="{ns}"', 'condition="true"')
        owner = _selector(
            "kube_job_owner", f'namespace="{ns}"', 'owner_kind="CronJob"', f'owner_name=~"{owners}"'
        )
        started = _selector("kube_job_status_start_time", f'namespace="{ns}"')
        rules.append(
            _alert(
                "AtticJobFailed",
                f"({failed} == 1)\n"
                f"* on (namespace, job_name) group_left (owner_name)\n  {owner}\n"
                f"and on (namespace, job_name)\n"
                f"  (time() - {started} < {props.failed_jobs_lookback_seconds})",
                for_="5m",
                severity="warning",
                summary="Attic Job {{ $labels.job_name }} of CronJob {{ $labels.owner_name }} "
                "failed.",
                description="Job {{ $labels.namespace }}/{{ $labels.job_name }} (CronJob "
                "{{ $labels.owner_name }}) failed within the last "
                f"{_human(props.failed_jobs_lookback_seconds)} (kube_job_failed with "
                "kube_job_owner, kube-state-metrics).",
                runbook=f"kubectl -n {ns} logs job/{{{{ $labels.job_name }}}}; kubectl -n {ns} "
                "describe job/{{ $labels.job_name }}",
            )
        )
    return rules


def _no_available_replicas(ns: str, deployment: str) -> str:
    matchers = (f'namespace="{ns}"', f'deployment="{deployment}"')
    return (
        f"{_selector('kube_deployment_status_replicas_available', *matchers)} == 0\n"
        "and on (namespace, deployment)\n"
        f"{_selector('kube_deployment_spec_replicas', *matchers)} > 0"
    )


def _cronjob_stale(ns: str, cronjob: str, max_age_seconds: int) -> str:
    matchers = (f'namespace="{ns}"', f'cronjob="{cronjob}"')
    last_success = _selector("kube_cronjob_status_last_successful_time", *matchers)
    created = _selector("kube_cronjob_created", *matchers)
    return (
        f"(time() - {last_success} > {max_age_seconds})\n"
        "or\n"
        f"(\n  time() - {created} > {max_age_seconds}\n"
        f"  unless on (namespace, cronjob)\n  {last_success}\n)"
    )


# --- Postgres and backups -------------------------------------------------------------------


def postgres_alerts(props: AtticSloProps) -> list[dict[str, Any]]:
    ns = props.pg_namespace or props.namespace
    cluster = props.pg_cluster
    pods = (f'namespace="{ns}"', f'pod=~"{cluster}-[0-9]+"')
    collector_up = _selector("cnpg_collector_up", *pods)
    rules = [
        _alert(
            "AtticPostgresReplicationLag",
            f"{_selector('cnpg_pg_replication_lag', *pods)} > "
            f"{_num(props.pg_replication_lag_seconds)}",
            for_="5m",
            severity="warning",
            summary="Attic's Postgres standby {{ $labels.pod }} lags behind the primary.",
            description="Standby {{ $labels.namespace }}/{{ $labels.pod }} replays WAL "
            "{{ $value | humanizeDuration }} behind the primary (threshold "
            f"{_num(props.pg_replication_lag_seconds)} s; cnpg_pg_replication_lag from "
            "CloudNativePG's default monitoring queries). A failover now would lose that much.",
            runbook=f"kubectl cnpg status {cluster} -n {ns}; check the standby's disk and "
            "network, and long queries on it.",
        ),
        _alert(
            "AtticPostgresInstanceDown",
            f"{collector_up} == 0",
            for_="5m",
            severity="warning",
            summary="Attic's Postgres instance {{ $labels.pod }} is down.",
            description="CloudNativePG's exporter in {{ $labels.namespace }}/{{ $labels.pod }} "
            "cannot reach PostgreSQL (cnpg_collector_up == 0).",
            runbook=f"kubectl cnpg status {cluster} -n {ns}; kubectl -n {ns} logs "
            "{{ $labels.pod }}",
        ),
        _alert(
            "AtticPostgresExporterDown",
            f"{_selector('up', *pods)} == 0",
            for_="10m",
            severity="warning",
            summary="Prometheus cannot scrape Attic's Postgres instance {{ $labels.pod }}.",
            description="The metrics endpoint of {{ $labels.namespace }}/{{ $labels.pod }} "
            "(port 9187) does not answer scrapes (up == 0), so the replication and backup "
            "alerts are blind for it.",
            runbook=f"kubectl -n {ns} get pod {{{{ $labels.pod }}}}; check the PodMonitor and "
            "the metrics TLS settings.",
        ),
        _alert(
            "AtticPostgresMetricsAbsent",
            f"absent({collector_up})",
            for_="15m",
            severity="warning",
            summary="Prometheus has no metrics from Attic's Postgres cluster.",
            description=f"No cnpg_collector_up series for Cluster {ns}/{cluster}: the PodMonitor "
            "is missing or not selected by Prometheus, so every Postgres and backup alert is "
            "blind.",
            runbook=f"kubectl -n {ns} get podmonitor {cluster}; compare its labels with the "
            "Prometheus podMonitorSelector.",
        ),
    ]
    if props.backup_max_age_seconds is not None:
        available = _selector(
            "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp", *pods
        )
        failed = _selector("barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp", *pods)
        rules += [
            _alert(
                "AtticBackupTooOld",
                f"time() - max by (namespace) ({available}) > {props.backup_max_age_seconds}\n"
                f"or\nabsent({available})",
                for_="30m",
                severity="warning",
                summary="Attic's newest Postgres base backup is too old.",
                description=f"The newest base backup of Cluster {ns}/{cluster} is "
                "{{ $value | humanizeDuration }} old, or there is none (limit "
                f"{_human(props.backup_max_age_seconds)}; "
                "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp from the "
                "Barman Cloud plugin).",
                runbook=f"kubectl -n {ns} get backups --sort-by=.metadata.creationTimestamp; "
                f"kubectl -n {ns} get scheduledbackups; check the ObjectStore credentials.",
            ),
            _alert(
                "AtticBackupFailed",
                f"max by (namespace) ({failed})\n>\nmax by (namespace) ({available})",
                for_="15m",
                severity="warning",
                summary="Attic's last Postgres backup attempt failed.",
                description=f"The last failed backup of Cluster {ns}/{cluster} is newer than "
                "its last available one (barman_cloud_cloudnative_pg_io_last_failed_backup_"
                "timestamp from the Barman Cloud plugin).",
                runbook=f"kubectl -n {ns} describe backup <the latest>; the plugin sidecar's "
                f"logs: kubectl -n {ns} logs {cluster}-1 --all-containers",
            ),
        ]
    return rules
