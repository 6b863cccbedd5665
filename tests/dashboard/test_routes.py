"""Every route of the real app is either deliberately public or needs a session (proved by
walking ``app.routes``), unknown environments are 404, health and readiness, and the metrics
listener."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from dashboard.main import serve
from dashboard.security import PUBLIC_ROUTES
from dashboard.session import COOKIE
from dashboard.web import create_metrics_app
from iac_tools.cli import main
from tests.conftest import REPO
from tests.dashboard.web_support import (
    SESSION_KEY,
    AppClient,
    Clock,
    base_env,
    build_app,
    serving,
    signed_in,
    write_secrets,
)

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


def _free_ports() -> tuple[int, int]:
    """Two distinct free ports (both probes held open together, so they cannot coincide)."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


async def _until_up(http: httpx.AsyncClient, url: str) -> None:
    for _ in range(100):
        try:
            await http.get(url)
            return
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_two_listeners_and_a_graceful_stop_that_ends_sse_streams(tmp_path: Path):
    port, metrics_port = _free_ports()
    app, settings = build_app(
        tmp_path,
        Clock(),
        real_pages=True,
        DASHBOARD_HOST="127.0.0.1",
        DASHBOARD_PORT=str(port),
        DASHBOARD_METRICS_PORT=str(metrics_port),
        DASHBOARD_ROLE_RECHECK="12h",
    )
    _, value = signed_in(app)
    server = asyncio.create_task(serve(app, create_metrics_app(app.state.metrics), settings))
    base, metrics_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    async with httpx.AsyncClient(timeout=5) as http:
        await _until_up(http, f"{base}/healthz")
        await _until_up(http, f"{metrics_base}/metrics")
        assert (await http.get(f"{base}/metrics")).status_code == 302  # not on the app port
        assert (await http.get(f"{metrics_base}/healthz")).status_code == 404
        assert "attic_iac_dashboard_sse_clients" in (await http.get(f"{metrics_base}/metrics")).text
        headers = {"cookie": f"{COOKIE}={value}"}
        async with http.stream("GET", f"{base}/api/e/dev/events", headers=headers) as stream:
            assert stream.status_code == 200
            chunks = stream.aiter_bytes()
            assert b"event:" in await anext(chunks)  # the snapshot
            assert app.state.metrics.sse_clients._value.get() == 1
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C; SIGTERM takes the same path
            rest = [chunk async for chunk in chunks]  # ends instead of waiting for the grace
        assert all(b"event:" in chunk or chunk.startswith(b":") for chunk in rest)
    await asyncio.wait_for(server, 10)
    assert app.state.metrics.sse_clients._value.get() == 0


def test_the_command_collects_serves_logs_json_and_stops_on_sigterm(tmp_path: Path, served_demo):
    """``attic-iac dashboard`` against the fakes on loopback: its collectors make it ready,
    both listeners answer, logs are JSON without secrets, SIGTERM ends it with 0."""
    demo = served_demo.demo
    port, metrics_port = _free_ports()
    env = base_env(tmp_path)  # writes the default secret files, replaced here
    secrets_dir = write_secrets(
        tmp_path / "secrets",
        **{
            "oauth-client-secret": demo.client_secret,
            "gitlab-read-token": demo.read_token,
            "kubernetes-token": demo.kube_token,
        },
    )
    env = {
        **env,
        "PATH": os.environ["PATH"],
        "DASHBOARD_SECRETS_DIR": str(secrets_dir),
        "DASHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DASHBOARD_GITLAB_URL": served_demo.gitlab_url,
        "DASHBOARD_GITLAB_GROUP": demo.group,
        "DASHBOARD_CONFIG_PROJECT": demo.config_project,
        "DASHBOARD_OAUTH_CLIENT_ID": demo.client_id,
        "DASHBOARD_KUBERNETES_URL": served_demo.kubernetes_url,
        "DASHBOARD_PROMETHEUS_URL": served_demo.prometheus_url,
        "DASHBOARD_HOST": "127.0.0.1",
        "DASHBOARD_PORT": str(port),
        "DASHBOARD_METRICS_PORT": str(metrics_port),
    }
    code = "import sys; from iac_tools.cli import main; sys.exit(main(['dashboard']))"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = None
        for _ in range(300):
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        assert ready is not None
        assert ready.status_code == 200, ready.text
        login = httpx.get(f"http://127.0.0.1:{port}/auth/login?next=/e/dev/")
        assert login.status_code == 302
        assert login.headers["location"].startswith(f"{served_demo.gitlab_url}/oauth/authorize?")
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'route="/auth/login"' in scrape
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    for source in ("gitlab", "kubernetes", "prometheus"):
        assert f'attic_iac_dashboard_source_up{{source="{source}"}} 1.0' in scrape
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "dashboard.access"]
    last = access[-1]
    assert (last["route"], last["method"], last["status"]) == ("/auth/login", "GET", 302)
    assert "next=" not in stdout  # never the raw path or query
    secrets_ = (demo.client_secret, demo.read_token, demo.kube_token, SESSION_KEY)
    for secret in secrets_:
        assert secret not in stdout + stderr


async def test_bad_settings_stop_the_command_with_every_problem(capsys, tmp_path: Path):
    env = {**base_env(tmp_path), "DASHBOARD_PORT": "http", "DASHBOARD_LOG_LEVEL": "loud"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", env)
        assert main(["dashboard"]) == 2
    err = capsys.readouterr().err
    assert "error: DASHBOARD_PORT:" in err
    assert "error: DASHBOARD_LOG_LEVEL:" in err
    assert "2 problem(s); the dashboard did not start." in err
