"""The charts' data: a fixed allowlist of chart names, each a selection of the store's series,
aligned on one time axis in the column layout uPlot draws (``[[x...], [y1...], ...]``).

A chart name from a URL is only ever a key into :data:`CHARTS`; nothing else of the request
reaches a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard.model import EnvironmentState, Series

# The Prometheus collector's series keys (dashboard/sources/prometheus.py).
HPA_SERIES = re.compile(r"^hpa:(?P<what>[^:]+/[^:]+):(?P<which>current|max)$")
JOB_SERIES = re.compile(r"^jobs:(?P<what>[^:]*):(?P<which>running|capacity)$")
CACHE_RATE = "requests"
CACHE_P99 = "p99"
CACHE_ERRORS = "error_ratio"


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One chart: its title, the unit it shows (``scale`` turns the store's values into
    it), the series it draws and an optional SLO line."""

    title: str
    unit: str
    scale: float = 1.0
    source: str
    select: Callable[[EnvironmentState], list[tuple[str, Series]]]
    threshold: Callable[[EnvironmentState], float | None] = lambda state: None


def _scaling(pattern: re.Pattern[str]) -> Callable[[EnvironmentState], list[tuple[str, Series]]]:
    def select(state: EnvironmentState) -> list[tuple[str, Series]]:
        picked = []
        for key, series in sorted(state.scaling_series.items()):
            match = pattern.match(key)
            if match:
                picked.append((f"{match['what'] or '(no type)'} {match['which']}", series))
        return picked

    return select


def _cache(key: str, label: str) -> Callable[[EnvironmentState], list[tuple[str, Series]]]:
    def select(state: EnvironmentState) -> list[tuple[str, Series]]:
        series = state.cache.series.get(key) if state.cache else None
        return [(label, series)] if series else []

    return select


CHARTS: dict[str, Chart] = {
    "replicas": Chart(
        title="HPA replicas", unit="replicas", source="prometheus", select=_scaling(HPA_SERIES)
    ),
    "jobs": Chart(
        title="Jobs running and job capacity",
        unit="jobs",
        source="prometheus",
        select=_scaling(JOB_SERIES),
    ),
    "cache-requests": Chart(
        title="Attic requests", unit="req/s", source="prometheus", select=_cache(CACHE_RATE, "rate")
    ),
    "cache-latency": Chart(
        title="Attic p99 latency",
        unit="ms",
        scale=1000.0,
        source="prometheus",
        select=_cache(CACHE_P99, "p99"),
        threshold=lambda state: state.cache.slo_p99_seconds if state.cache else None,
    ),
    "cache-errors": Chart(
        title="Attic 5xx ratio",
        unit="%",
        scale=100.0,
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
        values = {t: v * chart.scale for t, v in series.points}
        columns.append([values.get(t) for t in xs])
    threshold = chart.threshold(state)
    health = state.sources[chart.source]
    return {
        "name": name,
        "title": chart.title,
        "unit": chart.unit,
        "labels": [label for label, _ in picked],
        "data": columns,
        "threshold": None if threshold is None else threshold * chart.scale,
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
    """Share of the charted window an HPA ran at its maximum (the maximum of each moment
    when its series exists, else today's); None without a replica series."""
    current = state.scaling_series.get(f"hpa:{namespace}/{name}:current")
    if current is None or not current.points:
        return None
    recorded = state.scaling_series.get(f"hpa:{namespace}/{name}:max")
    maxima = dict(recorded.points) if recorded else {}
    at_max = sum(value >= maxima.get(t, maximum) for t, value in current.points)
    return at_max / len(current.points)
