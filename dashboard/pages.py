"""The read side's routes: the pages, the JSON API and the SSE stream of each served
environment.

The environment in a URL is only a key into the served hubs (unknown: 404), a runner id only a
lookup in the store's snapshot and a chart name only a key into the allowlist; no path, query
or URL is built from request input. Handlers read ``request.state.session`` (set by the auth
middleware, which also refuses requests without one before they get here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard.series import CHARTS, chart_data
from dashboard.sse import EventHub, HubFullError
from dashboard.views import View, templates, view_of

NO_STORE = {"Cache-Control": "no-store"}


def _no_environment() -> Response:
    return JSONResponse({"error": "no such environment"}, 404)


def static_files() -> Mount:
    """``/static``: the app's own CSS/JS and the vendored libraries (public, by name)."""
    return Mount("/static", app=StaticFiles(packages=[("dashboard", "static")]), name="static")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def state_json(view: View) -> dict[str, Any]:
    """The state for scripts: everything the pages show, series left to the series API."""
    state = view.state
    cache = state.cache
    return {
        "environment": state.environment,
        "version": state.version,
        "updated_at": state.updated_at.isoformat(),
        "sources": {
            name: {**_json_value(health), "stale": health.stale}
            for name, health in state.sources.items()
        },
        "summary": _json_value(view.summary),
        "runners": _json_value(state.runners),
        "jobs": _json_value(state.jobs),
        "deployments": _json_value(state.deployments),
        "pods": _json_value(state.pods),
        "hpas": _json_value(state.hpas),
        "events": _json_value(state.events),
        "type_metrics": _json_value(state.type_metrics),
        "cache": None
        if cache is None
        else {k: v for k, v in _json_value(cache).items() if k != "series"},
        "charts": sorted(CHARTS),
    }


class Pages:
    """The handlers, over the hubs of the served environments (one per environment)."""

    def __init__(self, hubs: Iterable[EventHub], *, demo: bool) -> None:
        self.hubs: Mapping[str, EventHub] = {hub.store.environment: hub for hub in hubs}
        self.demo = demo

    def hub(self, request: Request) -> EventHub | None:
        """The hub of the URL's environment (None: not served here)."""
        return self.hubs.get(request.path_params["env"])

    def page(
        self,
        request: Request,
        template: str,
        *,
        view: View | None = None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        if view is None:
            hub = self.hub(request)
            if hub is None:
                return PlainTextResponse("No such environment.", 404)
            view = view_of(hub.store)
        html = (
            templates()
            .get_template(template)
            .render(view=view, session=request.state.session, demo=self.demo, **context)
        )
        return HTMLResponse(html, status_code=status, headers=NO_STORE)

    async def home(self, request: Request) -> Response:
        first = next(iter(self.hubs))
        return RedirectResponse(f"/e/{first}/", status_code=302)

    async def fleet(self, request: Request) -> Response:
        return self.page(request, "fleet.html", title="Fleet", page="fleet")

    async def scaling(self, request: Request) -> Response:
        return self.page(request, "scaling.html", title="Scaling", page="scaling")

    async def cache(self, request: Request) -> Response:
        return self.page(request, "cache.html", title="Attic cache", page="cache")

    async def runner(self, request: Request) -> Response:
        hub = self.hub(request)
        if hub is None:
            return PlainTextResponse("No such environment.", 404)
        view = view_of(hub.store)
        runner = view.runner(request.path_params["runner_id"])
        if runner is None:
            return self.page(
                request,
                "not_found.html",
                view=view,
                status=404,
                title="Runner not found",
                page="fleet",
                message="GitLab does not list this runner for this environment (any more).",
            )
        title = f"Runner {runner.id}"
        return self.page(
            request, "runner.html", view=view, title=title, page="fleet", runner=runner
        )

    async def api_state(self, request: Request) -> Response:
        hub = self.hub(request)
        if hub is None:
            return _no_environment()
        return JSONResponse(state_json(view_of(hub.store)), headers=NO_STORE)

    async def api_series(self, request: Request) -> Response:
        hub = self.hub(request)
        name = request.path_params["name"]
        if hub is None:
            return _no_environment()
        if name not in CHARTS:
            return JSONResponse({"error": "unknown chart", "charts": sorted(CHARTS)}, 404)
        return JSONResponse(chart_data(hub.store.state(), name), headers=NO_STORE)

    async def api_events(self, request: Request) -> Response:
        hub = self.hub(request)
        if hub is None:
            return _no_environment()
        try:
            client = hub.connect(request.headers.get("last-event-id"))
        except HubFullError:
            return JSONResponse(
                {"error": "too many live viewers; retry later"},
                503,
                headers={"Retry-After": "15", **NO_STORE},
            )
        return StreamingResponse(
            hub.stream(client),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def page_routes(*, hubs: Iterable[EventHub], demo: bool = False) -> list[BaseRoute]:
    """The routes of the pages, JSON API and SSE stream (all need a session); the static
    files are :func:`static_files`, mounted separately because they are public."""
    pages = Pages(hubs, demo=demo)
    return [
        Route("/", pages.home, name="home"),
        Route("/e/{env}/", pages.fleet, name="fleet"),
        Route("/e/{env}/runners/{runner_id:int}", pages.runner, name="runner"),
        Route("/e/{env}/scaling", pages.scaling, name="scaling"),
        Route("/e/{env}/cache", pages.cache, name="cache"),
        Route("/api/e/{env}/state", pages.api_state, name="api_state"),
        Route("/api/e/{env}/series/{name}", pages.api_series, name="api_series"),
        Route("/api/e/{env}/events", pages.api_events, name="api_events"),
    ]
