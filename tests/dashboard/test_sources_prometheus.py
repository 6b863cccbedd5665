"""The Prometheus collector against the fake Prometheus, and its queries against the rules
the construct library installs (the same metric names, recordings and expressions)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import httpx
import pytest

from dashboard.sources import prometheus
from dashboard.sources.polling import Retry
from dashboard.store import FleetStore
from tests.dashboard.eventually import eventually

pytestmark = pytest.mark.anyio
FAST = Retry(first=0.01, maximum=0.05)


@pytest.fixture
def store(dev_config) -> FleetStore:
    return FleetStore(environment="dev", config=dev_config)


@asynccontextmanager
async def querying(store, demo):
    transport = httpx.ASGITransport(app=demo.prometheus.build_app())
    task = asyncio.create_task(
        prometheus.run_prometheus(
            store,
            url="http://prometheus.test",
            interval=0.02,
            range_seconds=600,
            step=60,
            retry=FAST,
            transport=transport,
        )
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_metrics_scaling_and_cache_fill_the_store(store, demo, dev_config):
    async with querying(store, demo):
        await eventually(lambda: store.state().sources["prometheus"].ok)
    state = store.state()
    enabled = [n for n, spec in dev_config.runners.types.items() if spec.enabled]
    assert list(state.type_metrics) == enabled
    docker = state.type_metrics["docker"]
    assert docker.capacity == 10
    assert docker.running is not None
    assert 0 <= docker.saturation <= 1
    assert docker.queue_p50 < docker.queue_p95
    assert docker.failures == {"script_failure": 4.0, "runner_system_failure": 1.0}
    assert state.type_metrics["rocky8"].capacity is None, "no series: None, never made up"
    hpa = state.scaling_series["hpa:attic/attic:current"]
    assert len(hpa.points) == 11
    assert all(2 <= value <= 6 for _, value in hpa.points)
    assert state.scaling_series["hpa:attic/attic:max"].points[0][1] == 6
    assert "jobs:docker:capacity" in state.scaling_series
    cache = state.cache
    assert cache.request_rate > 0
    assert cache.p99_seconds > 0
    assert cache.slo_p99_seconds == dev_config.monitoring.slo.cache_hit_p99_ms / 1000
    assert cache.slo_error_ratio == pytest.approx(0.001)
    assert set(cache.series) == {"requests", "p99", "error_ratio"}
    assert store.summary()[0].queue_p95 == docker.queue_p95


async def test_an_outage_marks_prometheus_failing_and_keeps_the_last_data(store, demo):
    async with querying(store, demo):
        await eventually(lambda: store.state().sources["prometheus"].ok)
        cache = store.state().cache
        demo.prometheus.set_outage(True)
        await eventually(lambda: not store.state().sources["prometheus"].ok)
        health = store.state().sources["prometheus"]
        assert health.stale
        assert health.last_error.startswith("GET /api/v1/query")
        assert "503 unavailable" in health.last_error
        assert store.state().cache == cache
        demo.prometheus.set_outage(False)
        await eventually(lambda: store.state().sources["prometheus"].ok)


async def test_a_query_the_data_does_not_know_fails_loudly(store, demo):
    demo.prometheus.data.pop(prometheus.queries(store.config).queue_p95)
    async with querying(store, demo):
        await eventually(lambda: store.state().sources["prometheus"].last_error)
    assert "bad_data" in store.state().sources["prometheus"].last_error


async def test_nan_and_empty_answers_become_none(store, demo):
    q = prometheus.queries(store.config)
    demo.prometheus.set(q.cache_p99, [({}, float("nan"))])
    demo.prometheus.set(q.cache_requests, [])
    async with querying(store, demo):
        await eventually(lambda: store.state().sources["prometheus"].ok)
    assert store.state().cache.p99_seconds is None
    assert store.state().cache.request_rate is None


def test_names_equal_the_rules_the_stacks_install():
    # Imported here: the construct library loads cdktf, seconds the other tests need not wait.
    from constructs_lib.monitoring import attic_slo, runner_alerts
    from constructs_lib.monitoring.attic_slo_props import AtticSloProps
    from stacks.attic import BINARY_CACHE_SERVICE

    assert prometheus.RUNNER_TYPE_TARGET == runner_alerts.RUNNER_TYPE_TARGET
    assert prometheus.CONCURRENT_SATURATION == runner_alerts.CONCURRENT_SATURATION
    assert prometheus.LIMIT_SATURATION == runner_alerts.LIMIT_SATURATION
    assert prometheus.REQUESTS_RATE == attic_slo.REQUESTS_RATE
    assert attic_slo.error_ratio_record("5m") == prometheus.ERROR_RATIO_5M
    assert prometheus.BINARY_CACHE_SERVICE == BINARY_CACHE_SERVICE
    assert AtticSloProps.__dataclass_fields__["nginx_namespace_label"].default == (
        prometheus.NGINX_NAMESPACE_LABEL
    )


@pytest.mark.parametrize("controller", ["traefik", "nginx"])
def test_the_cache_p99_is_the_latency_alerts_expression(dev_config, controller):
    from constructs_lib.monitoring import attic_slo
    from constructs_lib.monitoring.attic_slo_props import AtticRouteServices, AtticSloProps
    from stacks.attic import BINARY_CACHE_SERVICE, CACHE_INFO_SERVICE

    ingress = dev_config.attic.ingress.model_copy(update={"controller": controller})
    attic = dev_config.attic.model_copy(update={"ingress": ingress})
    config = dev_config.model_copy(update={"attic": attic})
    groups = attic_slo.attic_rule_groups(
        AtticSloProps(
            namespace=config.attic.namespace,
            ingress_controller=controller,
            host="attic.example.com",
            services=AtticRouteServices(
                api_service="attic",
                binary_cache_service=BINARY_CACHE_SERVICE,
                cache_info_service=CACHE_INFO_SERVICE,
            ),
            api_deployment="attic",
            gc=None,
            pg_cluster="attic-pg",
        )
    )
    alert = next(
        rule
        for group in groups
        for rule in group["rules"]
        if rule.get("alert") == "AtticCacheHitLatencyHigh"
    )
    assert alert["expr"].split("\n>")[0] == prometheus.cache_p99_query(config)


def test_every_query_has_demo_data(demo, dev_config):
    q = prometheus.queries(dev_config)
    assert set(q.instant()) | set(q.ranges()) <= set(demo.prometheus.data)
