"""FleetStore: the one copy of an environment's state that every viewer reads.

Collectors replace parts of it; each visible change bumps the version and tells subscribers
which panels changed, so the cost of collecting never grows with the number of browsers. A
failing source keeps its last data: the pages show it as stale, never anything made up.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from config_model.organization import OrganizationConfig
from config_model.wiring import runner_description
from dashboard.model import (
    SOURCES,
    EnvironmentState,
    Panel,
    SourceHealth,
    SourceName,
    TypeSummary,
)

log = logging.getLogger(__name__)

Subscriber = Callable[[int, frozenset[str]], None]

# Which state parts each source may write, and the panel each part feeds.
SOURCE_PARTS: dict[SourceName, frozenset[str]] = {
    "gitlab": frozenset({"runners", "jobs"}),
    "kubernetes": frozenset({"deployments", "pods", "hpas", "events"}),
    "prometheus": frozenset({"type_metrics", "scaling_series", "cache"}),
}
PART_PANELS: dict[str, Panel] = {
    "runners": "runners",
    "jobs": "jobs",
    "deployments": "workloads",
    "pods": "workloads",
    "hpas": "workloads",
    "events": "events",
    "type_metrics": "metrics",
    "scaling_series": "scaling",
    "cache": "cache",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ready(state: EnvironmentState, runner_type: str) -> tuple[int, int]:
    deployments = [d for d in state.deployments if d.runner_type == runner_type]
    return sum(d.ready for d in deployments), sum(d.replicas for d in deployments)


class FleetStore:
    """State of one environment, its version, and who to tell when it changes."""

    def __init__(
        self,
        *,
        environment: str,
        config: OrganizationConfig,
        clock: Callable[[], datetime] = _now,
        configured: Collection[SourceName] = SOURCES,
    ) -> None:
        self.environment = environment
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._answered: set[str] = set()
        self._configured = frozenset(configured)
        self._descriptions = {
            runner_description(config, environment, name): name
            for name, spec in config.runners.types.items()
            if spec.enabled
        }
        self._state = EnvironmentState(
            environment=environment,
            runners=(),
            jobs=(),
            deployments=(),
            pods=(),
            hpas=(),
            events=(),
            type_metrics={},
            scaling_series={},
            cache=None,
            sources={
                name: SourceHealth(
                    name=name,
                    configured=name in self._configured,
                    ok=False,
                    failing_since=None,
                    last_error=None,
                    last_success=None,
                )
                for name in SOURCES
            },
            version=0,
            updated_at=clock(),
        )

    def runner_type_of(self, description: str) -> str | None:
        """The enabled runner type this config registers under ``description`` (exact)."""
        return self._descriptions.get(description)

    def state(self) -> EnvironmentState:
        """The current snapshot (immutable; cheap to hand out)."""
        return self._state

    def ready(self) -> bool:
        """Every configured source has answered once, ok or failed."""
        return self._configured <= self._answered

    def summary(self) -> tuple[TypeSummary, ...]:
        """One row per enabled runner type; Prometheus figures when there are, else what
        GitLab's jobs say."""
        state = self._state
        rows = []
        for name, spec in self.config.runners.types.items():
            if not spec.enabled:
                continue
            runners = [r for r in state.runners if r.runner_type == name]
            running = sum(r.running_jobs for r in runners)
            capacity = spec.concurrent * spec.replicas
            waits = [
                j.queued_duration
                for j in state.jobs
                if j.runner_type == name and j.queued_duration is not None
            ]
            metrics = state.type_metrics.get(name)
            p50 = metrics.queue_p50 if metrics else None
            p95 = metrics.queue_p95 if metrics else None
            saturation = metrics.saturation if metrics else None
            ready, desired = _ready(state, name)
            rows.append(
                TypeSummary(
                    runner_type=name,
                    enabled=True,
                    managers_ready=ready,
                    managers_desired=desired,
                    jobs_running=running,
                    capacity=capacity,
                    queue_p50=p50 if p50 is not None else _percentile(waits, 0.5),
                    queue_p95=p95 if p95 is not None else _percentile(waits, 0.95),
                    # A paused runner takes no job: online means able to work here.
                    online_runners=sum(r.status == "online" and not r.paused for r in runners),
                    total_runners=len(runners),
                    saturation=saturation if saturation is not None else running / capacity,
                )
            )
        return tuple(rows)

    def update(self, source: SourceName, **parts: Any) -> None:
        """Replace ``parts`` of the state with what ``source`` collected and mark it ok.

        A poll that changed nothing refreshes the source's last success without a new
        version, so viewers are only told about what they can see change.
        """
        unknown = set(parts) - SOURCE_PARTS[source]
        if unknown:
            raise ValueError(f"{source} cannot write {', '.join(sorted(unknown))}")
        now = self._clock()
        with self._lock:
            state = self._state
            changed: set[str] = {
                PART_PANELS[key] for key, value in parts.items() if getattr(state, key) != value
            }
            health = state.sources[source]
            if not health.ok or health.last_error is not None:
                changed.add("sources")
            sources = {
                **state.sources,
                source: dataclasses.replace(
                    health, ok=True, failing_since=None, last_error=None, last_success=now
                ),
            }
            self._answered.add(source)
            self._state = dataclasses.replace(
                state,
                **parts,
                sources=sources,
                version=state.version + 1 if changed else state.version,
                updated_at=now if changed else state.updated_at,
            )
            version = self._state.version
        if changed:
            self._notify(version, frozenset(changed))

    def failed(self, source: SourceName, error: str) -> None:
        """Mark ``source`` failing with ``error``; its last data stays, shown as stale."""
        now = self._clock()
        with self._lock:
            state = self._state
            health = state.sources[source]
            self._answered.add(source)
            failing = dataclasses.replace(
                health, ok=False, failing_since=health.failing_since or now, last_error=error
            )
            if failing == health:
                return
            self._state = dataclasses.replace(
                state,
                sources={**state.sources, source: failing},
                version=state.version + 1,
                updated_at=now,
            )
            version = self._state.version
        self._notify(version, frozenset({"sources"}))

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(version, changed_panels)`` after each change; returns the
        unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, version: int, panels: frozenset[str]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(version, panels)
            except Exception:
                # One broken viewer must not stop the collector or the other viewers.
                log.exception("dashboard subscriber failed")
