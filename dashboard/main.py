"""``attic-iac-dashboard`` (and ``attic-iac dashboard``): the app and the metrics listener in one
process, two uvicorn servers on one event loop.

SIGTERM (Kubernetes stopping the pod) or Ctrl-C first ends the SSE streams, then both servers
stop accepting, finish their requests and exit 0; a second Ctrl-C forces the exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal

import uvicorn
from starlette.applications import Starlette

from dashboard.observability import Metrics, configure_logging
from dashboard.settings import Settings, SettingsError
from dashboard.web import begin_shutdown, create_app, create_metrics_app

EXIT_BAD_INPUT = 2
GRACE_SECONDS = 10


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`serve` (two servers cannot both own
    them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(
    app: Starlette, host: str, port: int, *, lifespan: Literal["on", "off"] = "on"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        log_config=None,  # our JSON logging, set up before
        access_log=False,  # ours logs the route template, never a path with a code in it
        server_header=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )


async def serve(app: Starlette, metrics_app: Starlette, settings: Settings) -> None:
    """Run both listeners until SIGTERM/SIGINT."""
    servers = [
        _Server(_config(app, settings.host, settings.port)),
        _Server(_config(metrics_app, settings.host, settings.metrics_port, lifespan="off")),
    ]

    def stop() -> None:
        if servers[0].should_exit:
            for server in servers:
                server.force_exit = True
            return
        begin_shutdown(app)
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(settings: Settings, app: Starlette | None = None) -> int:
    """Serve ``app`` (default: :func:`create_app` for ``settings``) and its metrics."""
    configure_logging(settings.log_level, settings.secret_values())
    app = app or create_app(settings)
    metrics: Metrics = app.state.metrics
    asyncio.run(serve(app, create_metrics_app(metrics), settings))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attic-iac dashboard",
        description="Serve the runner dashboard (settings: DASHBOARD_* environment variables "
        "and the secret files, README 'Runner dashboard').",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run on localhost against the bundled fake GitLab, Kubernetes and Prometheus",
    )
    parser.add_argument("--port", type=int, help="app port (default: $DASHBOARD_PORT or 8080)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Read the settings, then serve; exit 2 with one line per bad setting."""
    args = _parser().parse_args(argv)
    if args.demo:
        demo = importlib.import_module("dashboard.demo")  # the ui helper's demo wiring
        return int(demo.main(port=args.port))
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        print(f"{len(exc.lines)} problem(s); the dashboard did not start.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.port is not None:
        settings = replace(settings, port=args.port)
    return run(settings)
