"""The dashboard's pages without the auth stack: a Starlette app of ``page_routes`` behind a
stub middleware that puts a session in ``request.state``, and a filled FleetStore."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from config_model.organization import OrganizationConfig
from dashboard.model import (
    CacheMetrics,
    Deployment,
    Event,
    Hpa,
    Job,
    Pod,
    Runner,
    Series,
    TypeMetrics,
)
from dashboard.pages import page_routes, static_files
from dashboard.sse import EventHub
from dashboard.store import FleetStore
from dashboard.views import render_live

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True, kw_only=True)
class StubSession:
    user_id: int = 7
    username: str = "alice"
    role: str = "viewer"
    csrf_token: str = "csrf-token-value"


class StubSessionMiddleware:
    """Test only: every request is signed in as ``session``."""

    def __init__(self, app: ASGIApp, session: StubSession) -> None:
        self.app = app
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["session"] = self.session
        await self.app(scope, receive, send)


def ui_app(hubs: list[EventHub], *, demo: bool = False, session: StubSession | None = None):
    app = Starlette(routes=[*page_routes(hubs=hubs, demo=demo), static_files()])
    app.add_middleware(StubSessionMiddleware, session=session or StubSession())
    return app


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def hub_for(store: FleetStore, **kwargs: Any) -> EventHub:
    options: dict[str, Any] = {"max_clients": 10, "queue_size": 8, **kwargs}
    return EventHub(store=store, render=render_live, **options)


def runner(id_: int, runner_type: str | None = "docker", **changes: Any) -> Runner:
    fields: dict[str, Any] = {
        "id": id_,
        "description": f"acme dev {runner_type}",
        "runner_type": runner_type,
        "status": "online",
        "paused": False,
        "tags": ("docker", "linux"),
        "version": "18.6.1",
        "contacted_at": T0 - timedelta(seconds=20),
        "running_jobs": 3,
        "ip_address": "10.0.0.5",
    }
    fields.update(changes)
    return Runner(**fields)


def job(id_: int, runner_id: int, queued: float, status: str = "success") -> Job:
    return Job(
        id=id_,
        runner_id=runner_id,
        runner_type="docker",
        status=status,
        name=f"build {id_}",
        queued_duration=queued,
        created_at=T0 - timedelta(minutes=id_),
        started_at=T0 - timedelta(minutes=id_) + timedelta(seconds=queued),
        finished_at=None,
        web_url=f"https://gitlab.example.com/acme/app/-/jobs/{id_}",
    )


def fill(store: FleetStore) -> None:
    """A small healthy fleet from all three sources."""
    store.update(
        "gitlab",
        runners=(runner(1), runner(2, "nix", description="acme dev nix", tags=("nix",))),
        jobs=tuple(job(i, 1, queued=float(i * 3)) for i in range(1, 6)),
    )
    store.update(
        "kubernetes",
        deployments=(
            Deployment(
                namespace="gitlab-runners",
                name="gitlab-runner-docker",
                runner_type="docker",
                replicas=1,
                ready=1,
                available=1,
                updated=1,
            ),
        ),
        pods=(
            Pod(
                namespace="gitlab-runners",
                name="gitlab-runner-docker-abc",
                runner_type="docker",
                component="runner-manager",
                phase="Running",
                ready=True,
                node="node-1",
                started_at=T0 - timedelta(hours=3),
            ),
            Pod(
                namespace="gitlab-runner-jobs",
                name="runner-x-project-1-concurrent-0",
                runner_type="docker",
                component="ci-job",
                phase="Running",
                ready=True,
                node="node-2",
                started_at=T0,
            ),
        ),
        hpas=(
            Hpa(
                namespace="attic",
                name="attic-api",
                current=3,
                desired=3,
                min=1,
                max=3,
                target="cpu 80%",
            ),
        ),
        events=(
            Event(
                namespace="gitlab-runner-jobs",
                kind="Pod",
                name="runner-x-project-1-concurrent-0",
                reason="FailedScheduling",
                message="0/3 nodes are available: 3 Insufficient memory.",
                count=4,
                last_seen=T0 - timedelta(minutes=2),
            ),
        ),
    )
    xs = [T0.timestamp() - 60 * i for i in range(10, 0, -1)]
    store.update(
        "prometheus",
        type_metrics={
            "docker": TypeMetrics(
                runner_type="docker",
                running=3.0,
                capacity=10.0,
                saturation=0.3,
                queue_p50=4.0,
                queue_p95=42.0,
            )
        },
        scaling_series={
            "hpa:attic/attic-api:current": Series(
                name="hpa:attic/attic-api:current",
                points=tuple((x, 3.0 if i >= 5 else 2.0) for i, x in enumerate(xs)),
            ),
        },
        cache=CacheMetrics(
            request_rate=12.5,
            p99_seconds=0.8,
            error_ratio=0.0002,
            slo_p99_seconds=0.5,
            slo_error_ratio=0.001,
            series={
                "requests": Series(name="requests", points=((xs[0], 10.0),)),
                "p99": Series(name="p99", points=((xs[0], 0.8),)),
            },
        ),
    )


def new_store(config: OrganizationConfig, clock: Clock, **kwargs: Any) -> FleetStore:
    return FleetStore(environment="dev", config=config, clock=clock, **kwargs)


class Markup(HTMLParser):
    """What a CSP ``default-src 'self'`` page must not have: inline scripts, styles and event
    handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in names
            self.inline_scripts += "src" not in names
        if tag == "style":
            self.style_elements += 1
        if "style" in names:
            self.style_attributes.append(tag)
        self.handlers += [name for name in names if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def markup_of(html: str) -> Markup:
    parser = Markup()
    parser.feed(html)
    return parser


@dataclass(frozen=True, kw_only=True)
class SseEvent:
    event: str | None
    data: str
    id: str | None


def parse_sse(text: str) -> list[SseEvent]:
    """The messages of an SSE text (comments and ``retry`` skipped)."""
    found = []
    for block in text.split("\n\n"):
        event, data, event_id = None, [], None
        for line in block.split("\n"):
            field, _, value = line.partition(": ") if ": " in line else (line.rstrip(":"), "", "")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
        if event is not None or data or event_id is not None:
            found.append(SseEvent(event=event, data="\n".join(data), id=event_id))
    return found


def loopback_socket() -> socket.socket:
    """A listening-ready socket on a free 127.0.0.1 port (bind before the app knows its URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(
    app, *, sock: socket.socket | None = None, lifespan: Literal["on", "off"] = "off", shutdown=None
) -> Iterator[str]:
    """``app`` on a real uvicorn listener on 127.0.0.1, in a thread; ``shutdown`` runs first
    when stopping (as the app's signal handler would: it ends the SSE streams)."""
    sock = sock or loopback_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if shutdown is not None:
            shutdown()
        server.should_exit = True
        thread.join(15)
        sock.close()
