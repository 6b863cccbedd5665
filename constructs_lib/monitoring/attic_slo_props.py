"""What the Attic rules watch: :class:`AtticSloProps` and its parts, their validation, and the
PromQL selector both rule modules build their expressions from.

:func:`~constructs_lib.monitoring.attic_slo.attic_rule_groups` takes these props; the SLO rules
are in :mod:`~constructs_lib.monitoring.attic_slo`, the alerts on what the cache depends on in
:mod:`~constructs_lib.monitoring.attic_dependency_alerts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from constructs_lib.monitoring.prometheus_rule import is_duration
from constructs_lib.validation import check_dns_label

__all__ = ["AtticRouteServices", "AtticSloProps", "GcCronJob", "GcDeployment", "IngressController"]

IngressController = Literal["traefik", "nginx"]
"""The ingress controllers whose metrics the Attic SLI rules read."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticRouteServices:
    """The three Services the Attic Ingress routes to (all port 80, same pods).

    Attributes:
        api_service: everything else: uploads, the API, NAR downloads.
        binary_cache_service: the ``/<cache>/`` prefix (narinfo lookups, "cache hits").
        cache_info_service: the exact ``/<cache>/nix-cache-info`` path.
    """

    api_service: str
    binary_cache_service: str
    cache_info_service: str

    def names(self) -> tuple[str, str, str]:
        """The three Service names, API first."""
        return (self.api_service, self.binary_cache_service, self.cache_info_service)


@dataclass(frozen=True, kw_only=True, slots=True)
class GcDeployment:
    """Garbage collection as a Deployment running ``atticd --mode garbage-collector``.

    Attributes:
        name: the Deployment; it is "not running" while it has no available replica.
    """

    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GcCronJob:
    """Garbage collection as a CronJob running ``atticd --mode garbage-collector-once``.

    Attributes:
        name: the CronJob.
        max_age_seconds: alert when its last successful run is older than this.
    """

    name: str
    max_age_seconds: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticSloProps:
    """What :func:`~constructs_lib.monitoring.attic_slo.attic_rule_groups` watches, and its
    thresholds.

    Attributes:
        namespace: the Attic namespace (Deployments, CronJobs, Services).
        ingress_controller: ``"traefik"`` or ``"nginx"``: which controller's metrics the SLI
            and latency rules read.
        host: the public Attic host name (used in alert texts).
        services: the three Services the Ingress routes to.
        api_deployment: the ``api-server`` Deployment.
        gc: how garbage collection runs; ``None`` - no GC alert (e.g. GC runs inside the API
            pods in ``monolithic`` mode).
        pg_cluster: the CloudNativePG Cluster name; its pods are ``<pg_cluster>-<n>``.
        pg_namespace: namespace of the Cluster. Default - ``namespace``.
        availability_target: share of requests not answered 5xx. Default ``0.999``.
        slo_window: the SLO's rolling window (Prometheus duration); the burn-rate factors
            are the SRE Workbook's for 30 days. Default ``"30d"``.
        cache_hit_p99_seconds: p99 of successful GETs to ``binary_cache_service`` above this
            alerts. Default ``0.5``.
        cache_info_p99_seconds: p99 of successful GETs to ``cache_info_service`` above this
            alerts. Default ``0.2``.
        budget_warning_remaining: warn when less than this share of the window's error budget
            is left. Default ``0.25``.
        budget_critical_remaining: critical below this share. Default ``0.10``.
        pg_replication_lag_seconds: alert when a standby lags more. Default ``30``.
        backup_max_age_seconds: alert when the newest base backup is older; ``None`` means
            backups are off and no backup rule is made. Default ``None``.
        cronjobs_max_age: CronJob name -> seconds: alert when its last successful run (or its
            creation, if it never succeeded) is older, e.g. an hourly token rotation -> 3 h.
            Default - none.
        failed_jobs_cronjobs: CronJobs whose failed Jobs should warn (e.g. cache warming).
            Default - none.
        failed_jobs_lookback_seconds: only Jobs started within this time count, so a failed
            Job kept by ``failedJobsHistoryLimit`` does not alert forever. Default 6 h.
        nginx_namespace_label: label holding the Ingress namespace in ingress-nginx metrics.
            Scraped through a ServiceMonitor without ``honorLabels``, the exporter's
            ``namespace`` clashes with the target's and becomes ``exported_namespace``; use
            ``"namespace"`` with ``honorLabels: true``. Default ``"exported_namespace"``.
    """

    namespace: str
    ingress_controller: IngressController
    host: str
    services: AtticRouteServices
    api_deployment: str
    gc: GcDeployment | GcCronJob | None
    pg_cluster: str
    pg_namespace: str | None = None
    availability_target: float = 0.999
    slo_window: str = "30d"
    cache_hit_p99_seconds: float = 0.5
    cache_info_p99_seconds: float = 0.2
    budget_warning_remaining: float = 0.25
    budget_critical_remaining: float = 0.10
    pg_replication_lag_seconds: float = 30
    backup_max_age_seconds: int | None = None
    cronjobs_max_age: Mapping[str, int] = field(default_factory=dict)
    failed_jobs_cronjobs: Sequence[str] = ()
    failed_jobs_lookback_seconds: int = 6 * 3600
    nginx_namespace_label: str = "exported_namespace"


def attic_slo_problems(props: AtticSloProps) -> list[str]:
    """One line per invalid prop, and an empty string for each check that passed."""
    services = props.services.names()
    problems = [
        check_dns_label("namespace", props.namespace),
        ""
        if props.ingress_controller in ("traefik", "nginx")
        else f"ingress_controller: {props.ingress_controller!r} must be 'traefik' or 'nginx'",
        "" if props.host and " " not in props.host else f"host: {props.host!r} is not a host",
        *(
            check_dns_label(f"services.{n}", s)
            for n, s in zip(_SERVICE_FIELDS, services, strict=True)
        ),
        ""
        if len(set(services)) == len(services)
        else f"services: the three Services must differ (got {list(services)})",
        check_dns_label("api_deployment", props.api_deployment),
        check_dns_label("pg_cluster", props.pg_cluster),
        "" if props.pg_namespace is None else check_dns_label("pg_namespace", props.pg_namespace),
        ""
        if 0 < props.availability_target < 1
        else f"availability_target: {props.availability_target} must be between 0 and 1",
        ""
        if is_duration(props.slo_window)
        else f"slo_window: {props.slo_window!r} is not a Prometheus duration (e.g. 30d)",
        *_positive("cache_hit_p99_seconds", props.cache_hit_p99_seconds),
        *_positive("cache_info_p99_seconds", props.cache_info_p99_seconds),
        *_positive("pg_replication_lag_seconds", props.pg_replication_lag_seconds),
        *_positive("failed_jobs_lookback_seconds", props.failed_jobs_lookback_seconds),
        ""
        if 0 < props.budget_critical_remaining < props.budget_warning_remaining < 1
        else "budget_critical_remaining/budget_warning_remaining: need 0 < critical < warning "
        f"< 1 (got {props.budget_critical_remaining}, {props.budget_warning_remaining})",
        ""
        if props.nginx_namespace_label in ("namespace", "exported_namespace")
        else f"nginx_namespace_label: {props.nginx_namespace_label!r} must be 'namespace' or "
        "'exported_namespace'",
    ]
    if props.backup_max_age_seconds is not None:
        problems += _positive("backup_max_age_seconds", props.backup_max_age_seconds)
    if props.gc is not None:
        problems.append(check_dns_label("gc.name", props.gc.name))
        if isinstance(props.gc, GcCronJob):
            problems += _positive("gc.max_age_seconds", props.gc.max_age_seconds)
    for name, seconds in props.cronjobs_max_age.items():
        problems.append(check_dns_label("cronjobs_max_age", name))
        problems += _positive(f"cronjobs_max_age[{name}]", seconds)
    problems += [check_dns_label("failed_jobs_cronjobs", n) for n in props.failed_jobs_cronjobs]
    return problems


_SERVICE_FIELDS = ("api_service", "binary_cache_service", "cache_info_service")


def _positive(prop: str, value: float) -> list[str]:
    return [] if value > 0 else [f"{prop}: {value} must be greater than 0"]


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}``; empty matchers are left out."""
    return f"{metric}{{{', '.join(m for m in matchers if m)}}}"
