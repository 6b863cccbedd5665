"""GitLab collector: the runners of the configured group (or instance) and their jobs.

Runners are matched to runner types by the exact description the stacks register
(:func:`config_model.wiring.runner_description`); only matched runners cost detail and job
calls, so a big group's other runners are listed but not polled one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from dashboard.gitlab_client import GitLabClient, GitLabError
from dashboard.model import Job, Runner, RunnerStatus
from dashboard.settings import INSTANCE
from dashboard.sources.polling import Retry, default_retry, poll
from dashboard.sources.times import parse_time
from dashboard.store import FleetStore

STATUSES = ("online", "offline", "stale", "never_contacted")
# Detail and job calls in flight at once, so a poll stays gentle on GitLab.
CONCURRENCY = 8
T = TypeVar("T")


def _job(raw: dict[str, Any], runner_id: int, runner_type: str | None) -> Job:
    queued = raw.get("queued_duration")
    return Job(
        id=int(raw["id"]),
        runner_id=runner_id,
        runner_type=runner_type,
        status=str(raw.get("status", "")),
        name=str(raw.get("name", "")),
        queued_duration=float(queued) if isinstance(queued, int | float) else None,
        created_at=parse_time(raw.get("created_at")),
        started_at=parse_time(raw.get("started_at")),
        finished_at=parse_time(raw.get("finished_at")),
        web_url=str(raw.get("web_url", "")),
    )


def _status(raw: dict[str, Any]) -> RunnerStatus:
    value = raw.get("status")
    if value in STATUSES:
        return cast(RunnerStatus, value)
    return "online" if raw.get("online") else "offline"


def _paused(raw: dict[str, Any]) -> bool:
    """``paused``, else the negation of the deprecated ``active`` (older GitLabs)."""
    return bool(raw.get("paused", not raw.get("active", True)))


async def _runner(
    client: GitLabClient,
    listed: dict[str, Any],
    runner_type: str,
    recent_jobs: int,
    limit: asyncio.Semaphore,
) -> tuple[Runner, list[Job]]:
    """A matched runner's detail and jobs (running ones and the newest few)."""
    runner_id = int(listed["id"])

    async def call(make: Callable[[], Awaitable[T]]) -> T:
        # The call is made once a slot is free: a coroutine made earlier and cancelled
        # while waiting would never be awaited (a RuntimeWarning at shutdown).
        async with limit:
            return await make()

    detail, running, recent = await asyncio.gather(
        call(lambda: client.runner(runner_id)),
        call(lambda: client.runner_jobs(runner_id, status="running")),
        call(lambda: client.runner_jobs(runner_id, limit=recent_jobs)),
    )
    version, ip_address = detail.get("version"), detail.get("ip_address")
    if (not version or not ip_address) and detail.get("contacted_at"):
        # Newer GitLabs keep these per manager (system id); show the newest manager's.
        managers = await call(lambda: client.runner_managers(runner_id))
        newest = max(managers, key=lambda m: str(m.get("contacted_at") or ""), default={})
        version = version or newest.get("version")
        ip_address = ip_address or newest.get("ip_address")
    runner = Runner(
        id=runner_id,
        description=str(detail.get("description") or listed.get("description") or ""),
        runner_type=runner_type,
        status=_status(detail),
        paused=_paused(detail),
        tags=tuple(str(t) for t in detail.get("tag_list") or ()),
        version=str(version) if version else None,
        contacted_at=parse_time(detail.get("contacted_at")),
        running_jobs=len(running),
        ip_address=str(ip_address) if ip_address else None,
        run_untagged=_flag(detail.get("run_untagged")),
        locked=_flag(detail.get("locked")),
        access_level=str(detail["access_level"]) if detail.get("access_level") else None,
        maximum_timeout=_whole(detail.get("maximum_timeout")),
    )
    jobs = {int(raw["id"]): _job(raw, runner_id, runner_type) for raw in [*recent, *running]}
    return runner, list(jobs.values())


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _listed_only(listed: dict[str, Any]) -> Runner:
    """A runner of no configured type: what the list says, without extra calls."""
    return Runner(
        id=int(listed["id"]),
        description=str(listed.get("description") or ""),
        runner_type=None,
        status=_status(listed),
        paused=_paused(listed),
        tags=(),
        version=None,
        contacted_at=None,
        running_jobs=0,
        ip_address=None,
    )


async def collect(
    store: FleetStore, client: GitLabClient, *, group: str, recent_jobs: int
) -> dict[str, Any]:
    """One poll: runners and jobs as FleetStore parts."""
    runner_type = store.config.runners.gitlab_api.runner_type
    if group == INSTANCE:
        listed = await client.instance_runners(runner_type=runner_type)
    else:
        listed = await client.group_runners(group, runner_type=runner_type)
    limit = asyncio.Semaphore(CONCURRENCY)
    matched = [
        (raw, kind)
        for raw in listed
        if (kind := store.runner_type_of(str(raw.get("description") or ""))) is not None
    ]
    polled = await asyncio.gather(
        *(_runner(client, raw, kind, recent_jobs, limit) for raw, kind in matched)
    )
    matched_ids = {int(raw["id"]) for raw, _ in matched}
    runners = [runner for runner, _ in polled]
    runners += [_listed_only(raw) for raw in listed if int(raw["id"]) not in matched_ids]
    jobs = [job for _, runner_jobs in polled for job in runner_jobs]
    return {
        "runners": tuple(sorted(runners, key=lambda r: (r.runner_type is None, r.id))),
        "jobs": tuple(sorted(jobs, key=lambda j: j.id, reverse=True)),
    }


async def run_gitlab(
    store: FleetStore,
    client: GitLabClient,
    *,
    group: str,
    interval: float = 30.0,
    recent_jobs: int = 20,
    retry: Retry | None = None,
) -> None:
    """Poll ``group``'s runners (``instance``: every runner, admin token) every ``interval``
    seconds until cancelled; ``recent_jobs`` per runner feed the queue-time figures."""

    async def once() -> dict[str, Any]:
        return await collect(store, client, group=group, recent_jobs=recent_jobs)

    await poll(
        store,
        "gitlab",
        once,
        interval=interval,
        retry=retry or default_retry(interval),
        errors=(GitLabError,),
    )
