"""The collectors an instance runs for the environment it serves, as the settings ask: GitLab
with the read token, Kubernetes in-cluster (or at ``DASHBOARD_KUBERNETES_URL``), Prometheus
only with a URL. Each is a coroutine function the app's lifespan runs as a task."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from dashboard.gitlab_client import GitLabClient
from dashboard.settings import Settings
from dashboard.sources.gitlab import run_gitlab
from dashboard.sources.kubernetes import Connection, run_kubernetes
from dashboard.sources.prometheus import run_prometheus
from dashboard.store import FleetStore

Collector = Callable[[], Coroutine[Any, Any, None]]


def default_collectors(settings: Settings, store: FleetStore) -> list[Collector]:
    """One collector per configured source, all writing into ``store``."""

    async def gitlab() -> None:
        async with GitLabClient(settings.gitlab_url, settings.gitlab_read_token) as reader:
            await run_gitlab(
                store, reader, group=settings.gitlab_group, interval=settings.gitlab_poll
            )

    async def kubernetes() -> None:
        connection = None
        if settings.kubernetes_url:
            token = settings.kubernetes_token
            connection = Connection(url=settings.kubernetes_url, token=lambda: token)
        await run_kubernetes(store, connection=connection)

    collectors: list[Collector] = [gitlab, kubernetes]
    if settings.prometheus_url:
        url = settings.prometheus_url

        async def prometheus() -> None:
            await run_prometheus(store, url=url, interval=settings.prometheus_poll)

        collectors.append(prometheus)
    return collectors
