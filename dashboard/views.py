"""Rendering: the Jinja environment (autoescaped) and the live panels as HTML fragments.

A page embeds the same fragment templates that the SSE hub sends, so what a browser sees on
load and after a live update is one rendering path. Each fragment names the store panels it
shows and the sources it depends on; a failing or unconfigured source is written into every
fragment that depends on it, with its last good data marked stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from dashboard.model import (
    SOURCES,
    Deployment,
    EnvironmentState,
    Event,
    Hpa,
    Job,
    Pod,
    Runner,
    SourceHealth,
    TypeSummary,
)
from dashboard.series import CHARTS, time_at_max
from dashboard.store import FleetStore

SOURCE_LABELS = {"gitlab": "GitLab", "kubernetes": "Kubernetes", "prometheus": "Prometheus"}
NOT_CONFIGURED = {
    "gitlab": "GitLab is not configured",
    "kubernetes": "Kubernetes is not configured",
    "prometheus": "Prometheus is not configured (DASHBOARD_PROMETHEUS_URL is not set)",
}
RECENT_JOBS = 20
RECENT_EVENTS = 25


@dataclass(frozen=True, kw_only=True)
class Fragment:
    """A live panel: the store panels that change it and the sources its data comes from."""

    panels: frozenset[str]
    sources: tuple[str, ...]


FRAGMENTS: dict[str, Fragment] = {
    "sources": Fragment(panels=frozenset({"sources"}), sources=SOURCES),
    "fleet": Fragment(
        panels=frozenset({"runners", "jobs", "workloads", "metrics"}), sources=SOURCES
    ),
    "runners": Fragment(panels=frozenset({"runners"}), sources=("gitlab",)),
    "workloads": Fragment(panels=frozenset({"workloads"}), sources=("kubernetes",)),
    "jobs": Fragment(panels=frozenset({"jobs"}), sources=("gitlab",)),
    "events": Fragment(panels=frozenset({"events"}), sources=("kubernetes",)),
    "scaling": Fragment(
        panels=frozenset({"workloads", "scaling"}), sources=("kubernetes", "prometheus")
    ),
    "cache": Fragment(panels=frozenset({"cache"}), sources=("prometheus",)),
}


def _ago(moment: datetime | None, now: datetime) -> str:
    """``42 s ago``, ``3 min ago``, ``2 h 5 min ago``: seconds only while they matter
    (dashboard.js recomputes the same text as time passes)."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 5:
        return "just now"
    return f"{duration(seconds if seconds < 60 else seconds - seconds % 60)} ago"


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 4 min``, ``3 d 2 h``; an em dash for no value."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if whole >= size:
            rest = (whole % size) // sub_size
            return f"{whole // size} {unit}" + (f" {rest} {sub}" if rest else "")
    if whole >= 60:
        return f"{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "")
    return f"{whole} s"


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"


@dataclass(frozen=True, kw_only=True)
class SourceNote:
    """What a panel says about one of its sources that is not simply fine."""

    source: str
    label: str
    kind: str  # "failing" | "pending" | "not-configured"
    health: SourceHealth


@dataclass(frozen=True, kw_only=True)
class View:
    """One environment's state as the templates read it, taken at ``now``."""

    environment: str
    state: EnvironmentState
    summary: tuple[TypeSummary, ...]
    now: datetime

    def notes(self, sources: Iterable[str]) -> list[SourceNote]:
        found = []
        for name in sources:
            health = self.state.sources[name]
            if health.ok:
                continue
            if not health.configured:
                kind = "not-configured"
            elif health.failing_since is None:
                kind = "pending"
            else:
                kind = "failing"
            found.append(
                SourceNote(source=name, label=SOURCE_LABELS[name], kind=kind, health=health)
            )
        return found

    def stale(self, sources: Iterable[str]) -> bool:
        """A source this panel needs is failing (its data, if any, is old)."""
        return any(note.kind == "failing" for note in self.notes(sources))

    def stale_label(self, sources: Iterable[str]) -> str:
        """``stale`` when a failing source left data on screen, else ``no data``."""
        failing = [note for note in self.notes(sources) if note.kind == "failing"]
        return "stale" if any(note.health.stale for note in failing) else "no data"

    def has_data(self, source: str) -> bool:
        """The source answered at least once (its figures mean something, even if old)."""
        return self.state.sources[source].last_success is not None

    def ago(self, moment: datetime | None) -> str:
        return _ago(moment, self.now)

    def runner(self, runner_id: int) -> Runner | None:
        return next((r for r in self.state.runners if r.id == runner_id), None)

    @property
    def runners(self) -> list[Runner]:
        """Typed runners first (by type), then the rest; by description within."""
        return sorted(
            self.state.runners, key=lambda r: (r.runner_type is None, r.runner_type or "", r.id)
        )

    def jobs(self, runner_id: int | None = None) -> list[Job]:
        jobs = [j for j in self.state.jobs if runner_id is None or j.runner_id == runner_id]
        jobs.sort(key=lambda j: (j.created_at or self.now, j.id), reverse=True)
        return jobs[:RECENT_JOBS]

    def managers(self, runner_type: str | None) -> list[Pod]:
        return [
            p
            for p in self.state.pods
            if p.component == "runner-manager"
            and (runner_type is None or p.runner_type == runner_type)
        ]

    def deployments(self) -> list[Deployment]:
        return sorted(self.state.deployments, key=lambda d: (d.namespace, d.name))

    def job_pods(self) -> list[tuple[str, str, int]]:
        """(namespace, phase, count) of CI job pods."""
        counts: dict[tuple[str, str], int] = {}
        for pod in self.state.pods:
            if pod.component == "ci-job":
                key = (pod.namespace, pod.phase)
                counts[key] = counts.get(key, 0) + 1
        return [(ns, phase, n) for (ns, phase), n in sorted(counts.items())]

    def hpas(self) -> list[Hpa]:
        return sorted(self.state.hpas, key=lambda h: (h.namespace, h.name))

    def time_at_max(self, hpa: Hpa) -> float | None:
        return time_at_max(self.state, hpa.namespace, hpa.name, hpa.max)

    @property
    def events(self) -> list[Event]:
        return sorted(self.state.events, key=lambda e: e.last_seen, reverse=True)[:RECENT_EVENTS]


def view_of(store: FleetStore, now: datetime | None = None) -> View:
    return View(
        environment=store.environment,
        state=store.state(),
        summary=store.summary(),
        now=now or datetime.now(UTC),
    )


@cache
def templates() -> Environment:
    """The package's templates, HTML autoescaped (also for strings rendered from code)."""
    environment = Environment(
        loader=PackageLoader("dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(duration=duration, utc=utc, iso=iso, percent=percent, number=number)
    environment.globals.update(
        FRAGMENTS=FRAGMENTS,
        NOT_CONFIGURED=NOT_CONFIGURED,
        SOURCE_LABELS=SOURCE_LABELS,
        CHARTS=CHARTS,
    )
    return environment


def render_fragment(name: str, view: View) -> str:
    return templates().get_template(f"fragments/{name}.html").render(view=view, name=name)


def render_live(store: FleetStore, panels: frozenset[str] | None) -> list[tuple[str, str]]:
    """The fragments to resend after ``panels`` changed (all of them for a snapshot or when
    a source's health changed, since every fragment shows its sources' health)."""
    view = view_of(store)
    names = [
        name
        for name, fragment in FRAGMENTS.items()
        if panels is None or "sources" in panels or fragment.panels & panels
    ]
    return [(name, render_fragment(name, view)) for name in names]
