"""``attic-iac dashboard --demo``: the dashboard on localhost against the bundled fakes.

The fake GitLab, Kubernetes and Prometheus (the ones the tests use) are loaded with the demo
fleet and served on 127.0.0.1; the settings point at them with the demo flag on, so every page
carries a "DEMO — fake data" banner. Sign-in is the real OAuth flow against the fake GitLab, in
which the demo user is already signed in: open the URL and press Authorize. Demo data exists
only here: no other code path imports this module or the demo fleet.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette

from config_model.loader import CONFIG_ENV_VAR, load_config, resolve_config_path
from dashboard.fakes.demo_data import Demo, build_demo
from dashboard.fakes.serve import serve_in_thread
from dashboard.main import run
from dashboard.settings import Settings, SettingsError
from dashboard.sse import EventHub
from dashboard.web import create_app

DEFAULT_PORT = 8080
DEMO_USER = "ada"
# The demo moves: poll faster than production's 30 s unless the caller's environment says.
DEMO_POLL = "5s"


@dataclass(frozen=True, kw_only=True)
class DemoRun:
    """A demo ready to serve: its settings, the app, and the fakes to change while it runs."""

    settings: Settings
    app: Starlette
    demo: Demo
    hub: EventHub
    gitlab_url: str


def _write_secrets(directory: Path, demo: Demo) -> None:
    for name, value in (
        ("oauth-client-secret", demo.client_secret),
        ("gitlab-read-token", demo.read_token),
        ("kubernetes-token", demo.kube_token),
    ):
        path = directory / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)


@contextmanager
def demo_running(*, port: int, environ: Mapping[str, str] | None = None) -> Iterator[DemoRun]:
    """The fakes serving the demo fleet and the app's settings pointing at them; stops the
    fakes and removes the temporary secret files on exit. ``environ`` may pick the config,
    the environment, the poll intervals and the metrics port."""
    environ = dict(os.environ if environ is None else environ)
    config_path, _ = resolve_config_path(environ.get(CONFIG_ENV_VAR))
    loaded = load_config(config_path)
    environment = environ.get("DASHBOARD_ENVIRONMENT") or next(iter(loaded.environments))
    if environment not in loaded.environments:
        raise SettingsError([f"DASHBOARD_ENVIRONMENT: {environment!r} is not in the config"])
    public_url = f"http://127.0.0.1:{port}"
    demo = build_demo(
        loaded.environments[environment].config,
        environment,
        public_url=public_url,
        config_text=config_path.read_text(encoding="utf-8"),
        now=time.time(),
    )
    with ExitStack() as stack:
        secrets_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dash-demo-")))
        _write_secrets(secrets_dir, demo)
        urls = []
        for fake in (demo.gitlab, demo.kubernetes, demo.prometheus):
            url, stop = serve_in_thread(fake.build_app())
            stack.callback(stop)
            urls.append(url)
        stack.callback(demo.kubernetes.close_watches)
        gitlab_url, kubernetes_url, prometheus_url = urls
        settings = Settings.from_env(
            {
                "DASHBOARD_GITLAB_POLL": DEMO_POLL,
                "DASHBOARD_PROMETHEUS_POLL": DEMO_POLL,
                "DASHBOARD_METRICS_PORT": str(port + 1),
                **environ,
                CONFIG_ENV_VAR: str(config_path),
                "DASHBOARD_ENVIRONMENT": environment,
                "DASHBOARD_HOST": "127.0.0.1",
                "DASHBOARD_PORT": str(port),
                "DASHBOARD_PUBLIC_URL": public_url,
                "DASHBOARD_GITLAB_URL": gitlab_url,
                "DASHBOARD_GITLAB_GROUP": demo.group,
                "DASHBOARD_CONFIG_PROJECT": demo.config_project,
                "DASHBOARD_CONFIG_FILE": demo.config_file,
                "DASHBOARD_OAUTH_CLIENT_ID": demo.client_id,
                "DASHBOARD_SECRETS_DIR": str(secrets_dir),
                "DASHBOARD_KUBERNETES_URL": kubernetes_url,
                "DASHBOARD_PROMETHEUS_URL": prometheus_url,
            },
            demo=True,
        )
        app = create_app(settings)  # as production builds it: collectors from the settings
        yield DemoRun(
            settings=settings,
            app=app,
            demo=demo,
            hub=app.state.hubs[0],
            gitlab_url=gitlab_url,
        )


def run_demo(port: int = DEFAULT_PORT) -> int:
    """Serve the demo on 127.0.0.1:``port`` until Ctrl-C."""
    try:
        with demo_running(port=port) as running:
            print(
                f"DEMO — fake data. Open {running.settings.public_url}/ and press Authorize "
                f"(the fake GitLab has '{DEMO_USER}' signed in). Ctrl-C stops.",
                file=sys.stderr,
            )
            return run(running.settings, running.app)
    except SettingsError as error:
        for line in error.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2


def main(port: int | None = None) -> int:
    """What ``attic-iac dashboard --demo [--port N]`` calls."""
    return run_demo(DEFAULT_PORT if port is None else port)
