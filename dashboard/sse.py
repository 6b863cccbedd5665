"""Live updates over Server-Sent Events: one hub per environment fans one rendering out to
every open browser.

When the store changes, the hub renders the changed panels once, on the event loop, and hands
the same bytes to every client's bounded queue; a client whose queue is full is dropped (its
browser reconnects and resumes), so a slow reader never delays the others and the cost of a
change does not grow with the viewers beyond one queue append each. A new stream starts with a
snapshot of every panel; a reconnecting one (``Last-Event-ID``) gets only what it missed while
the ring buffer still holds it. A stream also ends after ``stream_seconds`` (five minutes), so
the browser reconnects through the session gate, which re-checks the session and its role: a
signed-out or demoted user stops receiving updates. Event ids are ``<store version>-<hub
epoch>``: the epoch (random per process) stops a browser from resuming against a restarted
server whose versions restarted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from dashboard.observability import Metrics
from dashboard.store import FleetStore

log = logging.getLogger(__name__)

HEARTBEAT = b": heartbeat\n\n"
RETRY_MS = 3000

# (panels changed in the store, or None for all) -> [(event name, HTML fragment)]
Renderer = Callable[[FleetStore, frozenset[str] | None], list[tuple[str, str]]]


class HubFullError(Exception):
    """The client cap is reached (or the hub is shutting down): answer 503."""


def encode_event(name: str, html: str, event_id: str | None = None) -> bytes:
    """One SSE message; every line of ``html`` becomes a ``data:`` line."""
    lines = [f"event: {name}", *(f"data: {line}" for line in html.splitlines() or [""])]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    return ("\n".join(lines) + "\n\n").encode()


def encode_batch(fragments: list[tuple[str, str]], event_id: str) -> bytes:
    """Fragments of one version; only the last message carries the id, so a stream cut in the
    middle resumes from the previous version and loses nothing."""
    if not fragments:
        return f"id: {event_id}\ndata:\n\n".encode()
    last = len(fragments) - 1
    return b"".join(
        encode_event(name, html, event_id if index == last else None)
        for index, (name, html) in enumerate(fragments)
    )


@dataclass(frozen=True, kw_only=True)
class _Batch:
    """What changed between ``previous`` and ``version``, already encoded."""

    previous: int
    version: int
    payload: bytes


@dataclass(kw_only=True, eq=False)
class Client:
    """One open stream: its queue of encoded chunks (None ends the stream)."""

    queue: asyncio.Queue[bytes | None]
    dropped: bool = False
    closed: bool = False


class EventHub:
    """The SSE fan-out of one environment's store."""

    def __init__(
        self,
        *,
        store: FleetStore,
        render: Renderer,
        max_clients: int,
        queue_size: int,
        ring_size: int = 256,
        heartbeat_seconds: float = 15.0,
        stream_seconds: float = 300.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        # sse_clients and sse_dropped: the app's /metrics registry, else one of the hub's own.
        self.metrics = metrics or Metrics()
        self._render = render
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.stream_seconds = stream_seconds
        self.epoch = secrets.token_hex(4)
        self._ring: deque[_Batch] = deque(maxlen=ring_size)
        self._clients: set[Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._version = 0
        self._snapshot: tuple[int, bytes] | None = None
        self._pending: set[str] = set()
        self._scheduled = False
        self._lock = threading.Lock()
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running event loop and follow the store (idempotent; the first
        connection calls it if the app's lifespan did not)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._version = self.store.state().version
        self._unsubscribe = self.store.subscribe(self._changed)

    def shutdown(self) -> None:
        """End every stream cleanly and refuse new ones; safe from any thread (a signal
        handler), idempotent. Browsers reconnect to whichever instance serves next."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._closing = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._close_all()
        else:
            loop.call_soon_threadsafe(self._close_all)

    def _close_all(self) -> None:
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self._clients):
            self._end(client)
            # a full queue still ends: the stream checks ``closed`` after each chunk
            if not client.queue.full():
                client.queue.put_nowait(None)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- store side --------------------------------------------------------------------------

    def _changed(self, version: int, panels: frozenset[str]) -> None:
        """Store callback, from whichever thread changed the store: coalesce, then render
        once on the loop."""
        del version  # the flush reads the newest state; ids come from it
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            self._pending |= panels
            if self._scheduled:
                return
            self._scheduled = True
        loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            panels = frozenset(self._pending)
            self._pending.clear()
            self._scheduled = False
        if self._closing:
            return
        version = self.store.state().version
        if version <= self._version or not panels:
            return
        try:
            fragments = self._render(self.store, panels)
        except Exception:
            log.exception("rendering live panels failed; clients resync on the next change")
            self._ring.clear()
            self._snapshot = None
            return
        batch = _Batch(
            previous=self._version,
            version=version,
            payload=encode_batch(fragments, self._event_id(version)),
        )
        self._ring.append(batch)
        self._version = version
        self._snapshot = None
        for client in list(self._clients):
            self._offer(client, batch.payload)

    def _event_id(self, version: int) -> str:
        return f"{version}-{self.epoch}"

    # -- client side -------------------------------------------------------------------------

    def connect(self, last_event_id: str | None = None) -> Client:
        """Register a stream (raises :class:`HubFullError` at the cap): its queue starts with a
        snapshot, or with the missed batches when ``last_event_id`` can be resumed."""
        self.start()
        if self._closing or len(self._clients) >= self.max_clients:
            raise HubFullError
        client = Client(queue=asyncio.Queue(maxsize=self.queue_size))
        missed = self._missed(last_event_id)
        first = missed if missed is not None else self._snapshot_payload()
        client.queue.put_nowait(f"retry: {RETRY_MS}\n\n".encode() + first)
        self._clients.add(client)
        self.metrics.sse_clients.inc()
        return client

    def _missed(self, last_event_id: str | None) -> bytes | None:
        """The batches after ``last_event_id``, or None when only a snapshot is safe."""
        if not last_event_id:
            return None
        version_text, _, epoch = last_event_id.strip().partition("-")
        if epoch != self.epoch or not version_text.isdigit():
            return None
        seen = int(version_text)
        if seen > self._version:
            return None
        if seen == self._version:
            return b""
        if not self._ring or self._ring[0].previous > seen:
            return None
        return b"".join(batch.payload for batch in self._ring if batch.version > seen)

    def _snapshot_payload(self) -> bytes:
        """Every panel at the current version; rendered once per version however many
        browsers connect."""
        if self._snapshot is None or self._snapshot[0] != self._version:
            fragments = self._render(self.store, None)
            self._snapshot = (self._version, encode_batch(fragments, self._event_id(self._version)))
        return self._snapshot[1]

    def _offer(self, client: Client, payload: bytes) -> None:
        if client.queue.full():
            client.dropped = True
            self.metrics.sse_dropped.inc()
            log.info("dropped a slow SSE client (queue of %d full)", self.queue_size)
            self._end(client)
            return
        client.queue.put_nowait(payload)

    def _end(self, client: Client) -> None:
        if client.closed:
            return
        client.closed = True
        self._clients.discard(client)
        self.metrics.sse_clients.dec()

    async def stream(self, client: Client) -> AsyncIterator[bytes]:
        """The response body of one client: queued chunks, a heartbeat comment when idle,
        until dropped, shut down or ``stream_seconds`` old."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stream_seconds
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    return
                try:
                    wait = min(self.heartbeat_seconds, left)
                    chunk = await asyncio.wait_for(client.queue.get(), wait)
                except TimeoutError:
                    if client.closed or loop.time() >= deadline:
                        return
                    yield HEARTBEAT
                    continue
                if chunk is None or client.dropped or self._closing:
                    return
                chunks = [chunk]
                while not client.queue.empty():
                    more = client.queue.get_nowait()
                    if more is None:
                        break
                    chunks.append(more)
                yield b"".join(chunks)
                if client.closed:
                    return
        finally:
            self._end(client)
