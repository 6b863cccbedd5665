"""A fake Kubernetes API server: namespaced list, get and watch of the kinds the dashboard
reads, with resource versions, bookmarks and expiry as the real one has them.

A watch (``?watch=1``) streams newline-delimited JSON WatchEvents: from ``resourceVersion``
on (or the current objects as ADDED without one), BOOKMARKs when asked for, and for a
version older than the fake still remembers a single ERROR event with a 410 ``Expired``
Status, as the API server's watch cache answers (HTTP 200, then the error).

Tests change objects with :meth:`FakeKubernetes.put` and :meth:`FakeKubernetes.delete` from
any thread; open watches receive the events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dashboard.fakes.k8s_objects import timestamp
from dashboard.fakes.k8s_selectors import matches

# resource -> (API path prefix, kind, apiVersion)
RESOURCES: dict[str, tuple[str, str, str]] = {
    "pods": ("/api/v1", "Pod", "v1"),
    "events": ("/api/v1", "Event", "v1"),
    "configmaps": ("/api/v1", "ConfigMap", "v1"),
    "deployments": ("/apis/apps/v1", "Deployment", "apps/v1"),
    "replicasets": ("/apis/apps/v1", "ReplicaSet", "apps/v1"),
    "horizontalpodautoscalers": (
        "/apis/autoscaling/v2",
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
    ),
}
_END = None
# Requests remembered for tests (bounded: the demo runs for days).
REQUEST_LOG = 10_000


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``Status`` object, the body of every API error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class _Watch:
    resource: str
    namespace: str
    label_selector: str
    field_selector: str
    bookmarks: bool
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any] | None]


class FakeKubernetes:
    """Objects per (resource, namespace), a resource version counter and its history."""

    def __init__(
        self,
        *,
        token: str,
        rbac: Mapping[str, Iterable[str]] | None = None,
        history_limit: int = 1000,
        bookmark_interval: float = 60.0,
        user: str = "system:serviceaccount:dashboard:dashboard",
    ) -> None:
        """``rbac``: resource -> namespaces it may be read in (None: everything)."""
        self.token = token
        self.rbac = {k: frozenset(v) for k, v in rbac.items()} if rbac is not None else None
        self.history_limit = history_limit
        self.bookmark_interval = bookmark_interval
        self.user = user
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.resource_version = 1
        self.oldest_version = 1
        self.history: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.requests: deque[tuple[str, str]] = deque(maxlen=REQUEST_LOG)
        self._watches: list[_Watch] = []
        self._fail_next: list[int] = []
        self._outage: int | None = None
        self._uids = itertools.count(1)

    def build_app(self) -> Starlette:
        """A new ASGI app answering as this API server (one per server)."""
        return Starlette(
            routes=[
                Route("/api/v1/namespaces/{namespace}/{resource}", self._collection),
                Route("/api/v1/namespaces/{namespace}/{resource}/{name}", self._item),
                Route(
                    "/apis/{group}/{version}/namespaces/{namespace}/{resource}",
                    self._collection,
                ),
                Route(
                    "/apis/{group}/{version}/namespaces/{namespace}/{resource}/{name}",
                    self._item,
                ),
            ]
        )

    # --- changes ----------------------------------------------------------------------------

    def put(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object (ADDED or MODIFIED to watchers); returns it as stored."""
        with self.lock:
            meta = obj["metadata"]
            bucket = self.objects.setdefault((resource, meta["namespace"]), {})
            old = bucket.get(meta["name"])
            self.resource_version += 1
            stored: dict[str, Any] = json.loads(json.dumps(obj))
            _, kind, api_version = RESOURCES[resource]
            stored["kind"], stored["apiVersion"] = kind, api_version
            stored["metadata"]["resourceVersion"] = str(self.resource_version)
            stored["metadata"]["uid"] = (
                old["metadata"]["uid"] if old else str(uuid.UUID(int=next(self._uids)))
            )
            stored["metadata"].setdefault(
                "creationTimestamp",
                old["metadata"]["creationTimestamp"] if old else timestamp(datetime.now(UTC)),
            )
            bucket[meta["name"]] = stored
            self._record(resource, "MODIFIED" if old else "ADDED", stored, old)
            return stored

    def delete(self, resource: str, namespace: str, name: str) -> None:
        with self.lock:
            old = self.objects.get((resource, namespace), {}).pop(name)
            self.resource_version += 1
            gone = json.loads(json.dumps(old))
            gone["metadata"]["resourceVersion"] = str(self.resource_version)
            self._record(resource, "DELETED", gone, old)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get((resource, namespace), {}).get(name)
            return json.loads(json.dumps(found)) if found else None

    def compact(self) -> None:
        """Forget every version so far, as etcd compaction does: open watches get a 410
        ERROR and end, and watching from any older version is refused."""
        with self.lock:
            self.oldest_version = self.resource_version
            self.history.clear()
            expired = _expired(self.resource_version, self.oldest_version)
            for watch in list(self._watches):
                self._send(watch, expired)
                self._send(watch, _END)

    def bookmark(self) -> None:
        """Send a BOOKMARK to every watch that allows them."""
        with self.lock:
            for watch in self._watches:
                if watch.bookmarks:
                    self._send(watch, self._bookmark(watch.resource))

    def close_watches(self) -> None:
        """End every open watch, as the API server does at its timeout."""
        with self.lock:
            for watch in list(self._watches):
                self._send(watch, _END)

    def watch_count(self) -> int:
        with self.lock:
            return len(self._watches)

    def fail_next(self, count: int, code: int = 503) -> None:
        with self.lock:
            self._fail_next.extend([code] * count)

    def set_outage(self, on: bool, code: int = 503) -> None:
        """Every request answers ``code`` and open watches end, until switched off."""
        with self.lock:
            self._outage = code if on else None
        if on:
            self.close_watches()

    # --- internals --------------------------------------------------------------------------

    def _record(
        self, resource: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        namespace = obj["metadata"]["namespace"]
        self.history.append((self.resource_version, resource, namespace, kind, obj))
        if len(self.history) > self.history_limit:
            dropped = self.history.pop(0)
            self.oldest_version = dropped[0]
        for watch in self._watches:
            if watch.resource != resource or watch.namespace != namespace:
                continue
            event = _filtered(watch, kind, obj, old)
            if event is not None:
                self._send(watch, event)

    def _send(self, watch: _Watch, event: dict[str, Any] | None) -> None:
        try:
            watch.loop.call_soon_threadsafe(watch.queue.put_nowait, event)
        except RuntimeError:
            # The server's loop is gone (stopped): nobody reads this watch any more.
            self._watches.remove(watch)

    def _bookmark(self, resource: str) -> dict[str, Any]:
        _, kind, api_version = RESOURCES[resource]
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self.resource_version)},
            },
        }

    def _refusal(self, request: Request) -> JSONResponse | None:
        """The error this request gets before any object is read, if any."""
        with self.lock:
            query = request.url.query
            self.requests.append(
                (request.method, request.url.path + (f"?{query}" if query else ""))
            )
            code = self._outage or (self._fail_next.pop(0) if self._fail_next else None)
        if code is not None:
            return JSONResponse(
                status(code, "ServiceUnavailable", "the server is currently unable to handle"),
                status_code=code,
            )
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse(status(401, "Unauthorized", "Unauthorized"), status_code=401)
        resource = request.path_params["resource"]
        namespace = request.path_params["namespace"]
        prefix = RESOURCES.get(resource, ("",))[0]
        if not request.url.path.startswith(prefix + "/namespaces/"):
            return JSONResponse(
                status(404, "NotFound", "the server could not find the requested resource"),
                status_code=404,
            )
        if self.rbac is not None and namespace not in self.rbac.get(resource, ()):
            group = prefix.split("/")[2] if prefix.startswith("/apis/") else ""
            message = (
                f'{resource} is forbidden: User "{self.user}" cannot list resource '
                f'"{resource}" in API group "{group}" in the namespace "{namespace}"'
            )
            return JSONResponse(status(403, "Forbidden", message), status_code=403)
        return None

    async def _item(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        params = request.path_params
        found = self.get(params["resource"], params["namespace"], params["name"])
        if found is None:
            message = f'{params["resource"]} "{params["name"]}" not found'
            return JSONResponse(status(404, "NotFound", message), status_code=404)
        return JSONResponse(found)

    async def _collection(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        resource = request.path_params["resource"]
        namespace = request.path_params["namespace"]
        query = request.query_params
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        if query.get("watch") in ("1", "true"):
            return self._watch(request, resource, namespace, labels, fields)
        with self.lock:
            items = [
                json.loads(json.dumps(obj))
                for obj in self.objects.get((resource, namespace), {}).values()
                if matches(obj, labels, fields)
            ]
            version = self.resource_version
        _, kind, api_version = RESOURCES[resource]
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return JSONResponse(
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(version)},
                "items": items,
            }
        )

    def _watch(
        self, request: Request, resource: str, namespace: str, labels: str, fields: str
    ) -> StreamingResponse:
        query = request.query_params
        since = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        watch = _Watch(
            resource=resource,
            namespace=namespace,
            label_selector=labels,
            field_selector=fields,
            bookmarks=query.get("allowWatchBookmarks") in ("1", "true"),
            loop=asyncio.get_running_loop(),
            queue=asyncio.Queue(),
        )
        with self.lock:
            first = self._start(watch, since)
        return StreamingResponse(self._stream(watch, first, timeout), media_type="application/json")

    def _start(self, watch: _Watch, since: str) -> list[dict[str, Any]]:
        """The events a new watch starts with; registers it unless it ends at once."""
        if since and since != "0":
            version = int(since) if since.isdigit() else 0
            if version < self.oldest_version:
                return [_expired(version, self.oldest_version)]
            first = [
                {"type": kind, "object": obj}
                for rv, resource, namespace, kind, obj in self.history
                if rv > version
                and resource == watch.resource
                and namespace == watch.namespace
                and matches(obj, watch.label_selector, watch.field_selector)
            ]
        else:
            first = [
                {"type": "ADDED", "object": obj}
                for obj in self.objects.get((watch.resource, watch.namespace), {}).values()
                if matches(obj, watch.label_selector, watch.field_selector)
            ]
        self._watches.append(watch)
        return first

    async def _stream(
        self, watch: _Watch, first: list[dict[str, Any]], timeout: float
    ) -> AsyncIterator[bytes]:
        deadline = watch.loop.time() + timeout
        try:
            for event in first:
                yield _line(event)
            if first and first[0]["type"] == "ERROR":
                return
            while (left := deadline - watch.loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(
                        watch.queue.get(), min(left, self.bookmark_interval)
                    )
                except TimeoutError:
                    if watch.bookmarks and watch.loop.time() < deadline:
                        with self.lock:
                            bookmark = self._bookmark(watch.resource)
                        yield _line(bookmark)
                    continue
                if item is _END:
                    return
                yield _line(item)
        finally:
            with self.lock:
                if watch in self._watches:
                    self._watches.remove(watch)


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _expired(version: int, oldest: int) -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": status(410, "Expired", f"too old resource version: {version} ({oldest})"),
    }


def _filtered(
    watch: _Watch, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The event a watch with selectors sees: an object moving into or out of the selection
    is ADDED or DELETED for it."""
    now = matches(obj, watch.label_selector, watch.field_selector)
    before = old is not None and matches(old, watch.label_selector, watch.field_selector)
    if kind == "DELETED":
        return {"type": "DELETED", "object": obj} if before else None
    if now and before:
        return {"type": "MODIFIED", "object": obj}
    if now:
        return {"type": "ADDED", "object": obj}
    if before:
        return {"type": "DELETED", "object": obj}
    return None
