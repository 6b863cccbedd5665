"""What the dashboard tells its operators about itself: Prometheus metrics (the names the stack's
PrometheusRule uses), JSON logs with anything token-like redacted, one access log line per
request labelled with the route template (never the raw path: bounded cardinality, and no
OAuth ``code`` or ``state`` in a log).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.model import SourceName
from dashboard.security import matched_route
from dashboard.store import FleetStore

PREFIX = "attic_iac_dashboard"
REDACTED = "[redacted]"

# Things that look like credentials wherever they appear in a message: header values, form,
# query and JSON fields, GitLab token prefixes, Fernet tokens (our cookies), long hex (GitLab
# OAuth tokens). The name stays, so a reader still sees what was there.
_PATTERNS = (
    (
        re.compile(r'(?i)\b(authorization|cookie|set-cookie|private-token)("?\s*[:=]\s*"?)[^"\n]+'),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|client_secret|code_verifier|token"
            r'|password|secret)("?\s*[=:]\s*"?)[^&\s",;]+'
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r'\b(code|state)=[^&\s"]+'), rf"\1={REDACTED}"),
    (re.compile(r'(__Host-dashboard[\w-]*=)[^;\s"]*'), rf"\1{REDACTED}"),
    (re.compile(r"\b(glpat|gloas|glrt|glptt|gldt|glsoat|glcbt|glimt)-[A-Za-z0-9_.-]+"), REDACTED),
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"), REDACTED),
    (re.compile(r"\b[0-9a-fA-F]{40,}\b"), REDACTED),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and anything credential-shaped replaced."""
    for value in secrets:
        if len(value) >= 8:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Record attributes that are not extras (uvicorn adds an ANSI-coloured copy of its message).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, extras), redacted last, so
    nothing a handler adds (a traceback, an exception message) escapes redaction."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in entry.items():
            if isinstance(value, str):
                entry[key] = redact(value, self.secrets)
        # Again on the line: a secret may only show once JSON-escaped.
        return redact(json.dumps(entry, ensure_ascii=False), self.secrets)


def configure_logging(level: str, secrets: Sequence[str] = ()) -> None:
    """JSON lines on stdout for this process's loggers, uvicorn's included."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per outgoing request at INFO would drown the rest (polls every 30 s).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Metrics:
    """The dashboard's metrics in a registry of its own (tests stay isolated; ``/metrics``
    shows only these)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency by route template",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            f"{PREFIX}_sse_clients", "Open SSE streams", registry=self.registry
        )
        self.sse_dropped = Counter(
            f"{PREFIX}_sse_dropped", "SSE clients dropped for being slow", registry=self.registry
        )
        self.source_errors = Counter(
            f"{PREFIX}_source_errors",
            "Failed polls or watches per source",
            ("source",),
            registry=self.registry,
        )
        self.drift_items = Gauge(
            f"{PREFIX}_drift_items",
            "Drift items per environment and kind",
            ("environment", "kind"),
            registry=self.registry,
        )
        self.writes = Counter(
            f"{PREFIX}_writes",
            "Write actions by result",
            ("action", "result"),
            registry=self.registry,
        )
        self._sources = _SourceHealthCollector()
        self.registry.register(self._sources)

    def watch(self, stores: Mapping[str, FleetStore]) -> None:
        """Report these stores' source health (up, last success) at every scrape."""
        self._sources.stores = dict(stores)

    def source_failed(self, source: SourceName) -> None:
        self.source_errors.labels(source).inc()


class _SourceHealthCollector(Collector):
    """``source_up`` and ``source_last_success_timestamp_seconds`` read from the stores when
    scraped, so they are right for any store, however its collectors are wired."""

    def __init__(self) -> None:
        self.stores: dict[str, FleetStore] = {}

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(with_samples=True))

    def _families(self, *, with_samples: bool = False) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            f"{PREFIX}_source_up", "1 when the source answered last time", labels=["source"]
        )
        last = GaugeMetricFamily(
            f"{PREFIX}_source_last_success_timestamp_seconds",
            "Unix time of the source's last good answer",
            labels=["source"],
        )
        for store in self.stores.values() if with_samples else ():
            for name, health in store.state().sources.items():
                if not health.configured:
                    continue
                up.add_metric([name], 1.0 if health.ok else 0.0)
                if health.last_success is not None:
                    last.add_metric([name], health.last_success.timestamp())
        yield up
        yield last


class MeteredFleetStore(FleetStore):
    """A FleetStore that counts its sources' failures in ``attic_iac_dashboard_source_errors``
    (every failure: the store itself only notifies when something visible changes)."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    def failed(self, source: SourceName, error: str) -> None:
        self._metrics.source_failed(source)
        super().failed(source, error)


def route_template(route: BaseRoute | None) -> str:
    """The label for a request: its route's path template, ``/static/{path}`` for files, or
    ``unmatched``."""
    if route is None:
        return "unmatched"
    path = getattr(route, "path", None)
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    return path if isinstance(path, str) else "unmatched"


class AccessLog:
    """Times every request into the latency histogram and writes one access log line."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], metrics: Metrics) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self.log = logging.getLogger("dashboard.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = route_template(matched_route(self.routes, scope))
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.metrics.request_duration.labels(route, method, str(status)).observe(elapsed)
            session = scope.get("state", {}).get("session")
            self.log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "user": getattr(session, "username", None),
                },
            )
