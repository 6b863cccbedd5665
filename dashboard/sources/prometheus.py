"""Prometheus collector: runner jobs against their slots, saturation, queue wait, failures,
replicas over time, and Attic traffic against its SLO.

The PromQL lives here once (:func:`queries`); the fake Prometheus answers the same strings.
The series are the ones the repository's own rules read: runner managers scraped by the
runners stack's PodMonitor (label ``runner_type``), its saturation recordings, the Attic SLO
recordings and the ingress controller's histograms, and kube-state-metrics for HPAs. The
dashboard may not import the construct library, so the names are copied here and a test
holds them equal to the rules'.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from config_model.organization import OrganizationConfig
from config_model.wiring import dashboard_namespaces
from dashboard.model import CacheMetrics, Series, TypeMetrics
from dashboard.sources.polling import Retry, default_retry, poll
from dashboard.store import FleetStore

# Copies of constructs_lib.monitoring names (tests/dashboard/test_sources_prometheus.py).
RUNNER_TYPE_TARGET = "runner_type"
CONCURRENT_SATURATION = "gitlab_runner:concurrent_saturation:ratio"
LIMIT_SATURATION = "gitlab_runner:limit_saturation:ratio"
REQUESTS_RATE = "attic:http_requests:rate5m"
ERROR_RATIO_5M = "attic:http_request_errors:ratio_rate5m"
BINARY_CACHE_SERVICE = "attic-binary-cache"
# controller -> (duration histogram buckets, status label)
CONTROLLER_LATENCY = {
    "traefik": ("traefik_service_request_duration_seconds_bucket", "code"),
    "nginx": ("nginx_ingress_controller_request_duration_seconds_bucket", "status"),
}
NGINX_NAMESPACE_LABEL = "exported_namespace"


@dataclass(frozen=True, kw_only=True)
class Queries:
    """Every PromQL expression the dashboard sends, for one environment's config."""

    running: str
    capacity: str
    saturation: str
    queue_p50: str
    queue_p95: str
    failures: str
    hpa_current: str
    hpa_desired: str
    hpa_max: str
    cache_requests: str
    cache_p99: str
    cache_errors: str

    def instant(self) -> tuple[str, ...]:
        return (
            self.running,
            self.capacity,
            self.saturation,
            self.queue_p50,
            self.queue_p95,
            self.failures,
            self.cache_requests,
            self.cache_p99,
            self.cache_errors,
        )

    def ranges(self) -> tuple[str, ...]:
        return (
            self.running,
            self.capacity,
            self.hpa_current,
            self.hpa_desired,
            self.hpa_max,
            self.cache_requests,
            self.cache_p99,
            self.cache_errors,
        )


def _quantile(q: float, namespace: str) -> str:
    buckets = f'gitlab_runner_job_queue_duration_seconds_bucket{{namespace="{namespace}"}}'
    return f"histogram_quantile({q}, sum by (le, {RUNNER_TYPE_TARGET}) (rate({buckets}[10m])))"


def cache_p99_query(config: OrganizationConfig) -> str:
    """p99 of successful GETs of cache hits: the expression of the AtticCacheHitLatencyHigh
    alert."""
    namespace, controller = config.attic.namespace, config.attic.ingress.controller
    bucket, status_label = CONTROLLER_LATENCY[controller]
    if controller == "traefik":
        route = f'service=~"{namespace}-({BINARY_CACHE_SERVICE})-[^-@]+@kubernetes"'
    else:
        route = f'{NGINX_NAMESPACE_LABEL}="{namespace}", service=~"{BINARY_CACHE_SERVICE}"'
    selector = f'{bucket}{{{route}, method="GET", {status_label}=~"2.."}}'
    return f"histogram_quantile(0.99, sum by (le) (rate({selector}[5m])))"


def queries(config: OrganizationConfig) -> Queries:
    """The queries for ``config``'s namespaces and ingress controller."""
    runners = f'namespace="{config.runners.namespace}"'
    by_type = f"sum by ({RUNNER_TYPE_TARGET})"
    hpa_namespaces = f'namespace=~"{"|".join(dashboard_namespaces(config))}"'
    attic = f'namespace="{config.attic.namespace}"'
    return Queries(
        running=f"{by_type} (gitlab_runner_jobs{{{runners}}})",
        capacity=f"{by_type} (gitlab_runner_concurrent{{{runners}}})",
        saturation=f"max by ({RUNNER_TYPE_TARGET}) ({CONCURRENT_SATURATION}{{{runners}}} "
        f"or {LIMIT_SATURATION}{{{runners}}})",
        queue_p50=_quantile(0.5, config.runners.namespace),
        queue_p95=_quantile(0.95, config.runners.namespace),
        failures=f"sum by ({RUNNER_TYPE_TARGET}, failure_reason) "
        f"(increase(gitlab_runner_failed_jobs_total{{{runners}}}[1h]))",
        hpa_current=f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa_namespaces}}}",
        hpa_desired=f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa_namespaces}}}",
        hpa_max=f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa_namespaces}}}",
        cache_requests=f"sum({REQUESTS_RATE}{{{attic}}})",
        cache_p99=cache_p99_query(config),
        cache_errors=f"max({ERROR_RATIO_5M}{{{attic}}})",
    )


class PrometheusError(Exception):
    """A query failed; the message names the query kind and Prometheus' error."""


Sample = tuple[dict[str, str], float | None]


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


async def _get(http: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[Any]:
    """The ``data.result`` of a query, or :class:`PrometheusError`."""
    try:
        response = await http.get(path, params=params)
    except httpx.TimeoutException:
        raise PrometheusError(f"GET {path}: timed out") from None
    except httpx.HTTPError as error:
        raise PrometheusError(f"GET {path}: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise PrometheusError(f"GET {path}: {response.status_code} (not JSON)") from None
    if response.status_code != 200 or body.get("status") != "success":
        detail = f"{body.get('errorType', 'error')}: {str(body.get('error', ''))[:200]}"
        raise PrometheusError(f"GET {path}: {response.status_code} {detail}")
    result = body.get("data", {}).get("result", [])
    return result if isinstance(result, list) else []


async def instant(http: httpx.AsyncClient, query: str, at: float) -> list[Sample]:
    result = await _get(http, "/api/v1/query", {"query": query, "time": at})
    return [(dict(r.get("metric", {})), _number(r.get("value", [0, None])[1])) for r in result]


async def series(
    http: httpx.AsyncClient, query: str, start: float, end: float, step: float
) -> list[tuple[dict[str, str], tuple[tuple[float, float], ...]]]:
    result = await _get(
        http, "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step}
    )
    out = []
    for r in result:
        points = tuple(
            (float(t), v) for t, raw in r.get("values", []) if (v := _number(raw)) is not None
        )
        out.append((dict(r.get("metric", {})), points))
    return out


def _by_type(samples: list[Sample]) -> dict[str, float | None]:
    return {labels.get(RUNNER_TYPE_TARGET, ""): value for labels, value in samples}


def _first(samples: list[Sample]) -> float | None:
    return samples[0][1] if samples else None


async def collect(
    http: httpx.AsyncClient,
    config: OrganizationConfig,
    *,
    now: float,
    range_seconds: float,
    step: float,
) -> dict[str, Any]:
    """One round of every query, as FleetStore parts."""
    q = queries(config)
    start = now - range_seconds
    instants, ranges = await asyncio.gather(
        asyncio.gather(*(instant(http, query, now) for query in q.instant())),
        asyncio.gather(*(series(http, query, start, now, step) for query in q.ranges())),
    )
    values = dict(zip(q.instant(), instants, strict=True))
    history = dict(zip(q.ranges(), ranges, strict=True))
    failures: dict[str, dict[str, float]] = {}
    for labels, value in values[q.failures]:
        if value:
            reasons = failures.setdefault(labels.get(RUNNER_TYPE_TARGET, ""), {})
            reasons[labels.get("failure_reason", "unknown")] = value
    per_type = {
        key: _by_type(values[query])
        for key, query in (
            ("running", q.running),
            ("capacity", q.capacity),
            ("saturation", q.saturation),
            ("p50", q.queue_p50),
            ("p95", q.queue_p95),
        )
    }
    type_metrics = {
        name: TypeMetrics(
            runner_type=name,
            running=per_type["running"].get(name),
            capacity=per_type["capacity"].get(name),
            saturation=per_type["saturation"].get(name),
            queue_p50=per_type["p50"].get(name),
            queue_p95=per_type["p95"].get(name),
            failures=failures.get(name, {}),
        )
        for name, spec in config.runners.types.items()
        if spec.enabled
    }
    scaling: dict[str, Series] = {}
    for query, suffix in ((q.running, "running"), (q.capacity, "capacity")):
        for labels, points in history[query]:
            name = f"jobs:{labels.get(RUNNER_TYPE_TARGET, '')}:{suffix}"
            scaling[name] = Series(name=name, points=points)
    for query, suffix in (
        (q.hpa_current, "current"),
        (q.hpa_desired, "desired"),
        (q.hpa_max, "max"),
    ):
        for labels, points in history[query]:
            hpa = f"{labels.get('namespace', '')}/{labels.get('horizontalpodautoscaler', '')}"
            name = f"hpa:{hpa}:{suffix}"
            scaling[name] = Series(name=name, points=points)
    cache_series = {
        name: Series(name=name, points=history[query][0][1] if history[query] else ())
        for name, query in (
            ("requests", q.cache_requests),
            ("p99", q.cache_p99),
            ("error_ratio", q.cache_errors),
        )
    }
    slo = config.monitoring.slo
    cache = CacheMetrics(
        request_rate=_first(values[q.cache_requests]),
        p99_seconds=_first(values[q.cache_p99]),
        error_ratio=_first(values[q.cache_errors]),
        slo_p99_seconds=slo.cache_hit_p99_ms / 1000,
        slo_error_ratio=round(1 - slo.availability_percent / 100, 10),
        series=cache_series,
    )
    return {"type_metrics": type_metrics, "scaling_series": scaling, "cache": cache}


async def run_prometheus(
    store: FleetStore,
    *,
    url: str,
    interval: float = 30.0,
    range_seconds: float = 6 * 3600,
    step: float = 60.0,
    retry: Retry | None = None,
    timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Query Prometheus at ``url`` every ``interval`` seconds until cancelled; charts cover
    the last ``range_seconds`` at ``step``."""
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"),
        transport=transport,
        timeout=timeout,
        headers={"Accept": "application/json"},
    ) as http:

        async def once() -> dict[str, Any]:
            return await collect(
                http, store.config, now=clock(), range_seconds=range_seconds, step=step
            )

        await poll(
            store,
            "prometheus",
            once,
            interval=interval,
            retry=retry or default_retry(interval),
            errors=(PrometheusError,),
        )
