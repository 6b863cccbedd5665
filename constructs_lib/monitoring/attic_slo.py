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
:class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule`. Its props are in
:mod:`~constructs_lib.monitoring.attic_slo_props`; this module builds the SLI recordings, the
burn-rate and latency alerts, and :mod:`~constructs_lib.monitoring.attic_dependency_alerts` the
alerts on workloads, Postgres and backups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from constructs_lib.monitoring.attic_dependency_alerts import postgres_alerts, workload_alerts
from constructs_lib.monitoring.attic_slo_props import (
    AtticSloProps,
    attic_slo_problems,
    selector as _selector,
)
from constructs_lib.monitoring.prometheus_rule import (
    alert_rule as _alert,
    promql_number as _num,
)
from constructs_lib.validation import raise_if_problems

__all__ = [
    "BUDGET_REMAINING",
    "BURN_RATE_ALERTS",
    "ERRORS_RATE",
    "METRICS",
    "REQUESTS_RATE",
    "SLI_WINDOWS",
    "SLO_LABEL",
    "BurnRateAlert",
    "attic_rule_groups",
    "error_ratio_record",
]

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
"""Every metric the Attic rules read -> its type and where it is defined."""

SLO_LABEL = "attic-availability"
"""Value of the ``slo`` label on the SLO's recordings and alerts."""
SLI_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""The windows the 5xx ratio is recorded over (:func:`error_ratio_record`)."""
REQUESTS_RATE = "attic:http_requests:rate5m"
"""Recording: Attic requests per second over 5 minutes."""
ERRORS_RATE = "attic:http_request_errors:rate5m"
"""Recording: Attic 5xx answers per second over 5 minutes."""
BUDGET_REMAINING = "attic:error_budget:remaining_ratio"
"""Recording: the share of the SLO window's error budget still left."""


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


BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("AtticErrorBudgetBurn1h", "1h", "5m", 14.4, "critical", "2m"),
    BurnRateAlert("AtticErrorBudgetBurn6h", "6h", "30m", 6.0, "critical", "15m"),
    BurnRateAlert("AtticErrorBudgetBurn1d", "1d", "2h", 3.0, "warning", "1h"),
    BurnRateAlert("AtticErrorBudgetBurn3d", "3d", "6h", 1.0, "warning", "3h"),
)
"""The burn-rate alerts: Google SRE Workbook ch. 5 "Alerting on SLOs", Table 5-8 (99.9 % over
30 days): 1h/5m 14.4x page, 6h/30m 6x page, 3d/6h 1x ticket; the 1d/2h 3x ticket row is
Sloth's default 30-day window set. Budget spent when one fires: 2 %, 5 %, 10 %, 10 %.
"""


def attic_rule_groups(props: AtticSloProps) -> list[dict[str, Any]]:
    """The Attic rule groups: SLI recordings, SLO alerts, workload alerts, Postgres alerts.

    Give them to :class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule`.

    Example:
        ```python
        from constructs_lib.monitoring.attic_slo import attic_rule_groups
        from constructs_lib.monitoring.attic_slo_props import (
            AtticRouteServices,
            AtticSloProps,
            GcDeployment,
        )
        from constructs_lib.monitoring.prometheus_rule import PrometheusRule, PrometheusRuleProps

        groups = attic_rule_groups(
            AtticSloProps(
                namespace="attic",
                ingress_controller="traefik",
                host="cache.example.com",
                services=AtticRouteServices(
                    api_service="attic",
                    binary_cache_service="attic-binary-cache",
                    cache_info_service="attic-cache-info",
                ),
                api_deployment="attic-api",
                gc=GcDeployment(name="attic-gc"),
                pg_cluster="attic-db",
            )
        )
        PrometheusRule(
            stack,
            "AtticSlo",
            PrometheusRuleProps(name="attic-slo", namespace="attic", groups=groups),
        )
        ```

    Raises:
        PropsError: listing every invalid prop.
    """
    raise_if_problems("AtticSlo", attic_slo_problems(props))
    return [
        {"name": "attic-slo-sli", "rules": _sli_records(props)},
        {"name": "attic-slo-budget", "interval": "5m", "rules": _budget_records(props)},
        {"name": "attic-slo-alerts", "rules": _slo_alerts(props)},
        {"name": "attic-workloads", "rules": workload_alerts(props)},
        {"name": "attic-postgres", "rules": postgres_alerts(props)},
    ]


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
