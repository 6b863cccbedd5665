"""The GitLab collector against the fake GitLab: runners matched to types, their jobs, live
changes reaching subscribers, outages shown as failing with the last data kept."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import httpx
import pytest

from config_model.wiring import runner_description
from dashboard.gitlab_client import GitLabClient
from dashboard.sources.gitlab import run_gitlab
from dashboard.sources.polling import Retry
from dashboard.store import FleetStore
from tests.dashboard.eventually import eventually

pytestmark = pytest.mark.anyio
FAST = Retry(first=0.01, maximum=0.05)


@pytest.fixture
def store(dev_config) -> FleetStore:
    return FleetStore(environment="dev", config=dev_config)


@asynccontextmanager
async def collecting(store, demo, *, token=None, group=None):
    transport = httpx.ASGITransport(app=demo.gitlab.build_app())
    client = GitLabClient(demo.gitlab.url, token or demo.read_token, transport=transport)
    task = asyncio.create_task(
        run_gitlab(store, client, group=group or demo.group, interval=0.02, retry=FAST)
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_runners_and_jobs_fill_the_store(store, demo, dev_config):
    async with collecting(store, demo):
        await eventually(lambda: store.state().sources["gitlab"].ok)
    state = store.state()
    by_type = {r.runner_type: r for r in state.runners}
    enabled = [n for n, spec in dev_config.runners.types.items() if spec.enabled]
    assert set(by_type) == {*enabled, None}
    docker = by_type["docker"]
    assert docker.id == demo.runners["docker"]
    assert docker.description == runner_description(dev_config, "dev", "docker")
    assert docker.status == "online"
    assert docker.tags == ("docker",)
    assert docker.version == "18.6.1"
    assert docker.ip_address == "10.42.0.17"
    assert docker.contacted_at is not None
    assert docker.running_jobs == 7
    assert by_type["rocky8"].status == "offline"
    assert by_type["dind"].paused
    assert by_type[None].status == "stale"
    assert by_type[None].tags == (), "runners of no configured type cost no detail call"
    docker_jobs = [j for j in state.jobs if j.runner_type == "docker"]
    assert sum(j.status == "running" for j in docker_jobs) == 7
    assert all(j.queued_duration is not None for j in docker_jobs)
    assert all(j.web_url.startswith("https://gitlab.com/acme/") for j in docker_jobs)
    summary = {row.runner_type: row for row in store.summary()}
    assert summary["docker"].jobs_running == 7
    assert summary["docker"].queue_p95 is not None
    assert store.ready() is False, "kubernetes and prometheus have not answered yet"


async def test_a_runner_going_offline_reaches_subscribers(store, demo):
    changes: list[frozenset[str]] = []
    async with collecting(store, demo):
        await eventually(lambda: store.state().sources["gitlab"].ok)
        store.subscribe(lambda version, panels: changes.append(panels))
        demo.gitlab.set_runner_status(demo.runners["nix"], "offline")
        await eventually(lambda: changes)
        nix = next(r for r in store.state().runners if r.runner_type == "nix")
    assert nix.status == "offline"
    assert changes[0] == frozenset({"runners"})


async def test_an_outage_marks_gitlab_failing_and_keeps_the_last_data(store, demo):
    async with collecting(store, demo):
        await eventually(lambda: store.state().sources["gitlab"].ok)
        before = store.state().runners
        demo.gitlab.set_outage(True)
        await eventually(lambda: not store.state().sources["gitlab"].ok)
        health = store.state().sources["gitlab"]
        assert health.stale
        assert health.failing_since is not None
        assert health.last_error == f"GET /groups/{demo.group}/runners: 503 Service Unavailable"
        assert demo.read_token not in health.last_error
        assert store.state().runners == before
        demo.gitlab.set_outage(False)
        await eventually(lambda: store.state().sources["gitlab"].ok)
    assert store.state().sources["gitlab"].last_error is None


async def test_a_revoked_token_is_an_error_that_does_not_show_the_token(store, demo):
    async with collecting(store, demo, token="glpat-revoked-or-mistyped"):
        await eventually(lambda: store.state().sources["gitlab"].last_error)
    error = store.state().sources["gitlab"].last_error
    assert "401" in error
    assert "glpat-revoked" not in error


async def test_instance_mode_lists_every_runner_with_an_admin_token(store, demo):
    admin = demo.gitlab.add_user("root", admin=True)
    async with collecting(store, demo, token=demo.gitlab.personal_token(admin), group="instance"):
        await eventually(lambda: store.state().sources["gitlab"].ok)
    assert {r.id for r in store.state().runners if r.runner_type} == set(demo.runners.values())
    assert ("GET", "/runners/all") in demo.gitlab.requests
