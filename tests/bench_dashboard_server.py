"""The server process of ``make bench-dashboard`` (tests/bench_dashboard.py starts it): the real
app of :func:`dashboard.web.create_app` and its two listeners (``dashboard.main.run``), settings
from the environment, a store filled with a synthetic fleet larger than the demo's, and one
signed-in session. It writes the session cookie, then one line per change it makes on request,
to the file descriptor given as its argument.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import IO

from config_model.wiring import runner_description, runner_tags
from dashboard.main import run
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
from dashboard.session import Tokens
from dashboard.settings import Settings
from dashboard.store import FleetStore
from dashboard.web import create_app
from tests.bench_dashboard import ENVIRONMENT, raise_fd_limit

# The synthetic fleet, per enabled runner type (six in the example config), plus the rest.
JOBS_PER_TYPE = 60
JOB_PODS_PER_TYPE = 12
OTHER_RUNNERS = 40
WARNING_EVENTS = 40
SERIES_POINTS = 720  # 6 h at 30 s


def _fleet(store: FleetStore, rng: random.Random) -> None:
    """Fill ``store`` as the three collectors would, with a fleet larger than the demo's."""
    config, now = store.config, datetime.now(UTC)
    types = [name for name, spec in config.runners.types.items() if spec.enabled]
    namespace, job_namespace = config.runners.namespace, config.runners.job_namespace
    runners = [
        Runner(
            id=100 + index,
            description=runner_description(config, ENVIRONMENT, name),
            runner_type=name,
            status="online",
            paused=False,
            tags=tuple(runner_tags(config, name)),
            version="19.3.1",
            contacted_at=now - timedelta(seconds=rng.randint(1, 60)),
            running_jobs=rng.randint(0, 4),
            ip_address=f"10.0.0.{index + 1}",
        )
        for index, name in enumerate(types)
    ]
    runners += [
        Runner(
            id=1000 + n,
            description=f"team-{n % 7} shell runner {n}",
            runner_type=None,
            status=rng.choice(["online", "offline", "stale"]),
            paused=n % 9 == 0,
            tags=("shell", f"team-{n % 7}"),
            version="18.11.0",
            contacted_at=now - timedelta(hours=rng.randint(0, 200)),
            running_jobs=0,
            ip_address=None,
        )
        for n in range(OTHER_RUNNERS)
    ]
    jobs = []
    for index, name in enumerate(types):
        for n in range(JOBS_PER_TYPE):
            created = now - timedelta(minutes=n * 3)
            jobs.append(
                Job(
                    id=50_000 + index * 1000 + n,
                    runner_id=100 + index,
                    runner_type=name,
                    status=rng.choice(["success", "success", "failed", "running", "pending"]),
                    name=f"build:{name}:{n}",
                    queued_duration=rng.expovariate(1 / 20),
                    created_at=created,
                    started_at=created + timedelta(seconds=20),
                    finished_at=created + timedelta(minutes=2),
                    web_url=f"https://gitlab.example.test/acme/web/-/jobs/{n}",
                )
            )
    store.update("gitlab", runners=tuple(runners), jobs=tuple(jobs))

    deployments = [
        Deployment(
            namespace=namespace,
            name=f"runner-{name}",
            runner_type=name,
            replicas=2,
            ready=2,
            available=2,
            updated=2,
        )
        for name in types
    ]
    pods = [
        Pod(
            namespace=namespace if n < 2 else job_namespace,
            name=f"{name}-{n}",
            runner_type=name,
            component="runner-manager" if n < 2 else "ci-job",
            phase="Running",
            ready=True,
            node=f"node-{n % 5}",
            started_at=now - timedelta(minutes=n),
        )
        for name in types
        for n in range(2 + JOB_PODS_PER_TYPE)
    ]
    hpas = [
        Hpa(
            namespace=namespace,
            name=f"runner-{name}",
            current=2,
            desired=2,
            min=1,
            max=4,
            target="cpu 60%",
        )
        for name in types
    ]
    events = [
        Event(
            namespace=job_namespace,
            kind="Pod",
            name=f"job-{n}",
            reason=rng.choice(["BackOff", "FailedScheduling", "Unhealthy"]),
            message=f"synthetic warning {n}",
            count=rng.randint(1, 30),
            last_seen=now - timedelta(minutes=n),
        )
        for n in range(WARNING_EVENTS)
    ]
    store.update("kubernetes", deployments=tuple(deployments), pods=tuple(pods), hpas=tuple(hpas))
    store.update("kubernetes", events=tuple(events))

    start = now.timestamp() - SERIES_POINTS * 30

    def series(name: str, base: float) -> Series:
        points = tuple(
            (start + 30 * i, max(0.0, base + rng.uniform(-base, base) / 3))
            for i in range(SERIES_POINTS)
        )
        return Series(name=name, points=points)

    scaling = {}
    for name in types:
        scaling[f"jobs:{name}:running"] = series(f"jobs:{name}:running", 3)
        scaling[f"jobs:{name}:capacity"] = series(f"jobs:{name}:capacity", 8)
        scaling[f"hpa:{namespace}/runner-{name}:current"] = series(f"{name} current", 2)
        scaling[f"hpa:{namespace}/runner-{name}:max"] = series(f"{name} max", 4)
    store.update(
        "prometheus",
        type_metrics={
            name: TypeMetrics(
                runner_type=name,
                running=3.0,
                capacity=8.0,
                saturation=0.375,
                queue_p50=4.0,
                queue_p95=30.0,
                failures={"script_failure": 2.0, "runner_system_failure": 0.1},
            )
            for name in types
        },
        scaling_series=scaling,
        cache=CacheMetrics(
            request_rate=40.0,
            p99_seconds=0.2,
            error_ratio=0.001,
            slo_p99_seconds=1.0,
            slo_error_ratio=0.01,
            series={
                "requests": series("requests", 40),
                "p99": series("p99", 0.2),
                "error_ratio": series("error_ratio", 0.001),
            },
        ),
    )


def _flipper(store: FleetStore, commands: IO[str], report: IO[str]) -> None:
    """On each command line, flip the first runner online/offline; report when and which
    version (the hub takes the change from this thread, as it does from a collector)."""
    for _ in commands:
        runners = list(store.state().runners)
        going_offline = runners[0].status == "online"
        runners[0] = dataclasses.replace(
            runners[0], status="offline" if going_offline else "online"
        )
        started = time.monotonic()
        store.update("gitlab", runners=tuple(runners))
        report.write(json.dumps({"t": started, "version": store.state().version}) + "\n")
        report.flush()


def serve(report_fd: int) -> int:
    """The server process: settings from the environment, the real app, the fleet, a session."""
    settings = Settings.from_env(os.environ)
    app = create_app(settings, collectors=())  # no collector: the fleet below stays as it is
    store = app.state.stores[settings.environment]
    _fleet(store, random.Random(17))
    sessions = app.state.sessions
    tokens = Tokens(access_token="bench", refresh_token=None, expires_at=time.time() + 86_400)
    session = sessions.create(user_id=1, username="bench", role="viewer", tokens=tokens)
    report = os.fdopen(report_fd, "w")
    cookie = sessions.cookie(session).split(";", 1)[0]
    report.write(json.dumps({"cookie": cookie, "runner": store.state().runners[0].id}) + "\n")
    report.flush()
    threading.Thread(target=_flipper, args=(store, sys.stdin, report), daemon=True).start()
    return run(settings, app)


if __name__ == "__main__":
    raise_fd_limit()
    sys.exit(serve(int(sys.argv[1])))
