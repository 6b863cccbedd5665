"""The charts' data: a fixed allowlist of chart names, each a selection of the store's series,
aligned on one time axis in the column layout uPlot draws (``[[x...], [y1...], ...]``).

A chart name from a URL is only ever a key into :data:`CHARTS`; nothing else of the request
reaches a query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard.model import EnvironmentState, Series

# Prefixes of the store's series keys (the Prometheus collector's names).
HPA_REPLICAS = "hpa_replicas:"
JOBS_RUNNING = "jobs_running:"
JOBS_CAPACITY = "jobs_capacity:"
CACHE_RATE = "request_rate"
CACHE_P99 = "p99_seconds"
CACHE_ERRORS = "error_ratio"


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One chart: its title, unit, the series it draws and an optional SLO line."""

    title: str
    unit: str
    source: str
    select: Callable[[EnvironmentState], list[tuple[str, Series]]]
    threshold: Callable[[EnvironmentState], float | None] = lambda state: None


def _scaling(*prefixes: str) -> Callable[[EnvironmentState], list[tuple[str, Series]]]:
    def select(state: EnvironmentState) -> list[tuple[str, Series]]:
        return [
            (f"{key.removeprefix(prefix)} {prefix.split('_')[-1].rstrip(':')}", series)
            for prefix in prefixes
            for key, series in sorted(state.scaling_series.items())
            if key.startswith(prefix)
        ]

    return select


def _cache(key: str, label: str) -> Callable[[EnvironmentState], list[tuple[str, Series]]]:
    def select(state: EnvironmentState) -> list[tuple[str, Series]]:
        series = state.cache.series.get(key) if state.cache else None
        return [(label, series)] if series else []

    return select


CHARTS: dict[str, Chart] = {
    "replicas": Chart(
        title="HPA replicas", unit="replicas", source="prometheus", select=_scaling(HPA_REPLICAS)
    ),
    "jobs": Chart(
        title="Jobs running and job capacity",
        unit="jobs",
        source="prometheus",
        select=_scaling(JOBS_RUNNING, JOBS_CAPACITY),
    ),
    "cache-requests": Chart(
        title="Attic requests", unit="req/s", source="prometheus", select=_cache(CACHE_RATE, "rate")
    ),
    "cache-latency": Chart(
        title="Attic p99 latency",
        unit="s",
        source="prometheus",
        select=_cache(CACHE_P99, "p99"),
        threshold=lambda state: state.cache.slo_p99_seconds if state.cache else None,
    ),
    "cache-errors": Chart(
        title="Attic 5xx ratio",
        unit="ratio",
        source="prometheus",
        select=_cache(CACHE_ERRORS, "errors"),
        threshold=lambda state: state.cache.slo_error_ratio if state.cache else None,
    ),
}


def chart_data(state: EnvironmentState, name: str) -> dict[str, Any]:
    """The JSON of chart ``name`` (a key of :data:`CHARTS`): labels, aligned columns, the
    SLO line if any, and its source's health so the chart can say it is stale."""
    chart = CHARTS[name]
    picked = chart.select(state)
    xs = sorted({t for _, series in picked for t, _ in series.points})
    columns: list[list[float | None]] = [list(xs)]
    for _, series in picked:
        values = dict(series.points)
        columns.append([values.get(t) for t in xs])
    health = state.sources[chart.source]
    return {
        "name": name,
        "title": chart.title,
        "unit": chart.unit,
        "labels": [label for label, _ in picked],
        "data": columns,
        "threshold": chart.threshold(state),
        "source": {
            "name": chart.source,
            "configured": health.configured,
            "ok": health.ok,
            "stale": health.stale,
            "last_error": health.last_error,
        },
        "version": state.version,
    }


def time_at_max(state: EnvironmentState, namespace: str, name: str, maximum: int) -> float | None:
    """Share of the charted window an HPA spent at its maximum (None without a series)."""
    series = state.scaling_series.get(f"{HPA_REPLICAS}{namespace}/{name}")
    if series is None or not series.points:
        return None
    return sum(value >= maximum for _, value in series.points) / len(series.points)
