"""The Kubernetes collector against the fake API server on 127.0.0.1: list then watch, live
changes, relist on 410 Expired, reconnect after an outage, in-cluster configuration, and the
runner labels the dashboard copies from the construct library."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from constructs_lib.runners import labels
from dashboard.fakes import k8s_objects as k8s
from dashboard.sources import k8s_objects
from dashboard.sources.kubernetes import Connection, in_cluster, run_kubernetes
from dashboard.sources.polling import Retry
from dashboard.store import FleetStore
from tests.dashboard.eventually import eventually

pytestmark = pytest.mark.anyio
FAST = Retry(first=0.02, maximum=0.1)


@pytest.fixture
def store(dev_config) -> FleetStore:
    return FleetStore(environment="dev", config=dev_config)


@asynccontextmanager
async def watching(store, served, *, namespaces=None):
    demo = served.demo
    connection = Connection(url=served.kubernetes_url, token=lambda: demo.kube_token)
    task = asyncio.create_task(
        run_kubernetes(
            store, connection=connection, namespaces=namespaces, flush_delay=0.01, retry=FAST
        )
    )
    try:
        yield demo.kubernetes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def lists(kube) -> int:
    """Pod lists (not watches) the collector made."""
    return sum(
        1
        for _, target in kube.requests
        if target.split("?")[0].endswith("/pods") and "watch=" not in target
    )


async def test_workloads_and_events_fill_the_store(store, served_demo, dev_config):
    async with watching(store, served_demo):
        await eventually(lambda: store.state().sources["kubernetes"].ok)
    state = store.state()
    managers = [p for p in state.pods if p.component == "runner-manager"]
    jobs = [p for p in state.pods if p.component == "ci-job"]
    enabled = {n for n, spec in dev_config.runners.types.items() if spec.enabled}
    assert {p.runner_type for p in managers} == enabled
    assert {p.namespace for p in jobs} == {"gitlab-runner-jobs", "gitlab-runner-dind"}
    assert any(p.phase == "Pending" and p.node is None for p in jobs)
    deployments = {d.runner_type: d for d in state.deployments if d.runner_type}
    assert set(deployments) == enabled, "the type comes from the chart's pod template labels"
    assert (deployments["rocky8"].ready, deployments["rocky8"].replicas) == (0, 1)
    assert [(h.name, h.min, h.max, h.target) for h in state.hpas] == [
        ("attic", 2, 6, "Deployment/attic")
    ]
    assert [e.reason for e in state.events] == ["BackOff", "FailedScheduling"]
    assert state.events[0].count == 37
    rows = {row.runner_type: row for row in store.summary()}
    assert (rows["rocky8"].managers_ready, rows["rocky8"].managers_desired) == (0, 1)


async def test_changes_arrive_by_watch_and_reach_subscribers(store, served_demo):
    changes: list[frozenset[str]] = []
    async with watching(store, served_demo) as kube:
        await eventually(lambda: store.state().sources["kubernetes"].ok)
        listed = lists(kube)
        store.subscribe(lambda version, panels: changes.append(panels))
        kube.put(
            "deployments",
            k8s.deployment(
                "gitlab-runners",
                "gitlab-runner-rocky8",
                pod_labels={k8s_objects.RUNNER_TYPE_LABEL: "rocky8"},
                replicas=1,
                ready=1,
            ),
        )
        await eventually(lambda: changes)
        kube.delete(
            "events", "gitlab-runners", next(iter(kube.objects[("events", "gitlab-runners")]))
        )
        await eventually(lambda: len(store.state().events) == 1)
        assert lists(kube) == listed, "changes came by watch, not by listing again"
    assert changes[0] == frozenset({"workloads"})
    rocky8 = next(d for d in store.state().deployments if d.name == "gitlab-runner-rocky8")
    assert rocky8.ready == 1


async def test_an_expired_watch_lists_again(store, served_demo):
    async with watching(store, served_demo, namespaces=["gitlab-runners"]) as kube:
        await eventually(lambda: store.state().sources["kubernetes"].ok)
        await eventually(lambda: kube.watch_count() == 4)
        listed = lists(kube)
        kube.compact()
        kube.put("pods", k8s.pod("gitlab-runners", "after-compaction"))
        await eventually(lambda: lists(kube) > listed)
        await eventually(lambda: any(p.name == "after-compaction" for p in store.state().pods))
    assert store.state().sources["kubernetes"].ok


async def test_an_outage_marks_kubernetes_failing_then_it_reconnects(store, served_demo):
    async with watching(store, served_demo) as kube:
        await eventually(lambda: store.state().sources["kubernetes"].ok)
        pods = store.state().pods
        kube.set_outage(True)
        await eventually(lambda: not store.state().sources["kubernetes"].ok)
        health = store.state().sources["kubernetes"]
        assert health.stale
        assert health.failing_since is not None
        assert "503 Service Unavailable" in health.last_error
        assert store.state().pods == pods
        kube.set_outage(False)
        kube.put("pods", k8s.pod("attic", "after-outage"))
        await eventually(lambda: store.state().sources["kubernetes"].ok)
        await eventually(lambda: any(p.name == "after-outage" for p in store.state().pods))


async def test_a_namespace_the_account_may_not_read_is_a_failure_that_says_so(store, served_demo):
    async with watching(store, served_demo, namespaces=["gitlab-runners", "kube-system"]):
        await eventually(lambda: store.state().sources["kubernetes"].last_error)
    error = store.state().sources["kubernetes"].last_error
    assert error.startswith("pods in kube-system: 403 Forbidden: pods is forbidden")
    assert store.state().pods == (), "nothing partial is shown as if it were whole"


async def test_in_cluster_uses_the_service_account_files(tmp_path):
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = in_cluster(env, tmp_path)
    assert connection.url == "https://[fd00::1]:443"
    assert connection.ca_file == tmp_path / "ca.crt"
    assert connection.token() == "first"
    (tmp_path / "token").write_text("rotated\n")
    assert connection.token() == "rotated", "projected tokens rotate: read anew each time"


async def test_outside_a_cluster_without_a_url_the_source_fails_plainly(store, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    await run_kubernetes(store)
    assert "DASHBOARD_KUBERNETES_URL" in store.state().sources["kubernetes"].last_error


def test_the_dashboards_label_copies_equal_the_construct_librarys():
    assert k8s_objects.RUNNER_TYPE_LABEL == labels.RUNNER_TYPE_LABEL
    assert k8s_objects.PART_OF == labels.PART_OF
    assert k8s_objects.MANAGER_LABELS == labels.MANAGER_LABELS
    assert k8s_objects.JOB_POD_LABELS == labels.JOB_POD_LABELS
