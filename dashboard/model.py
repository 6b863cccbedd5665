"""The fleet state the dashboard shows: plain frozen records that the collectors build and the
pages read, so a snapshot can be handed to any number of viewers without copying."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

SourceName = Literal["gitlab", "kubernetes", "prometheus"]
SOURCES: tuple[SourceName, ...] = ("gitlab", "kubernetes", "prometheus")
RunnerStatus = Literal["online", "offline", "stale", "never_contacted"]
Panel = Literal["runners", "jobs", "workloads", "events", "metrics", "scaling", "cache", "sources"]


@dataclass(frozen=True, kw_only=True)
class SourceHealth:
    """Whether a source answers; a failing source keeps its last good data, shown as stale."""

    name: SourceName
    configured: bool
    ok: bool
    failing_since: datetime | None
    last_error: str | None
    last_success: datetime | None

    @property
    def stale(self) -> bool:
        """Failing, but with data from an earlier success on screen."""
        return not self.ok and self.last_success is not None

    def age(self, now: datetime) -> timedelta | None:
        """How old the data on screen is (None before the first success)."""
        return None if self.last_success is None else now - self.last_success


@dataclass(frozen=True, kw_only=True)
class Runner:
    """A runner as GitLab reports it; ``runner_type`` is set when its description is the one
    this config registers for a type."""

    id: int
    description: str
    runner_type: str | None
    status: RunnerStatus
    paused: bool
    tags: tuple[str, ...]
    version: str | None
    contacted_at: datetime | None
    running_jobs: int
    ip_address: str | None
    # From GET /runners/:id, for drift (None: not reported).
    run_untagged: bool | None = None
    locked: bool | None = None
    access_level: str | None = None
    maximum_timeout: int | None = None


@dataclass(frozen=True, kw_only=True)
class Job:
    """A CI job of one of the runners (running or recent), with how long it waited."""

    id: int
    runner_id: int | None
    runner_type: str | None
    status: str
    name: str
    queued_duration: float | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    web_url: str


@dataclass(frozen=True, kw_only=True)
class Deployment:
    namespace: str
    name: str
    runner_type: str | None
    replicas: int
    ready: int
    available: int
    updated: int
    # The Deployment's own metadata and its pod template's container images, for drift: the
    # chart's ``chart`` label and the stacks' ``attic-iac.io/desired`` annotation.
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Pod:
    """A pod of a watched namespace; ``component`` is ``runner-manager``, ``ci-job`` or the
    pod's own ``app.kubernetes.io/component`` value."""

    namespace: str
    name: str
    runner_type: str | None
    component: str | None
    phase: str
    ready: bool
    node: str | None
    started_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Hpa:
    namespace: str
    name: str
    current: int
    desired: int
    min: int
    max: int
    target: str


@dataclass(frozen=True, kw_only=True)
class Event:
    namespace: str
    kind: str
    name: str
    reason: str
    message: str
    count: int
    last_seen: datetime


@dataclass(frozen=True, kw_only=True)
class TypeMetrics:
    """Prometheus figures of one runner type (None: no series for it)."""

    runner_type: str
    running: float | None
    capacity: float | None
    saturation: float | None
    queue_p50: float | None
    queue_p95: float | None
    failures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Series:
    """A time series for a chart: (unix seconds, value) points."""

    name: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, kw_only=True)
class CacheMetrics:
    """Attic traffic measured at the ingress controller, against the config's SLO."""

    request_rate: float | None
    p99_seconds: float | None
    error_ratio: float | None
    slo_p99_seconds: float
    slo_error_ratio: float
    series: dict[str, Series] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TypeSummary:
    """One row of the fleet page: a runner type at a glance."""

    runner_type: str
    enabled: bool
    managers_ready: int
    managers_desired: int
    jobs_running: int
    capacity: int
    queue_p50: float | None
    queue_p95: float | None
    online_runners: int
    total_runners: int
    saturation: float | None


@dataclass(frozen=True, kw_only=True)
class EnvironmentState:
    """Everything known about one environment; ``version`` grows with every visible change."""

    environment: str
    runners: tuple[Runner, ...]
    jobs: tuple[Job, ...]
    deployments: tuple[Deployment, ...]
    pods: tuple[Pod, ...]
    hpas: tuple[Hpa, ...]
    events: tuple[Event, ...]
    type_metrics: dict[str, TypeMetrics]
    scaling_series: dict[str, Series]
    cache: CacheMetrics | None
    sources: dict[str, SourceHealth]
    version: int
    updated_at: datetime
