"""The SSE hub: one rendering per change fanned out to every client, a snapshot then deltas,
Last-Event-ID resume, heartbeats, the client cap, slow clients dropped without slowing the
others, and streams that end on shutdown; then the same over a real HTTP listener."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from config_model.loader import LoadedConfig
from dashboard.observability import Metrics
from dashboard.sse import EventHub, HubFullError, encode_batch
from dashboard.store import FleetStore
from dashboard.views import render_live
from tests.support.dashboard_ui import (
    Clock,
    client,
    fill,
    hub_for,
    new_store,
    parse_sse,
    runner,
    serving,
    ui_app,
)

pytestmark = pytest.mark.anyio
ALL = ["sources", "fleet", "runners", "workloads", "jobs", "events", "scaling", "cache"]


@pytest.fixture
def store(example_config: LoadedConfig) -> FleetStore:
    store = new_store(example_config.environments["dev"].config, Clock())
    fill(store)
    return store


class CountingRender:
    def __init__(self) -> None:
        self.calls: list[frozenset[str] | None] = []

    def __call__(self, store, panels):
        self.calls.append(panels)
        return render_live(store, panels)


async def next_chunk(hub: EventHub, stream, timeout: float = 2.0) -> str:
    return (await asyncio.wait_for(anext(stream), timeout)).decode()


def first_chunk(client) -> str:
    chunk = client.queue.get_nowait()
    assert chunk is not None
    return chunk.decode()


def go_offline(store: FleetStore, runner_id: int = 1) -> None:
    runners = tuple(
        runner(r.id, r.runner_type, description=r.description, tags=r.tags, status="offline")
        if r.id == runner_id
        else r
        for r in store.state().runners
    )
    store.update("gitlab", runners=runners, jobs=store.state().jobs)


async def settle() -> None:
    """Let the hub's scheduled flush run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_new_stream_gets_a_snapshot_then_only_the_changed_panels(store):
    hub = hub_for(store)
    stream = hub.stream(hub.connect())
    snapshot = await next_chunk(hub, stream)
    assert snapshot.startswith("retry: 3000\n\n")
    events = parse_sse(snapshot)
    assert [e.event for e in events] == ALL
    version = store.state().version
    # only the last message of a version carries the id
    assert [e.id for e in events] == [None] * 7 + [f"{version}-{hub.epoch}"]
    assert 'data-runner-id="1" data-status="online"' in events[2].data

    go_offline(store)
    await settle()
    delta = parse_sse(await next_chunk(hub, stream))
    assert [e.event for e in delta] == ["fleet", "runners"]
    assert delta[-1].id == f"{version + 1}-{hub.epoch}"
    assert 'data-runner-id="1" data-status="offline"' in delta[1].data
    hub.shutdown()


async def test_a_change_is_rendered_once_and_the_same_bytes_go_to_every_client(store):
    render = CountingRender()
    hub = EventHub(store=store, render=render, max_clients=100, queue_size=4)
    clients = [hub.connect() for _ in range(50)]
    assert render.calls == [None]  # one snapshot rendering for all 50
    for c in clients:
        c.queue.get_nowait()
    go_offline(store)
    store.update("kubernetes", events=())
    await settle()
    assert render.calls[1:] == [frozenset({"runners", "events"})]  # coalesced, once
    payloads = [c.queue.get_nowait() for c in clients]
    assert all(p is payloads[0] for p in payloads)
    assert payloads[0] is not None
    assert [e.event for e in parse_sse(payloads[0].decode())] == ["fleet", "runners", "events"]
    hub.shutdown()


async def test_last_event_id_resumes_with_what_was_missed(store):
    hub = hub_for(store)
    hub.start()
    seen = f"{store.state().version}-{hub.epoch}"
    go_offline(store, 1)
    await settle()
    store.update("kubernetes", events=())
    await settle()
    resumed = parse_sse(first_chunk(hub.connect(seen)))
    assert [e.event for e in resumed] == ["fleet", "runners", "events"]
    assert resumed[-1].id == f"{store.state().version}-{hub.epoch}"
    # up to date: nothing but the retry line
    current = f"{store.state().version}-{hub.epoch}"
    assert hub.connect(current).queue.get_nowait() == b"retry: 3000\n\n"
    hub.shutdown()


@pytest.mark.parametrize(
    "last_id",
    [
        "1-otherepoch",  # another process: versions restarted
        "999999-{epoch}",  # from the future
        "abc-{epoch}",
        "1-{epoch}",  # older than the ring holds
    ],
)
async def test_last_event_id_that_cannot_be_resumed_gets_a_snapshot(store, last_id: str):
    hub = hub_for(store, ring_size=2)
    hub.start()
    for runner_id in (1, 2):
        go_offline(store, runner_id)
        await settle()
        store.update("kubernetes", events=())
        await settle()
    events = parse_sse(first_chunk(hub.connect(last_id.format(epoch=hub.epoch))))
    assert [e.event for e in events] == ALL
    hub.shutdown()


async def test_the_client_cap_refuses_more_streams(store):
    metrics = Metrics()
    hub = hub_for(store, max_clients=2, metrics=metrics)
    hub.connect()
    hub.connect()
    with pytest.raises(HubFullError):
        hub.connect()
    assert metrics.sse_clients._value.get() == 2
    hub.shutdown()


async def test_a_slow_client_is_dropped_while_a_fast_one_keeps_receiving(store):
    metrics = Metrics()
    hub = hub_for(store, queue_size=3, metrics=metrics)
    fast_stream = hub.stream(hub.connect())
    slow = hub.connect()  # never read
    received: list[str] = [await next_chunk(hub, fast_stream)]
    for step in range(10):
        store.update(
            "gitlab",
            runners=(runner(1, running_jobs=step),),
            jobs=store.state().jobs,
        )
        await settle()
        received.append(await next_chunk(hub, fast_stream))
    assert slow.dropped
    assert hub.clients == 1
    assert metrics.sse_dropped._value.get() == 1
    assert metrics.sse_clients._value.get() == 1
    ids = [parse_sse(chunk)[-1].id for chunk in received]
    assert len(set(ids)) == 11  # the snapshot and every one of the 10 changes
    # the dropped client's stream ends without sending what piled up
    with pytest.raises(StopAsyncIteration):
        await anext(hub.stream(slow))
    hub.shutdown()


async def test_idle_streams_get_heartbeats(store):
    hub = hub_for(store, heartbeat_seconds=0.05)
    stream = hub.stream(hub.connect())
    await next_chunk(hub, stream)
    assert await next_chunk(hub, stream) == ": heartbeat\n\n"
    hub.shutdown()


async def test_a_stream_ends_after_its_lifetime_so_the_browser_passes_the_gate_again(store):
    metrics = Metrics()
    hub = hub_for(store, stream_seconds=0.1, heartbeat_seconds=0.04, metrics=metrics)
    stream = hub.stream(hub.connect())
    chunks = [(await next_chunk(hub, stream))[:6]]
    chunks += [chunk.decode() async for chunk in stream]  # ends by itself
    assert chunks[0] == "retry:"
    assert set(chunks[1:]) == {": heartbeat\n\n"}
    assert metrics.sse_clients._value.get() == 0
    hub.shutdown()


async def test_shutdown_ends_every_stream_and_refuses_new_ones(store):
    metrics = Metrics()
    hub = hub_for(store, metrics=metrics)
    streams = [hub.stream(hub.connect()) for _ in range(3)]
    for stream in streams:
        await next_chunk(hub, stream)
    threading.Thread(target=hub.shutdown).start()  # e.g. from a signal handler's thread
    for stream in streams:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), 2)
    with pytest.raises(HubFullError):
        hub.connect()
    assert metrics.sse_clients._value.get() == 0


async def test_changes_from_another_thread_reach_the_streams(store):
    hub = hub_for(store)
    stream = hub.stream(hub.connect())
    await next_chunk(hub, stream)
    worker = threading.Thread(target=go_offline, args=(store,))
    worker.start()
    worker.join()
    delta = parse_sse(await next_chunk(hub, stream))
    assert [e.event for e in delta] == ["fleet", "runners"]
    hub.shutdown()


def test_every_line_of_a_fragment_is_its_own_data_line():
    payload = encode_batch([("runners", "<p>\na\r\nb</p>")], "7-x").decode()
    assert payload == "event: runners\ndata: <p>\ndata: a\ndata: b</p>\nid: 7-x\n\n"


def test_over_http_snapshot_delta_resume_cap_and_clean_shutdown(store):
    hub = hub_for(store, max_clients=1)
    with serving(ui_app([hub])) as base, httpx.Client(base_url=base, timeout=5) as http:
        with http.stream("GET", "/api/e/dev/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            lines = response.iter_lines()
            text = read_until_blank_after(lines, "id: ")
            last_id = parse_sse(text)[-1].id
            assert last_id is not None
            assert http.get("/api/e/dev/events").status_code == 503  # the cap is 1
            go_offline(store)
            delta = parse_sse(read_until_blank_after(lines, "id: "))
            assert [e.event for e in delta] == ["fleet", "runners"]
        # the stream closed: reconnect with the id before the change and get just the change
        wait_for(lambda: hub.clients == 0)
        with http.stream("GET", "/api/e/dev/events", headers={"Last-Event-ID": last_id}) as again:
            more = again.iter_lines()
            resumed = parse_sse(read_until_blank_after(more, "id: "))
            assert [e.event for e in resumed] == ["fleet", "runners"]
            hub.shutdown()
            rest = list(more)  # ends instead of hanging
            assert all(not line.startswith("event:") for line in rest)


def read_until_blank_after(lines, marker: str) -> str:
    """Lines up to the blank line that follows a line starting with ``marker``."""
    taken: list[str] = []
    armed = False
    for line in lines:
        taken.append(line)
        if line.startswith(marker):
            armed = True
        elif armed and line == "":
            break
    return "\n".join(taken) + "\n\n"


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


async def test_events_route_answers_503_at_the_cap(store):
    hub = hub_for(store, max_clients=1)
    hub.start()
    hub.connect()
    async with client(ui_app([hub])) as http:
        response = await http.get("/api/e/dev/events")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "15"
    hub.shutdown()
