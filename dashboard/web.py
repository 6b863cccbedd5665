"""The app: routes, the middleware around them, and a lifespan that starts the collectors.

Middleware, outermost first: security headers (on every response, errors included), access
log + latency metric, the deny-by-default gate. Everything the app talks to (stores, HTTP
clients, collectors, page routes) can be passed in, so tests run it without a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from dashboard.auth import Auth
from dashboard.collectors import Collector, default_collectors
from dashboard.gitlab_client import GitLabClient
from dashboard.model import SourceName
from dashboard.observability import AccessLog, MeteredFleetStore, Metrics
from dashboard.pages import page_routes, static_files
from dashboard.security import Gate, SecurityHeaders
from dashboard.session import Clock, SessionStore
from dashboard.settings import Settings
from dashboard.sse import EventHub
from dashboard.store import FleetStore
from dashboard.views import render_live
from dashboard.writes import WriteSide

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Clients:
    """The HTTP clients of the sign-in side: GitLab's OAuth endpoints and its REST API (with
    the user's token). Tests pass ones on an ``httpx.MockTransport`` or the fake GitLab."""

    oauth: httpx.AsyncClient
    gitlab: GitLabClient

    @classmethod
    def for_gitlab(cls, url: str, transport: httpx.AsyncBaseTransport | None = None) -> Clients:
        gitlab = GitLabClient(url, None, transport=transport)
        return cls(oauth=gitlab.http, gitlab=gitlab)

    async def aclose(self) -> None:
        await self.oauth.aclose()
        await self.gitlab.aclose()


def configured_sources(settings: Settings) -> tuple[SourceName, ...]:
    """GitLab and Kubernetes always (in-cluster by default); Prometheus only with a URL."""
    return (
        ("gitlab", "kubernetes", "prometheus")
        if settings.prometheus_url
        else (
            "gitlab",
            "kubernetes",
        )
    )


def _health(request: Request) -> Response:
    """Alive: answers without asking anything else."""
    return JSONResponse({"status": "ok"})


def _ready(request: Request) -> Response:
    """Ready: the config is loaded (else the process would not run) and every configured
    source of every store has answered once, ok or not."""
    stores: Mapping[str, FleetStore] = request.app.state.stores
    waiting = sorted(env for env, store in stores.items() if not store.ready())
    if waiting:
        return JSONResponse({"status": "starting", "waiting_for": waiting}, status_code=503)
    return JSONResponse({"status": "ready"})


def begin_shutdown(app: Starlette) -> None:
    """First step of a graceful stop, called from the signal handler: end the SSE streams so
    the server's wait for open connections finishes."""
    for hub in app.state.hubs:
        hub.shutdown()


def create_app(
    settings: Settings,
    *,
    stores: Mapping[str, FleetStore] | None = None,
    clients: Clients | None = None,
    collectors: Sequence[Collector] | None = None,
    pages: Sequence[BaseRoute] | None = None,
    metrics: Metrics | None = None,
    clock: Clock = time.time,
) -> Starlette:
    """The dashboard app for ``settings``: ``collectors`` (default: those the settings ask for,
    into the served environment's store) run as tasks while the app lives; ``pages`` (default:
    the read side's pages, API and SSE over ``stores``) need a session."""
    metrics = metrics or Metrics()
    if stores is None:
        stores = {
            settings.environment: MeteredFleetStore(
                metrics=metrics,
                environment=settings.environment,
                config=settings.environment_config,
                configured=configured_sources(settings),
            )
        }
    metrics.watch(stores)
    if collectors is None:
        collectors = default_collectors(settings, stores[settings.environment])
    owned = clients is None
    clients = clients or Clients.for_gitlab(settings.gitlab_url)
    sessions = SessionStore(
        key=settings.session_key,
        max_age=settings.session_max_age,
        idle=settings.session_idle,
        clock=clock,
    )
    auth = Auth(
        settings=settings, sessions=sessions, http=clients.oauth, gitlab=clients.gitlab, clock=clock
    )
    hubs = [
        EventHub(
            store=store,
            render=render_live,
            max_clients=settings.sse_max_clients,
            queue_size=settings.sse_queue,
            metrics=metrics,
        )
        for store in stores.values()
    ]
    # The default pages come with the write side (issue 18): drift, changes, pause/resume.
    writes = (
        WriteSide(settings=settings, stores=stores, gitlab=clients.gitlab, metrics=metrics)
        if pages is None
        else None
    )
    routes: list[BaseRoute] = [
        Route("/healthz", _health, methods=["GET"], name="healthz"),
        Route("/readyz", _ready, methods=["GET"], name="readyz"),
        *auth.routes(),
        *(page_routes(hubs=hubs, demo=settings.demo) if pages is None else pages),
        *(writes.routes() if writes else []),
        static_files(),
    ]
    collectors = [*collectors, *(writes.collectors() if writes else [])]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for hub in hubs:
            hub.start()
        tasks = [asyncio.create_task(collector()) for collector in collectors]
        try:
            yield
        finally:
            begin_shutdown(app)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if owned:
                await clients.aclose()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, gitlab_url=settings.gitlab_url),
            Middleware(AccessLog, routes=routes, metrics=metrics),
            Middleware(
                Gate,
                routes=routes,
                sessions=sessions,
                recheck=auth.current,
                public_url=settings.public_url,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.stores = stores
    app.state.metrics = metrics
    app.state.sessions = sessions
    app.state.auth = auth
    app.state.hubs = hubs
    app.state.writes = writes
    return app


def create_metrics_app(metrics: Metrics) -> Starlette:
    """The second listener's app: ``/metrics`` and nothing else (never exposed outside the
    cluster; Prometheus scrapes it)."""

    def exposition(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Starlette(routes=[Route("/metrics", exposition, methods=["GET"], name="metrics")])
