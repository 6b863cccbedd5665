"""Kubernetes collector: pods, warning events, Deployments and HPAs of the watched namespaces,
each kept current by list then watch, never by polling.

One stream per (resource, namespace): list, then watch from the list's resourceVersion with
bookmarks; a watch that ends is resumed from the last version seen, a 410 Expired (as an
ERROR event or an HTTP status) relists, and errors back off before retrying. The store only
gets data when every stream has listed and none is failing, so what it shows is either whole
and current or marked stale with the error; changes within ``flush_delay`` go out together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from config_model.wiring import dashboard_namespaces
from dashboard.sources import k8s_objects
from dashboard.sources.polling import Retry, default_retry
from dashboard.store import FleetStore

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# resource -> (API path prefix, store part, extra list/watch parameters)
WATCHED: dict[str, tuple[str, str, dict[str, str]]] = {
    "pods": ("/api/v1", "pods", {}),
    "events": ("/api/v1", "events", {"fieldSelector": "type=Warning"}),
    "deployments": ("/apis/apps/v1", "deployments", {}),
    "horizontalpodautoscalers": ("/apis/autoscaling/v2", "hpas", {}),
}


def api_group(prefix: str) -> str:
    """The API group of an API path prefix: ``""`` (core) for ``/api/v1``, else ``<group>`` of
    ``/apis/<group>/<version>``."""
    return prefix.split("/")[2] if prefix.startswith("/apis/") else ""


# (API group, resource) of everything this collector lists and watches in every watched
# namespace: exactly what the dashboard stack's Roles grant, nothing more (a test holds the two
# equal). The dashboard reads nothing else from the Kubernetes API.
READ_RESOURCES: frozenset[tuple[str, str]] = frozenset(
    (api_group(prefix), resource) for resource, (prefix, _, _) in WATCHED.items()
)
MAX_EVENTS = 50


class KubernetesError(Exception):
    """A list or watch failed; the message names the stream and the API's answer."""


class ExpiredError(Exception):
    """The resource version is too old to watch from: list again."""


@dataclass(frozen=True, kw_only=True)
class Connection:
    """How to reach the API server: URL, a token read anew for every request (projected
    service-account tokens rotate), and the CA to trust."""

    url: str
    token: Callable[[], str | None]
    ca_file: Path | None = None


def in_cluster(
    environ: Mapping[str, str] = os.environ, account: Path = SERVICE_ACCOUNT
) -> Connection:
    """The pod's own service account, as client libraries find it in a cluster."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubernetesError(
            "not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset; set DASHBOARD_KUBERNETES_URL"
        )
    host = f"[{host}]" if ":" in host else host
    token_file = account / "token"
    return Connection(
        url=f"https://{host}:{port}",
        token=lambda: token_file.read_text().strip() if token_file.exists() else None,
        ca_file=account / "ca.crt",
    )


class _BearerAuth(httpx.Auth):
    def __init__(self, token: Callable[[], str | None]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if value := self._token():
            request.headers["Authorization"] = f"Bearer {value}"
        yield request


def _error(stream: str, response: httpx.Response, body: bytes) -> KubernetesError:
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    detail = f": {str(message)[:300]}" if message else ""
    return KubernetesError(f"{stream}: {response.status_code} {response.reason_phrase}{detail}")


class _Fleet:
    """The objects of every stream, and when to hand them to the store."""

    def __init__(self, store: FleetStore, streams: Sequence[tuple[str, str]], delay: float):
        self.store, self.delay = store, delay
        self.objects: dict[tuple[str, str], dict[str, dict[str, Any]] | None] = dict.fromkeys(
            streams
        )
        self.errors: dict[tuple[str, str], str] = {}
        self._scheduled: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        self._scheduled = None
        if self.errors:
            self.store.failed("kubernetes", next(iter(self.errors.values())))
            return
        if any(objects is None for objects in self.objects.values()):
            return
        by_resource: dict[str, list[dict[str, Any]]] = {r: [] for r in WATCHED}
        for (resource, _), objects in self.objects.items():
            by_resource[resource].extend((objects or {}).values())
        events = [e for obj in by_resource["events"] if (e := k8s_objects.event(obj))]
        events.sort(key=lambda e: e.last_seen, reverse=True)
        self.store.update(
            "kubernetes",
            pods=tuple(sorted(map(k8s_objects.pod, by_resource["pods"]), key=_key)),
            deployments=tuple(
                sorted(map(k8s_objects.deployment, by_resource["deployments"]), key=_key)
            ),
            hpas=tuple(
                sorted(map(k8s_objects.hpa, by_resource["horizontalpodautoscalers"]), key=_key)
            ),
            events=tuple(events[:MAX_EVENTS]),
        )


def _key(record: Any) -> tuple[str, str]:
    return record.namespace, record.name


async def _list(
    http: httpx.AsyncClient, path: str, params: dict[str, str], stream: str
) -> tuple[dict[str, dict[str, Any]], str]:
    response = await http.get(path, params=params)
    if response.status_code == 410:
        raise ExpiredError
    if response.status_code != 200:
        raise _error(stream, response, response.content)
    body = response.json()
    items = {item["metadata"]["name"]: item for item in body.get("items") or []}
    return items, str(body["metadata"]["resourceVersion"])


async def _follow(
    http: httpx.AsyncClient,
    fleet: _Fleet,
    resource: str,
    namespace: str,
    *,
    watch_timeout: int,
    retry: Retry,
) -> None:
    """Keep one stream's objects current until cancelled."""
    prefix, _, extra = WATCHED[resource]
    path, stream = f"{prefix}/namespaces/{namespace}/{resource}", f"{resource} in {namespace}"
    key = (resource, namespace)
    version: str | None = None
    failures = 0
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            if version is None:
                objects, version = await _list(http, path, extra, stream)
                fleet.objects[key] = objects
                fleet.errors.pop(key, None)
                fleet.changed()
            version = await _watch(
                http, fleet, key, path=path, stream=stream, version=version, timeout=watch_timeout
            )
            failures = 0
            if loop.time() - started < 1.0:
                # A server that ends watches at once must not make us spin.
                await asyncio.sleep(retry.first)
        except ExpiredError:
            log.info("%s: resource version expired, listing again", stream)
            version = None
        except Exception as error:
            failures += 1
            fleet.errors[key] = _describe(stream, error)
            log.warning("kubernetes stream failing: %s", fleet.errors[key])
            fleet.changed()
            await asyncio.sleep(retry.delay(failures))


def _describe(stream: str, error: Exception) -> str:
    """What the banner says about a failed stream (never a URL or a token)."""
    if isinstance(error, KubernetesError):
        return str(error)
    if isinstance(error, httpx.TimeoutException):
        return f"{stream}: timed out"
    if isinstance(error, httpx.HTTPError):
        return f"{stream}: {type(error).__name__}"
    log.exception("kubernetes stream %s failed", stream)
    return f"{stream}: unexpected {type(error).__name__} (see the dashboard's log)"


async def _watch(
    http: httpx.AsyncClient,
    fleet: _Fleet,
    key: tuple[str, str],
    *,
    path: str,
    stream: str,
    version: str,
    timeout: int,
) -> str:
    """Apply watch events from ``version`` until the server ends the stream; returns the
    last version seen."""
    params = {
        **WATCHED[key[0]][2],
        "watch": "1",
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(timeout),
    }
    # A watch is quiet between events: wait past the server's own timeout for the next one.
    quiet = httpx.Timeout(http.timeout.connect, read=timeout + 30.0)
    async with http.stream("GET", path, params=params, timeout=quiet) as response:
        if response.status_code == 410:
            raise ExpiredError
        if response.status_code != 200:
            raise _error(stream, response, await response.aread())
        if fleet.errors.pop(key, None) is not None:
            fleet.changed()
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise ExpiredError
                raise KubernetesError(f"{stream}: watch error {obj.get('message', '')}")
            version = str(obj["metadata"]["resourceVersion"])
            if kind == "BOOKMARK":
                continue
            objects = fleet.objects[key]
            if objects is None:
                continue
            if kind == "DELETED":
                objects.pop(obj["metadata"]["name"], None)
            else:
                objects[obj["metadata"]["name"]] = obj
            fleet.changed()
    return version


async def run_kubernetes(
    store: FleetStore,
    *,
    connection: Connection | None = None,
    namespaces: Sequence[str] | None = None,
    watch_timeout: int = 300,
    flush_delay: float = 1.0,
    retry: Retry | None = None,
    timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Watch the config's namespaces (:func:`config_model.wiring.dashboard_namespaces`)
    through ``connection`` (default: in-cluster) until cancelled."""
    if connection is None:
        try:
            connection = in_cluster()
        except KubernetesError as error:
            store.failed("kubernetes", str(error))
            return
    namespaces = list(namespaces or dashboard_namespaces(store.config))
    streams = [(resource, ns) for ns in namespaces for resource in WATCHED]
    fleet = _Fleet(store, streams, flush_delay)
    verify: ssl.SSLContext | bool = True
    if connection.ca_file is not None and connection.ca_file.exists():
        verify = ssl.create_default_context(cafile=str(connection.ca_file))
    async with httpx.AsyncClient(
        base_url=connection.url.rstrip("/"),
        auth=_BearerAuth(connection.token),
        verify=verify,
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"Accept": "application/json"},
    ) as http:
        retry = retry or default_retry(10.0)
        async with asyncio.TaskGroup() as group:
            for resource, namespace in streams:
                group.create_task(
                    _follow(
                        http,
                        fleet,
                        resource,
                        namespace,
                        watch_timeout=watch_timeout,
                        retry=retry,
                    )
                )
