"""Headless Chromium for the dashboard's browser tests: Debian's binary (``make setup``
installs it), the flags that keep it off this machine's closed network, the demo served on
loopback, and screenshots under ``test-output/dashboard/``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright

from config_model.loader import EXAMPLE_CONFIG
from dashboard.demo import DemoRun, demo_running
from tests.conftest import REPO
from tests.support.dashboard_ui import loopback_socket, serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = REPO / "test-output" / "dashboard"


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; missing, it fails the test (never a skip) with the fix."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make setup` (apt-get install chromium)"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


@contextmanager
def demo_served(**environ: str) -> Iterator[tuple[DemoRun, str]]:
    """The demo (fakes and app, as ``attic-iac dashboard --demo`` builds them) for the example
    config on a real loopback listener, with ``environ`` on top; yields it and its URL."""
    sock = loopback_socket()
    settings = {"ATTIC_IAC_CONFIG": str(EXAMPLE_CONFIG), **environ}
    with (
        demo_running(port=sock.getsockname()[1], environ=settings) as running,
        serving(running.app, sock=sock, lifespan="on", shutdown=running.hub.shutdown) as base,
    ):
        yield running, base


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
