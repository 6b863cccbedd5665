"""Drift: what ``organization.yaml`` on the config project's default branch asks of one
environment, field by field against what Kubernetes and GitLab report.

The desired side is the project's own loader and the functions the stacks build from
(``enabled_types``, ``job_namespace_of``, ``runner_description``, ``runner_tags``,
``runner_release_name``), so names cannot disagree. The chart version and the manager image
are pinned in the construct library, which the dashboard does not load: the stacks stamp them
on each manager Deployment (annotation :data:`DESIRED_ANNOTATION`), and drift compares that
stamp with the chart's own ``chart`` label and the image the Deployment runs. The stamp's
``concurrent`` and ``job_namespace`` are what was applied, compared with what the config asks
now, so a merged but unapplied change shows up until the pipeline applies it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from prometheus_client import Gauge

from config_model.loader import ConfigError, load_config_text
from config_model.organization import OrganizationConfig
from config_model.runners import job_namespace_of
from config_model.wiring import runner_description, runner_release_name, runner_tags
from dashboard.gitlab_client import GitLabClient, GitLabError
from dashboard.model import EnvironmentState, Runner

# Copies of constructs_lib constants (the dashboard may not import it); a test pins them.
DESIRED_ANNOTATION = "attic-iac.io/desired"
ATTIC_API_NAME = "attic"
# The gitlab-runner chart labels its Deployment ``chart: gitlab-runner-<version>``.
CHART_LABEL = "chart"

Kind = Literal["runner_manager", "gitlab_runner", "attic_api", "config"]
KINDS: tuple[Kind, ...] = ("runner_manager", "gitlab_runner", "attic_api", "config")


@dataclass(frozen=True, kw_only=True)
class DriftItem:
    environment: str
    kind: Kind
    object: str
    field: str
    desired: str
    live: str
    since: datetime


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """Drift of one environment; ``problems`` are the loader's messages when the desired
    config does not validate, ``unchecked`` what could not be compared and why."""

    environment: str
    revision: str | None
    items: tuple[DriftItem, ...]
    problems: tuple[str, ...]
    unchecked: tuple[str, ...]
    checked_at: datetime
    # A valid desired config was there to compare with (else "no items" means nothing).
    compared: bool

    @property
    def count(self) -> int:
        """Items plus one for an invalid desired config: the badge's number."""
        return len(self.items) + (1 if self.problems else 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "revision": self.revision,
            "checked_at": self.checked_at.isoformat(),
            "count": self.count,
            "compared": self.compared,
            "items": [
                {
                    "kind": i.kind,
                    "object": i.object,
                    "field": i.field,
                    "desired": i.desired,
                    "live": i.live,
                    "since": i.since.isoformat(),
                }
                for i in self.items
            ],
            "problems": list(self.problems),
            "unchecked": list(self.unchecked),
        }


@dataclass(frozen=True, kw_only=True)
class DesiredType:
    """One runner type as the config asks for it in one environment."""

    runner_type: str
    enabled: bool
    namespace: str
    release: str
    job_namespace: str
    concurrent: int
    replicas: int
    description: str
    tags: tuple[str, ...]
    run_untagged: bool
    locked: bool
    access_level: str
    paused: bool
    maximum_timeout: int


@dataclass(frozen=True, kw_only=True)
class DesiredFacts:
    environment: str
    registers_runners: bool
    types: tuple[DesiredType, ...]
    attic_namespace: str
    attic_min_replicas: int
    attic_max_replicas: int


def desired_facts(config: OrganizationConfig, environment: str) -> DesiredFacts:
    """The facts drift compares, from one environment's resolved config."""
    runners = config.runners
    types = tuple(
        DesiredType(
            runner_type=name,
            enabled=spec.enabled,
            namespace=runners.namespace,
            release=runner_release_name(name),
            job_namespace=job_namespace_of(runners, name),
            concurrent=spec.concurrent,
            replicas=spec.replicas,
            description=runner_description(config, environment, name),
            tags=tuple(runner_tags(config, name)),
            run_untagged=spec.gitlab.run_untagged,
            locked=spec.gitlab.locked,
            access_level=spec.gitlab.access_level,
            paused=spec.gitlab.paused,
            maximum_timeout=spec.gitlab.maximum_timeout,
        )
        for name, spec in runners.types.items()
    )
    return DesiredFacts(
        environment=environment,
        registers_runners=runners.token_source == "gitlab_api",
        types=types,
        attic_namespace=config.attic.namespace,
        attic_min_replicas=config.attic.api.min_replicas,
        attic_max_replicas=config.attic.api.max_replicas,
    )


@dataclass(frozen=True, kw_only=True)
class Desired:
    """``organization.yaml`` as one commit has it: its facts, or the loader's messages."""

    revision: str | None
    facts: DesiredFacts | None
    problems: tuple[str, ...] = ()


def load_desired(text: str, *, path: Path, environment: str, revision: str | None) -> Desired:
    """Validate ``text`` with the project's loader and resolve ``environment``; an invalid
    file is a :class:`Desired` with problems, never an exception."""
    try:
        loaded = load_config_text(text, path)
    except ConfigError as error:
        return Desired(revision=revision, facts=None, problems=tuple(error.lines))
    resolved = loaded.environments.get(environment)
    if resolved is None:
        known = ", ".join(loaded.environments)
        problem = f"environments: {environment!r} is not defined (defined: {known}) [{path}]"
        return Desired(revision=revision, facts=None, problems=(problem,))
    return Desired(revision=revision, facts=desired_facts(resolved.config, environment))


Finding = tuple[Kind, str, str, str, str]  # kind, object, field, desired, live


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _differs(kind: Kind, obj: str, field: str, desired: object, live: object) -> list[Finding]:
    return [] if desired == live else [(kind, obj, field, _show(desired), _show(live))]


def _managers(facts: DesiredFacts, state: EnvironmentState, notes: list[str]) -> list[Finding]:
    found: list[Finding] = []
    for want in facts.types:
        live = [d for d in state.deployments if d.runner_type == want.runner_type]
        obj = f"Deployment {want.namespace}/{want.release}"
        if not live:
            found += _differs("runner_manager", obj, "exists", want.enabled, False)
            continue
        for deployment in live:
            obj = f"Deployment {deployment.namespace}/{deployment.name}"
            if not want.enabled:
                found += _differs("runner_manager", obj, "exists", False, True)
                continue
            found += _differs(
                "runner_manager", obj, "namespace", want.namespace, deployment.namespace
            )
            found += _differs("runner_manager", obj, "replicas", want.replicas, deployment.replicas)
            stamp = _stamp(deployment.annotations.get(DESIRED_ANNOTATION))
            if stamp is None:
                notes.append(
                    f"{obj}: no valid {DESIRED_ANNOTATION} annotation (applied before the stacks "
                    "stamped it): chart, image, concurrent and job namespace not compared"
                )
                continue
            found += _differs(
                "runner_manager", obj, "concurrent", want.concurrent, stamp.get("concurrent")
            )
            found += _differs(
                "runner_manager",
                obj,
                "job_namespace",
                want.job_namespace,
                stamp.get("job_namespace"),
            )
            chart = deployment.labels.get(CHART_LABEL)
            if chart is None:
                notes.append(
                    f"{obj}: no {CHART_LABEL!r} label reported: chart version not compared"
                )
            else:
                found += _differs("runner_manager", obj, "chart", stamp.get("chart"), chart)
            if not deployment.images:
                notes.append(f"{obj}: no container image reported: image not compared")
            elif stamp.get("image") not in deployment.images:
                found += _differs(
                    "runner_manager", obj, "image", stamp.get("image"), deployment.images
                )
    return found


def _stamp(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _runners(facts: DesiredFacts, state: EnvironmentState) -> list[Finding]:
    found: list[Finding] = []
    for want in facts.types:
        live = [r for r in state.runners if r.description == want.description]
        if not live:
            if facts.registers_runners:
                obj = f"runner {want.description!r}"
                found += _differs("gitlab_runner", obj, "registered", want.enabled, False)
            continue
        for runner in live:
            obj = f"runner #{runner.id} {want.description!r}"
            if not want.enabled:
                found += _differs("gitlab_runner", obj, "registered", False, True)
                continue
            found += _runner_fields(want, runner, obj)
    return found


def _runner_fields(want: DesiredType, runner: Runner, obj: str) -> list[Finding]:
    found = _differs("gitlab_runner", obj, "tags", sorted(want.tags), sorted(runner.tags))
    found += _differs("gitlab_runner", obj, "paused", want.paused, runner.paused)
    reported = {
        "run_untagged": (want.run_untagged, runner.run_untagged),
        "locked": (want.locked, runner.locked),
        "access_level": (want.access_level, runner.access_level),
        "maximum_timeout": (want.maximum_timeout, runner.maximum_timeout),
    }
    for field, (desired, live) in reported.items():
        if live is not None:
            found += _differs("gitlab_runner", obj, field, desired, live)
    return found


def _attic_api(facts: DesiredFacts, state: EnvironmentState) -> list[Finding]:
    ns = facts.attic_namespace
    obj = f"HorizontalPodAutoscaler {ns}/{ATTIC_API_NAME}"
    hpa = next((h for h in state.hpas if h.namespace == ns and h.name == ATTIC_API_NAME), None)
    if hpa is None:
        return _differs("attic_api", obj, "exists", True, False)
    found = _differs("attic_api", obj, "min_replicas", facts.attic_min_replicas, hpa.min)
    return found + _differs("attic_api", obj, "max_replicas", facts.attic_max_replicas, hpa.max)


def compare(facts: DesiredFacts, state: EnvironmentState) -> tuple[list[Finding], list[str]]:
    """Findings, and notes on what was not compared: a source with no data yet is skipped
    (never treated as "everything missing"); a failing one is compared with its last data."""
    found: list[Finding] = []
    notes: list[str] = []
    for source in ("kubernetes", "gitlab"):
        health = state.sources.get(source)
        if health is None or health.last_success is None:
            notes.append(f"{source}: no data yet, its objects are not compared")
            continue
        if not health.ok:
            notes.append(
                f"{source}: failing since {health.failing_since}: compared with older data"
            )
        if source == "kubernetes":
            found += _managers(facts, state, notes) + _attic_api(facts, state)
        else:
            found += _runners(facts, state)
    return found, notes


def _now() -> datetime:
    return datetime.now(UTC)


class DriftMonitor:
    """Drift of one environment over time: the desired config as last fetched, since when each
    item has drifted, and the ``attic_iac_dashboard_drift_items{environment,kind}`` gauge (kind
    ``config``: 1 when the desired config does not validate). :meth:`report` is cheap to call
    per request: it recomputes only when the fleet state or the desired config changed."""

    def __init__(
        self, *, environment: str, gauge: Gauge, clock: Callable[[], datetime] = _now
    ) -> None:
        self.environment = environment
        self._gauge = gauge
        self._clock = clock
        self._desired: Desired | None = None
        self._desired_error: str | None = None
        self._generation = 0
        self._since: dict[tuple[str, str, str], datetime] = {}
        self._cache: tuple[object, DriftReport] | None = None

    @property
    def desired(self) -> Desired | None:
        return self._desired

    @property
    def desired_error(self) -> str | None:
        return self._desired_error

    def set_desired(self, desired: Desired) -> None:
        self._desired, self._desired_error = desired, None
        self._generation += 1

    def desired_failed(self, error: str) -> None:
        """The config project could not be read: keep the last desired config, say so."""
        self._desired_error = error
        self._generation += 1

    def report(self, state: EnvironmentState) -> DriftReport:
        key = (state.version, state.updated_at, self._generation)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        report = self._compute(state)
        self._cache = (key, report)
        counts = dict.fromkeys(KINDS, 0)
        for item in report.items:
            counts[item.kind] += 1
        counts["config"] = 1 if report.problems else 0
        for kind, count in counts.items():
            self._gauge.labels(environment=self.environment, kind=kind).set(count)
        return report

    def _compute(self, state: EnvironmentState) -> DriftReport:
        now = self._clock()
        desired = self._desired
        notes = [f"config project: {self._desired_error}"] if self._desired_error else []
        found: list[Finding] = []
        if desired is None:
            notes.append("the desired config has not been read yet")
        elif desired.facts is not None:
            found, more = compare(desired.facts, state)
            notes += more
        keys = {(kind, obj, field) for kind, obj, field, _, _ in found}
        self._since = {k: v for k, v in self._since.items() if k in keys}
        items = []
        for kind, obj, field, want, live in found:
            since = self._since.setdefault((kind, obj, field), now)
            items.append(
                DriftItem(
                    environment=self.environment,
                    kind=kind,
                    object=obj,
                    field=field,
                    desired=want,
                    live=live,
                    since=since,
                )
            )
        return DriftReport(
            environment=self.environment,
            compared=desired is not None and desired.facts is not None,
            revision=desired.revision if desired else None,
            items=tuple(items),
            problems=desired.problems if desired else (),
            unchecked=tuple(notes),
            checked_at=now,
        )


async def run_desired(
    monitor: DriftMonitor,
    client: GitLabClient,
    *,
    project: str,
    path: str,
    branch: str,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Read ``path`` on ``branch`` of the config project every ``interval`` seconds (with the
    dashboard's read token) and re-validate it whenever its content changes."""
    blob: str | None = None
    while True:
        try:
            found = await client.file(project, path, ref=branch)
        except GitLabError as error:
            monitor.desired_failed(error.message)
        else:
            stale = monitor.desired is None or monitor.desired_error is not None
            if found.blob_id != blob or stale:
                blob = found.blob_id
                desired = load_desired(
                    found.content,
                    path=Path(path),
                    environment=monitor.environment,
                    revision=found.last_commit_id,
                )
                monitor.set_desired(desired)
        await sleep(interval)


async def run_drift(
    monitor: DriftMonitor,
    state: Callable[[], EnvironmentState],
    *,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Recompute drift every ``interval`` seconds, so the gauge (and its alert) and each
    item's "since" move whether or not anyone has a page open."""
    while True:
        monitor.report(state())
        await sleep(interval)
