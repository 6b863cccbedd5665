"""``attic-iac dashboard --demo``: the fakes with the demo fleet, settings pointing at them, a
banner on every page, sign-in through the fake GitLab's OAuth consent; and demo data that no
other code path loads."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from config_model.loader import EXAMPLE_CONFIG
from config_model.wiring import runner_description
from dashboard.demo import DemoRun, demo_running
from tests.conftest import REPO
from tests.support.dashboard_ui import loopback_socket, serving

FORM_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Browser:
    """Just enough of a browser for the OAuth dance over plain http on loopback: follows
    redirects across the app and the fake GitLab and keeps cookies per host, Secure ones
    included (a browser treats 127.0.0.1 as a secure context; httpx's jar does not)."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=10, follow_redirects=False)
        self.cookies: dict[str, dict[str, str]] = {}

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        for _ in range(10):
            host = urlsplit(url).netloc
            jar = self.cookies.setdefault(host, {})
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
            response = self.http.request(method, url, headers=headers, **kwargs)
            for header in response.headers.get_list("set-cookie"):
                name, _, rest = header.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in header.lower():
                    jar[name] = value
                else:
                    jar.pop(name, None)
            if response.status_code not in (302, 303):
                return response
            url, method, kwargs = urljoin(url, response.headers["location"]), "GET", {}
        raise AssertionError("redirect loop")

    def sign_in(self, base: str) -> httpx.Response:
        consent = self.request("GET", f"{base}/e/dev/")
        assert "Authorize" in consent.text, consent.text
        fields = {name: unescape(value) for name, value in FORM_FIELD.findall(consent.text)}
        return self.request(
            "POST",
            urljoin(str(consent.url), "/oauth/authorize"),
            data={**fields, "commit": "Authorize"},
        )


@pytest.fixture
def demo_run() -> Iterator[tuple[DemoRun, str]]:
    sock = loopback_socket()
    port = sock.getsockname()[1]
    environ = {
        "ATTIC_IAC_CONFIG": str(EXAMPLE_CONFIG),
        "DASHBOARD_GITLAB_POLL": "1s",
        "DASHBOARD_PROMETHEUS_POLL": "1s",
    }
    with (
        demo_running(port=port, environ=environ) as running,
        serving(running.app, sock=sock, lifespan="on", shutdown=running.hub.shutdown) as base,
    ):
        yield running, base


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 20
    while httpx.get(f"{base}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the demo never became ready"
        time.sleep(0.1)


def test_demo_signs_in_through_the_fake_gitlab_and_shows_the_demo_fleet(demo_run):
    running, base = demo_run
    assert running.settings.demo
    assert running.settings.gitlab_url == running.gitlab_url
    wait_ready(base)
    with Browser() as browser:
        check_the_demo_fleet(running, browser, base)


def check_the_demo_fleet(running: DemoRun, browser: Browser, base: str) -> None:
    fleet = browser.sign_in(base)
    assert fleet.status_code == 200
    assert str(fleet.url) == f"{base}/e/dev/"
    assert "DEMO — fake data" in fleet.text
    assert "ada" in fleet.text
    config = running.settings.environment_config
    for name in ("docker", "nix", "rocky8"):
        assert runner_description(config, "dev", name) in fleet.text
    assert 'data-status="offline"' in fleet.text  # the demo's rocky8 runner
    for path in ("/e/dev/scaling", "/e/dev/cache", "/api/e/dev/state"):
        page = browser.request("GET", base + path)
        assert page.status_code == 200
    assert "DEMO — fake data" in browser.request("GET", f"{base}/e/dev/cache").text
    assert browser.request("GET", f"{base}/api/e/dev/series/replicas").json()["labels"]


def test_without_a_session_the_demo_asks_for_sign_in(demo_run):
    _, base = demo_run
    assert httpx.get(f"{base}/api/e/dev/state").status_code == 401
    page = httpx.get(f"{base}/e/dev/")
    assert page.status_code == 302
    assert page.headers["location"].startswith("/auth/login")


def test_no_production_path_loads_the_demo_or_its_fakes():
    code = (
        "import sys, dashboard.main, dashboard.web, dashboard.pages, dashboard.sse\n"
        "loaded = [m for m in sys.modules if m == 'dashboard.demo' or "
        "m.startswith('dashboard.fakes')]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
