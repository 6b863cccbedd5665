"""The dashboard image's recipe, run without Docker: the builder stage replayed under a temporary
root (tests/support/dashboard_image.py) is a venv holding only the locked libraries and the three
source packages. There every shipped module imports and nothing loads from outside the venv and
the standard library (so no cdktf, jsii or construct can), and the ENTRYPOINT serves its two
listeners and stops cleanly on SIGTERM, as Kubernetes stops the pod."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.dashboard.web_support import base_env
from tests.support.dashboard_image import SHIPPED, SITE, VENV, entrypoint, replay
from tests.support.fake_http import free_port

PROBE = """
import importlib, pkgutil, sys, sysconfig
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
site = next(path for path in sys.path if path.endswith("site-packages"))
stdlib = sysconfig.get_path("stdlib")
def inside(path):
    if path.startswith(site + "/"):
        return True
    return path.startswith(stdlib + "/") and not path.startswith(stdlib + "/site-packages/")
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not inside(module.__file__)
)
print(len(sys.modules), site, *outside)
"""


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image")
    replay(root)
    return root


def test_every_shipped_module_imports_with_the_locked_libraries_alone(image_root: Path):
    """A lock line missing, a package not copied, or an import of cdktf fails here."""
    python = image_root / VENV.lstrip("/") / "bin" / "python"
    run = subprocess.run(
        [str(python), "-I", "-B", "-c", PROBE, *SHIPPED],
        cwd=image_root,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    count, site, *outside = run.stdout.split()
    assert site == str(image_root / SITE.lstrip("/"))
    assert outside == []
    assert int(count) > 100


def _until_healthy(process: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the entrypoint exited {process.returncode}")
        try:
            return httpx.get(url)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_the_entrypoint_serves_both_listeners_and_stops_on_sigterm(
    image_root: Path, tmp_path: Path
):
    """Every upstream points at a closed loopback port: nothing leaves the machine."""
    port, metrics_port, closed = free_port(), free_port(), free_port()
    env = {
        **base_env(tmp_path),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DASHBOARD_GITLAB_URL": f"http://127.0.0.1:{closed}",
        "DASHBOARD_KUBERNETES_URL": f"http://127.0.0.1:{closed}",
        "DASHBOARD_HOST": "127.0.0.1",
        "DASHBOARD_PORT": str(port),
        "DASHBOARD_METRICS_PORT": str(metrics_port),
    }
    argv = entrypoint()
    argv[0] = str(image_root / argv[0].lstrip("/"))
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        health = _until_healthy(process, f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
        login = httpx.get(f"http://127.0.0.1:{port}/auth/login")
        assert login.status_code == 302
        assert login.headers["location"].startswith(f"http://127.0.0.1:{closed}/oauth/authorize?")
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert "attic_iac_dashboard_http_request_duration_seconds" in scrape.text
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
