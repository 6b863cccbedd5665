"""Prometheus rules for an Attic cache: an availability SLO with multi-window, multi-burn-rate
alerts, latency alerts, and alerts on what the cache depends on.

atticd has no metrics endpoint (shared/reference/attic.md §3), so every signal comes from
around it: the ingress controller (requests, status codes, latency), kube-state-metrics
(Deployments, CronJobs, Jobs), CloudNativePG's instance exporter (Postgres) and the Barman Cloud
plugin (backups). :data:`METRICS` lists every metric name the rules read, with its source.

To split the controller's metrics by route, the stack routes the Attic host to three Services
over the same pods (all port 80):

- ``binary_cache_service``: the ``/<cache>/`` prefix: narinfo lookups, i.e. cache hits. The
  ``/<cache>/nar/`` prefix must go to ``api_service``, or streamed NAR downloads would land in
  the cache-hit latency histogram;
- ``cache_info_service``: ``/<cache>/nix-cache-info`` (exact path);
- ``api_service``: everything else (uploads, the ``/_api/v1`` API, NAR downloads).

:func:`attic_rule_groups` returns the groups as plain data; give them to
:class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from constructs_lib.monitoring.prometheus_rule import (
    alert_rule as _alert,
    is_duration,
    promql_number as _num,
    short_duration as _human,
)
from constructs_lib.validation import check_dns_label, raise_if_problems

IngressController = Literal["traefik", "nginx"]

_TRAEFIK_DOC = (
    "Traefik v3 metrics reference (traefik/traefik "
    "docs/content/reference/install-configuration/observability/metrics.md, 'Service Metrics'); "
    "labels code, method, protocol, service; on by default (addServicesLabels=true)"
)
_NGINX_SRC = (
    "ingress-nginx internal/ingress/metric/collectors/socket.go; labels status, method, path, "
    "namespace, ingress, service, canary (+host with --metrics-per-host)"
)
_KSM = "kube-state-metrics docs/metrics/workload/"
_CNPG_QUERIES = "CloudNativePG config/manager/default-monitoring.yaml (query pg_replication)"
_BARMAN = "plugin-barman-cloud web/docs (Observability; migration.md 'Verify your metrics')"

METRICS: Mapping[str, str] = {
    "traefik_service_requests_total": f"counter; {_TRAEFIK_DOC}",
    "traefik_service_request_duration_seconds_bucket": f"histogram; {_TRAEFIK_DOC}",
    "nginx_ingress_controller_requests": f"counter (no _total suffix); {_NGINX_SRC}",
    "nginx_ingress_controller_request_duration_seconds_bucket": f"histogram; {_NGINX_SRC}",
    "kube_deployment_status_replicas_available": f"{_KSM}deployment-metrics.md",
    "kube_deployment_spec_replicas": f"{_KSM}deployment-metrics.md",
    "kube_cronjob_status_last_successful_time": f"{_KSM}cronjob-metrics.md",
    "kube_cronjob_created": f"{_KSM}cronjob-metrics.md",
    "kube_job_failed": f"{_KSM}job-metrics.md (label condition)",
    "kube_job_owner": f"{_KSM}job-metrics.md (labels owner_kind, owner_name)",
    "kube_job_status_start_time": f"{_KSM}job-metrics.md",
    "cnpg_pg_replication_lag": f"seconds; {_CNPG_QUERIES}",
    "cnpg_collector_up": "CloudNativePG built-in collector, 1 if PostgreSQL is up (docs: "
    "Monitoring); label cluster",
    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp": f"unix time; {_BARMAN}",
    "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp": f"unix time; {_BARMAN}",
    "up": "Prometheus scrape health of each target",
}

SLO_LABEL = "attic-availability"
SLI_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
REQUESTS_RATE = "attic:http_requests:rate5m"
ERRORS_RATE = "attic:http_request_errors:rate5m"
BUDGET_REMAINING = "attic:error_budget:remaining_ratio"


def error_ratio_record(window: str) -> str:
    """Name of the recorded 5xx ratio over ``window``."""
    return f"attic:http_request_errors:ratio_rate{window}"


@dataclass(frozen=True, slots=True)
class BurnRateAlert:
    """One multi-window burn-rate alert: fires when both windows burn ``factor`` times faster
    than the budget allows.

    Attributes:
        alert: alert name.
        long_window: the window that measures the burn.
        short_window: 1/12 of it, so the alert resets soon after the burn stops.
        factor: burn rate; ``factor * (1 - target)`` is the error-ratio threshold.
        severity: ``critical`` (page) or ``warning`` (ticket).
        for_: how long both windows must stay above the threshold.
    """

    alert: str
    long_window: str
    short_window: str
    factor: float
    severity: str
    for_: str


# Google SRE Workbook ch. 5 "Alerting on SLOs", Table 5-8 (99.9 % over 30 days): 1h/5m 14.4x
# page, 6h/30m 6x page, 3d/6h 1x ticket; the 1d/2h 3x ticket row is Sloth's default 30-day
# window set. Budget spent when one fires: 2 %, 5 %, 10 %, 10 %.
BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("AtticErrorBudgetBurn1h", "1h", "5m", 14.4, "critical", "2m"),
    BurnRateAlert("AtticErrorBudgetBurn6h", "6h", "30m", 6.0, "critical", "15m"),
    BurnRateAlert("AtticErrorBudgetBurn1d", "1d", "2h", 3.0, "warning", "1h"),
    BurnRateAlert("AtticErrorBudgetBurn3d", "3d", "6h", 1.0, "warning", "3h"),
)


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
    """What :func:`attic_rule_groups` watches, and its thresholds.

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


def attic_rule_groups(props: AtticSloProps) -> list[dict[str, Any]]:
    """The Attic rule groups: SLI recordings, SLO alerts, workload alerts, Postgres alerts.

    Raises:
        PropsError: listing every invalid prop.
    """
    raise_if_problems("AtticSlo", _problems(props))
    return [
        {"name": "attic-slo-sli", "rules": _sli_records(props)},
        {"name": "attic-slo-budget", "interval": "5m", "rules": _budget_records(props)},
        {"name": "attic-slo-alerts", "rules": _slo_alerts(props)},
        {"name": "attic-workloads", "rules": _workload_alerts(props)},
        {"name": "attic-postgres", "rules": _postgres_alerts(props)},
    ]


# --- validation ---------------------------------------------------------------------------


def _problems(props: AtticSloProps) -> list[str]:
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


# --- request selectors ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Controller:
    requests: str
    duration_bucket: str
    status_label: str
    bucket_note: str


_CONTROLLERS = {
    "traefik": _Controller(
        "traefik_service_requests_total",
        "traefik_service_request_duration_seconds_bucket",
        "code",
        "Traefik's default buckets are 0.1, 0.3, 1.2 and 5 s, so the quantile is interpolated; "
        "set metrics.prometheus.buckets with a bucket at the threshold for precision.",
    ),
    "nginx": _Controller(
        "nginx_ingress_controller_requests",
        "nginx_ingress_controller_request_duration_seconds_bucket",
        "status",
        "The quantile is interpolated between the controller's --time-buckets; put a bucket at "
        "the threshold for precision.",
    ),
}


def _route_matchers(props: AtticSloProps, services: Sequence[str]) -> str:
    """Label matchers for requests the controller sent to ``services``.

    Traefik names a Kubernetes Ingress backend ``<namespace>-<service>-<port>@kubernetes``
    (port number, or port name when the Ingress names it); the port part is matched as one
    dash-free segment, so a Service whose name extends another's cannot match by accident.
    ingress-nginx labels the backend Service name and the Ingress namespace.
    """
    names = "|".join(services)
    if props.ingress_controller == "traefik":
        return f'service=~"{props.namespace}-({names})-[^-@]+@kubernetes"'
    return f'{props.nginx_namespace_label}="{props.namespace}", service=~"{names}"'


def _selector(metric: str, *matchers: str) -> str:
    return f"{metric}{{{', '.join(m for m in matchers if m)}}}"


# --- SLI and budget recording rules ---------------------------------------------------------


def _record_labels(props: AtticSloProps) -> dict[str, str]:
    """Labels of every recorded series: one Prometheus can hold several Attic installs."""
    return {"namespace": props.namespace, "slo": SLO_LABEL}


def _record(props: AtticSloProps, name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": _record_labels(props)}


def _record_ref(props: AtticSloProps, name: str) -> str:
    return f'{name}{{namespace="{props.namespace}"}}'


def _sli_records(props: AtticSloProps) -> list[dict[str, Any]]:
    ctl = _CONTROLLERS[props.ingress_controller]
    routes = _route_matchers(props, props.services.names())
    all_requests = _selector(ctl.requests, routes)
    errors = _selector(ctl.requests, routes, f'{ctl.status_label}=~"5.."')
    rules: list[dict[str, Any]] = [
        _record(props, REQUESTS_RATE, f"sum(rate({all_requests}[5m]))"),
        _record(props, ERRORS_RATE, f"sum(rate({errors}[5m]))"),
        _record(
            props,
            error_ratio_record("5m"),
            f"{_record_ref(props, ERRORS_RATE)}\n/\n{_record_ref(props, REQUESTS_RATE)}",
        ),
    ]
    rules += [
        _record(
            props,
            error_ratio_record(window),
            f"sum(rate({errors}[{window}]))\n/\nsum(rate({all_requests}[{window}]))",
        )
        for window in SLI_WINDOWS
        if window != "5m"
    ]
    return rules


def _budget_records(props: AtticSloProps) -> list[dict[str, Any]]:
    # Request-weighted over the SLO window from the 5m rates: cheaper than rate(...[30d]).
    window = props.slo_window
    return [
        _record(
            props,
            error_ratio_record(window),
            f"sum_over_time({_record_ref(props, ERRORS_RATE)}[{window}])\n/\n"
            f"sum_over_time({_record_ref(props, REQUESTS_RATE)}[{window}])",
        ),
        _record(
            props,
            BUDGET_REMAINING,
            f"1 - {_record_ref(props, error_ratio_record(window))} / "
            f"{_num(1 - props.availability_target)}",
        ),
    ]


# --- SLO alerts -----------------------------------------------------------------------------


def _slo_alerts(props: AtticSloProps) -> list[dict[str, Any]]:
    budget = 1 - props.availability_target
    target = f"{_num(props.availability_target * 100)} %"
    source = _source_text(props)
    rules = [
        _alert(
            burn.alert,
            "\nand\n".join(
                f"{_record_ref(props, error_ratio_record(window))} > {_num(burn.factor * budget)}"
                for window in (burn.long_window, burn.short_window)
            ),
            for_=burn.for_,
            severity=burn.severity,
            labels={"slo": SLO_LABEL, "long_window": burn.long_window},
            summary=f"Attic ({props.host}) is burning its {props.slo_window} error budget "
            f"{_num(burn.factor)}x too fast.",
            description=f"Over both the last {burn.long_window} and {burn.short_window}, more "
            f"than {_num(burn.factor * budget * 100)} % of requests got a 5xx answer (now "
            f"{{{{ $value | humanizePercentage }}}} over {burn.long_window}); the SLO is "
            f"{target} of requests without 5xx over {props.slo_window}. Source: {source}.",
            runbook=_RUNBOOK_5XX.format(ns=props.namespace, api=props.api_deployment),
        )
        for burn in BURN_RATE_ALERTS
    ]
    for alert, remaining, severity in (
        ("AtticErrorBudgetLow", props.budget_warning_remaining, "warning"),
        ("AtticErrorBudgetCritical", props.budget_critical_remaining, "critical"),
    ):
        rules.append(
            _alert(
                alert,
                f"{_record_ref(props, BUDGET_REMAINING)} < {_num(remaining)}",
                for_="30m",
                severity=severity,
                labels={"slo": SLO_LABEL},
                summary=f"Less than {_num(remaining * 100)} % of Attic's {props.slo_window} "
                "error budget is left.",
                description=f"{{{{ $value | humanizePercentage }}}} of the error budget of the "
                f"{target} availability SLO is left over the last {props.slo_window} "
                f"(recorded as {BUDGET_REMAINING} from {source}). Freeze risky changes "
                "until it recovers.",
                runbook=_RUNBOOK_5XX.format(ns=props.namespace, api=props.api_deployment),
            )
        )
    rules += [
        _latency_alert(
            props,
            "AtticCacheHitLatencyHigh",
            props.services.binary_cache_service,
            props.cache_hit_p99_seconds,
            "narinfo lookups (cache hits)",
        ),
        _latency_alert(
            props,
            "AtticCacheInfoLatencyHigh",
            props.services.cache_info_service,
            props.cache_info_p99_seconds,
            "nix-cache-info requests",
        ),
    ]
    return rules


def _latency_alert(
    props: AtticSloProps, alert: str, service: str, threshold: float, what: str
) -> dict[str, Any]:
    ctl = _CONTROLLERS[props.ingress_controller]
    buckets = _selector(
        ctl.duration_bucket,
        _route_matchers(props, [service]),
        'method="GET"',
        f'{ctl.status_label}=~"2.."',
    )
    return _alert(
        alert,
        f"histogram_quantile(0.99, sum by (le) (rate({buckets}[5m])))\n> {_num(threshold)}",
        for_="15m",
        severity="warning",
        labels={"namespace": props.namespace},
        summary=f"Attic ({props.host}) answers {what} slowly.",
        description=f"The p99 of successful GETs to Service {service} is "
        f"{{{{ $value | humanizeDuration }}}} (threshold {_num(threshold)} s) over 5m, from "
        f"{ctl.duration_bucket}. {ctl.bucket_note}",
        runbook=f"Check Postgres latency and load first (narinfo lookups are a query each), then "
        f"atticd CPU: kubectl -n {props.namespace} top pods.",
    )


_RUNBOOK_5XX = (
    "kubectl -n {ns} get pods; kubectl -n {ns} logs deploy/{api} | grep -i error. atticd "
    "answers 500 when Postgres fails and 503 IncompleteNar when a chunk is missing in storage; "
    "check the Postgres and storage alerts."
)


def _source_text(props: AtticSloProps) -> str:
    ctl = _CONTROLLERS[props.ingress_controller]
    services = ", ".join(props.services.names())
    return f"{ctl.requests} ({props.ingress_controller}) for Services {services}"


# --- workloads ------------------------------------------------------------------------------


def _workload_alerts(props: AtticSloProps) -> list[dict[str, Any]]:
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


def _postgres_alerts(props: AtticSloProps) -> list[dict[str, Any]]:
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
