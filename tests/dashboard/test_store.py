"""FleetStore: versions, panels, stale data on failure, readiness and the fleet summary."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from config_model.loader import LoadedConfig
from config_model.wiring import runner_description
from dashboard.model import Deployment, Job, Runner, TypeMetrics
from dashboard.store import FleetStore
from tests.support.dashboard_ui import T0, Clock


def runner(id_: int, runner_type: str | None, status="online", running=0) -> Runner:
    return Runner(
        id=id_,
        description=f"runner {id_}",
        runner_type=runner_type,
        status=status,
        paused=False,
        tags=(),
        version="18.6.0",
        contacted_at=T0,
        running_jobs=running,
        ip_address=None,
    )


def job(id_: int, runner_type: str, queued: float) -> Job:
    return Job(
        id=id_,
        runner_id=1,
        runner_type=runner_type,
        status="success",
        name="build",
        queued_duration=queued,
        created_at=T0,
        started_at=T0,
        finished_at=T0,
        web_url=f"https://gitlab.example.com/jobs/{id_}",
    )


def deployment(runner_type: str, replicas: int, ready: int) -> Deployment:
    return Deployment(
        namespace="gitlab-runners",
        name=f"gitlab-runner-{runner_type}",
        runner_type=runner_type,
        replicas=replicas,
        ready=ready,
        available=ready,
        updated=replicas,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(example_config: LoadedConfig, clock: Clock) -> FleetStore:
    return FleetStore(
        environment="dev", config=example_config.environments["dev"].config, clock=clock
    )


def record(store: FleetStore) -> list[tuple[int, frozenset[str]]]:
    calls: list[tuple[int, frozenset[str]]] = []
    store.subscribe(lambda version, panels: calls.append((version, panels)))
    return calls


def test_a_new_store_is_empty_and_not_ready(store: FleetStore):
    state = store.state()
    assert state.version == 0
    assert state.runners == ()
    assert not store.ready()
    assert set(state.sources) == {"gitlab", "kubernetes", "prometheus"}
    assert not any(s.ok or s.stale for s in state.sources.values())


def test_update_replaces_parts_bumps_the_version_and_names_the_panels(store: FleetStore):
    calls = record(store)
    store.update("gitlab", runners=(runner(1, "docker"),), jobs=())
    state = store.state()
    assert state.version == 1
    assert state.runners[0].id == 1
    assert state.sources["gitlab"].ok
    assert state.sources["gitlab"].last_success == T0
    assert calls == [(1, frozenset({"runners", "sources"}))]

    store.update("kubernetes", deployments=(deployment("docker", 1, 1),), events=())
    assert calls[-1] == (2, frozenset({"workloads", "sources"}))


def test_an_unchanged_poll_refreshes_last_success_without_a_new_version(store, clock):
    calls = record(store)
    store.update("gitlab", runners=(runner(1, "docker"),))
    clock.now = T0 + timedelta(seconds=30)
    store.update("gitlab", runners=(runner(1, "docker"),))
    assert store.state().version == 1
    assert store.state().sources["gitlab"].last_success == clock.now
    assert len(calls) == 1


def test_a_failure_keeps_the_data_and_marks_it_stale(store: FleetStore, clock: Clock):
    store.update("gitlab", runners=(runner(1, "docker"),))
    calls = record(store)
    clock.now = T0 + timedelta(minutes=2)
    store.failed("gitlab", "GET /groups/1234/runners: 503 Service Unavailable")
    clock.now = T0 + timedelta(minutes=3)
    store.failed("gitlab", "GET /groups/1234/runners: 503 Service Unavailable")
    state = store.state()
    health = state.sources["gitlab"]
    assert state.runners[0].id == 1
    assert not health.ok
    assert health.stale
    assert health.failing_since == T0 + timedelta(minutes=2)
    assert health.last_error == "GET /groups/1234/runners: 503 Service Unavailable"
    assert health.age(clock.now) == timedelta(minutes=3)
    assert calls == [(2, frozenset({"sources"}))], "the same error again is no change"

    store.update("gitlab", runners=(runner(1, "docker"),))
    health = store.state().sources["gitlab"]
    assert health.ok
    assert health.failing_since is None
    assert health.last_error is None
    assert calls[-1] == (3, frozenset({"sources"}))


def test_ready_once_every_configured_source_answered(example_config, clock):
    store = FleetStore(
        environment="dev",
        config=example_config.environments["dev"].config,
        clock=clock,
        configured=("gitlab", "kubernetes"),
    )
    assert not store.state().sources["prometheus"].configured
    store.failed("gitlab", "boom")
    assert not store.ready()
    store.update("kubernetes", pods=())
    assert store.ready()


def test_a_source_cannot_write_another_sources_parts(store: FleetStore):
    with pytest.raises(ValueError, match="gitlab cannot write pods"):
        store.update("gitlab", pods=())


def test_unsubscribe_and_a_broken_subscriber_do_not_stop_notifications(store, caplog):
    calls = record(store)

    def broken(version, panels):
        raise RuntimeError("viewer gone")

    store.subscribe(broken)
    unsubscribe = store.subscribe(lambda v, p: calls.append((-v, p)))
    unsubscribe()
    store.update("gitlab", runners=(runner(1, "docker"),))
    assert calls == [(1, frozenset({"runners", "sources"}))]
    assert "dashboard subscriber failed" in caplog.text


def test_runners_are_matched_to_types_by_their_exact_description(store, example_config):
    config = example_config.environments["dev"].config
    assert store.runner_type_of(runner_description(config, "dev", "nix")) == "nix"
    assert store.runner_type_of(runner_description(config, "dev", "nix") + " ") is None
    assert store.runner_type_of(runner_description(config, "prod", "nix")) is None


def test_summary_has_a_row_per_enabled_type_with_capacity_from_the_config(store, example_config):
    config = example_config.environments["dev"].config
    rows = {row.runner_type: row for row in store.summary()}
    enabled = [name for name, spec in config.runners.types.items() if spec.enabled]
    assert list(rows) == enabled
    docker = config.runners.types.docker
    assert rows["docker"].capacity == docker.concurrent * docker.replicas
    assert rows["docker"].total_runners == 0
    assert rows["docker"].saturation == 0


def test_summary_combines_gitlab_kubernetes_and_prometheus(store: FleetStore):
    store.update(
        "gitlab",
        runners=(
            runner(1, "docker", running=3),
            runner(2, "docker", status="offline", running=1),
            runner(3, None, running=5),
            dataclasses.replace(runner(4, "docker"), paused=True),
        ),
        jobs=tuple(job(i, "nix", float(i)) for i in range(1, 21)),
    )
    store.update("kubernetes", deployments=(deployment("docker", 2, 1), deployment("nix", 1, 1)))
    rows = {row.runner_type: row for row in store.summary()}
    docker, nix = rows["docker"], rows["nix"]
    assert (docker.managers_ready, docker.managers_desired) == (1, 2)
    assert (docker.online_runners, docker.total_runners) == (1, 3), "paused is not online"
    assert docker.jobs_running == 4
    assert docker.saturation == pytest.approx(4 / docker.capacity)
    assert (nix.queue_p50, nix.queue_p95) == (10.0, 19.0), "from GitLab's queued durations"

    store.update(
        "prometheus",
        type_metrics={
            "nix": TypeMetrics(
                runner_type="nix",
                running=2,
                capacity=4,
                saturation=0.5,
                queue_p50=1.5,
                queue_p95=30.0,
                failures={},
            )
        },
    )
    nix = next(row for row in store.summary() if row.runner_type == "nix")
    assert (nix.queue_p50, nix.queue_p95, nix.saturation) == (1.5, 30.0, 0.5)


def test_summary_leaves_out_disabled_types(example_config, clock):
    config = example_config.environments["dev"].config
    types = config.runners.types.model_copy(
        update={"rocky8": config.runners.types.rocky8.model_copy(update={"enabled": False})}
    )
    config = config.model_copy(
        update={"runners": config.runners.model_copy(update={"types": types})}
    )
    store = FleetStore(environment="dev", config=config, clock=clock)
    assert "rocky8" not in [row.runner_type for row in store.summary()]
    assert store.runner_type_of(runner_description(config, "dev", "rocky8")) is None
