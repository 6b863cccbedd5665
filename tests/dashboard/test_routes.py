"""Every route of the real app is either deliberately public or needs a session (proved by
walking ``app.routes``), unknown environments are 404, health and readiness, and the metrics
listener."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from dashboard.security import PUBLIC_ROUTES
from dashboard.session import COOKIE
from dashboard.web import create_metrics_app
from tests.dashboard.web_support import AppClient, Clock, build_app, serving, signed_in

pytestmark = pytest.mark.anyio

PUBLIC_PATHS = {"/healthz", "/readyz", "/auth/login", "/auth/callback", "/static"}
SAMPLES = {"env": "dev", "runner_id": "1", "name": "hpa_replicas"}


@pytest.fixture
async def client(tmp_path: Path):
    app, _ = build_app(tmp_path, Clock(), real_pages=True, DASHBOARD_ROLE_RECHECK="12h")
    async with serving(app) as client:
        yield client


def _concrete(template: str) -> str:
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: SAMPLES.get(m.group(1), "x"), template)


def _requests(app) -> list[tuple[str | None, str, str, str]]:
    """(name, method, concrete path, template) for every route of the app."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append((route.name, "GET", f"{route.path}/css/dashboard.css", route.path))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                found.append((route.name, method, _concrete(route.path), route.path))
        else:
            raise AssertionError(f"a route of an unexpected kind: {route!r}")
    return found


async def test_every_route_but_the_public_ones_needs_a_session(client: AppClient):
    routes = _requests(client.app)
    public = {template for name, _, _, template in routes if name in PUBLIC_ROUTES}
    assert public == PUBLIC_PATHS
    checked = 0
    for name, method, path, _ in routes:
        response = await client.request(method, path)
        if name in PUBLIC_ROUTES:
            assert response.status_code not in (401, 403), (method, path)
            continue
        checked += 1
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
            if method != "HEAD":
                assert response.json() == {"error": "not signed in"}
        else:
            assert response.status_code == 302, (method, path)
            assert response.headers["location"].startswith("/auth/login")
    # pages, JSON, SSE and logout at least
    assert checked >= 9
    names = {name for name, *_ in routes}
    assert {"fleet", "runner", "scaling", "cache", "api_state", "api_series"} <= names
    assert {"api_events", "auth_logout", "home"} <= names


@pytest.mark.parametrize(
    "path", ["/nowhere", "/metrics", "/e/", "/api/", "/api/nowhere", "/static", "/auth"]
)
async def test_paths_no_route_matches_need_a_session_too(client: AppClient, path: str):
    response = await client.get(path)
    assert response.status_code == (401 if path.startswith("/api/") else 302)


async def test_signed_in_the_pages_answer(client: AppClient):
    _, value = signed_in(client.app)
    headers = {"cookie": f"{COOKIE}={value}"}
    for path in ("/e/dev/", "/e/dev/scaling", "/e/dev/cache", "/api/e/dev/state"):
        assert (await client.get(path, headers=headers)).status_code == 200, path
    home = await client.get("/", headers=headers)
    assert home.status_code in (302, 307)
    assert home.headers["location"].endswith("/e/dev/")


@pytest.mark.parametrize(
    "path",
    [
        "/e/qa/",
        "/e/prod/",  # in the config, but this instance serves dev
        "/e/..%2F..%2Fetc/",
        "/e/dev%00/",
        "/e/qa/scaling",
        "/e/qa/runners/1",
        "/api/e/qa/state",
        "/api/e/qa/series/hpa_replicas",
        "/api/e/qa/events",
        "/metrics",
    ],
)
async def test_unknown_environments_are_404(client: AppClient, path: str):
    _, value = signed_in(client.app)
    response = await client.get(path, headers={"cookie": f"{COOKIE}={value}"})
    assert response.status_code == 404, path


async def test_health_and_readiness(client: AppClient):
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    starting = await client.get("/readyz")
    assert starting.status_code == 503
    assert starting.json() == {"status": "starting", "waiting_for": ["dev"]}
    [store] = client.app.state.stores.values()
    store.update("gitlab", runners=(), jobs=())
    assert (await client.get("/readyz")).status_code == 503  # Kubernetes has not answered
    store.failed("kubernetes", "connection refused")
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readiness_waits_for_prometheus_only_when_configured(tmp_path: Path):
    app, _ = build_app(
        tmp_path, Clock(), real_pages=True, DASHBOARD_PROMETHEUS_URL="http://prometheus:9090"
    )
    async with serving(app) as client:
        [store] = app.state.stores.values()
        store.update("gitlab", runners=(), jobs=())
        store.update("kubernetes", pods=())
        assert (await client.get("/readyz")).status_code == 503
        store.update("prometheus", cache=None)
        assert (await client.get("/readyz")).status_code == 200


async def test_metrics_listener_serves_only_metrics(client: AppClient):
    _, value = signed_in(client.app)
    await client.get("/e/dev/runners/12", headers={"cookie": f"{COOKIE}={value}"})
    await client.get("/e/dev/")
    [store] = client.app.state.stores.values()
    store.update("gitlab", runners=(), jobs=())
    store.failed("kubernetes", "watch failed")
    store.failed("kubernetes", "watch failed")
    metrics_app = create_metrics_app(client.app.state.metrics)
    async with AppClient(metrics_app) as scraper:
        text = (await scraper.get("/metrics")).text
        assert (await scraper.get("/e/dev/")).status_code == 404
        assert (await scraper.get("/healthz")).status_code == 404
    assert 'route="/e/{env}/runners/{runner_id:int}"' in text
    assert "/e/dev/runners/12" not in text
    assert 'attic_iac_dashboard_http_request_duration_seconds_count{method="GET",' in text
    assert 'attic_iac_dashboard_source_up{source="gitlab"} 1.0' in text
    assert 'attic_iac_dashboard_source_up{source="kubernetes"} 0.0' in text
    assert 'attic_iac_dashboard_source_errors_total{source="kubernetes"} 2.0' in text
    assert 'attic_iac_dashboard_source_last_success_timestamp_seconds{source="gitlab"}' in text
    assert "prometheus" not in re.findall(r'source_up{source="(\w+)"}', text)  # not configured
    for name in (
        "attic_iac_dashboard_sse_clients",
        "attic_iac_dashboard_sse_dropped_total",
        "attic_iac_dashboard_drift_items",
        "attic_iac_dashboard_writes_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    # the registry is the app's own: no process or platform collectors from the global one
    assert "python_gc_objects_collected_total" not in text


async def test_two_apps_have_separate_metrics(tmp_path: Path):
    first, _ = build_app(tmp_path / "a", Clock())
    second, _ = build_app(tmp_path / "b", Clock())
    assert first.state.metrics.registry is not second.state.metrics.registry
