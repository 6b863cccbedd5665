"""The fake Prometheus answers the dashboard's queries in Prometheus' JSON shapes, and
refuses queries it has no data for."""

from __future__ import annotations

import httpx
import pytest

from dashboard.fakes.prometheus import FakePrometheus

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> FakePrometheus:
    prom = FakePrometheus(clock=lambda: 1000.0)
    prom.set("up", [({"job": "a"}, 1.0), ({"job": "b"}, lambda t: t / 1000)])
    prom.set("nothing", [])
    prom.set("nan", [({}, float("nan"))])
    return prom


def web(fake: FakePrometheus) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=fake.build_app())
    return httpx.AsyncClient(transport=transport, base_url="http://prometheus")


async def test_instant_queries_answer_a_vector(fake):
    async with web(fake) as client:
        body = (await client.get("/api/v1/query", params={"query": "up", "time": "2000"})).json()
        posted = (await client.post("/api/v1/query", data={"query": "nan"})).json()
        empty = (await client.get("/api/v1/query", params={"query": "nothing"})).json()
    assert body == {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"job": "a"}, "value": [2000.0, "1"]},
                {"metric": {"job": "b"}, "value": [2000.0, "2"]},
            ],
        },
    }
    assert posted["data"]["result"][0]["value"] == [1000.0, "NaN"]
    assert empty["data"]["result"] == []


async def test_range_queries_answer_a_matrix(fake):
    params = {"query": "up", "start": "0", "end": "1000", "step": "500"}
    async with web(fake) as client:
        body = (await client.get("/api/v1/query_range", params=params)).json()
        too_fine = await client.get("/api/v1/query_range", params={**params, "step": "0.01"})
    assert body["data"]["resultType"] == "matrix"
    assert body["data"]["result"][1]["values"] == [[0.0, "0"], [500.0, "0.5"], [1000.0, "1"]]
    assert too_fine.status_code == 400
    assert "11,000 points" in too_fine.json()["error"]


async def test_unknown_queries_and_outages_answer_prometheus_errors(fake):
    async with web(fake) as client:
        unknown = await client.get("/api/v1/query", params={"query": "sum(up)"})
        fake.set_outage(True)
        down = await client.get("/api/v1/query", params={"query": "up"})
    assert unknown.status_code == 400
    assert unknown.json()["status"] == "error"
    assert unknown.json()["errorType"] == "bad_data"
    assert down.status_code == 503


async def test_dashboard_tests_cannot_reach_the_network():
    async with httpx.AsyncClient() as client:
        with pytest.raises(AssertionError, match="tried to reach the network"):
            await client.get("https://prometheus.example.com/api/v1/query")
