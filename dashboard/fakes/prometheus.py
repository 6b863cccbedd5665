"""A fake Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``) that answers the
dashboard's own queries (:func:`dashboard.sources.prometheus.queries`) from data a test or
the demo sets.

A query it has no data for is answered with Prometheus' error shape (``bad_data``), not an
empty result: a query string that drifted from the data would otherwise pass silently.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Value = float | Callable[[float], float]
MAX_POINTS = 11000
# Requests remembered for tests (bounded: the demo runs for days).
REQUEST_LOG = 10_000


def _format(value: float) -> str:
    """Prometheus' sample text: ``NaN``, ``+Inf``, integers without ``.0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "errorType": kind, "error": message}, status_code=status
    )


class FakePrometheus:
    """Query string -> series (labels and a constant or a function of time)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.data: dict[str, list[tuple[dict[str, str], Value]]] = {}
        self.requests: deque[tuple[str, str]] = deque(maxlen=REQUEST_LOG)
        self._fail_next: list[int] = []
        self._outage: int | None = None

    def set(self, query: str, samples: Sequence[tuple[Mapping[str, str], Value]]) -> None:
        """Answer ``query`` with these series ([]: a known query with no series)."""
        with self.lock:
            self.data[query] = [(dict(labels), value) for labels, value in samples]

    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self._fail_next.extend([status] * count)

    def set_outage(self, on: bool, status: int = 503) -> None:
        with self.lock:
            self._outage = status if on else None

    def build_app(self) -> Starlette:
        """A new ASGI app answering as this Prometheus."""
        return Starlette(
            routes=[
                Route("/api/v1/query", self._query, methods=["GET", "POST"]),
                Route("/api/v1/query_range", self._query_range, methods=["GET", "POST"]),
            ]
        )

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        return params

    def _series(
        self, request: Request, params: dict[str, str]
    ) -> list[tuple[dict[str, str], Value]] | JSONResponse:
        with self.lock:
            self.requests.append((request.url.path, params.get("query", "")))
            code = self._outage or (self._fail_next.pop(0) if self._fail_next else None)
            found = self.data.get(params.get("query", ""))
        if code is not None:
            return _error(code, "unavailable", "fake prometheus is unavailable")
        if not params.get("query"):
            return _error(400, "bad_data", 'invalid parameter "query": query is empty')
        if found is None:
            return _error(
                400, "bad_data", f"fake prometheus has no data for query {params['query']!r}"
            )
        return found

    async def _query(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        found = self._series(request, params)
        if isinstance(found, JSONResponse):
            return found
        at = float(params.get("time") or self.clock())
        result = [
            {"metric": labels, "value": [at, _format(_at(value, at))]} for labels, value in found
        ]
        return _success("vector", result)

    async def _query_range(self, request: Request) -> JSONResponse:
        params = await self._params(request)
        found = self._series(request, params)
        if isinstance(found, JSONResponse):
            return found
        try:
            start, end = float(params["start"]), float(params["end"])
            step = float(params["step"])
        except (KeyError, ValueError):
            return _error(400, "bad_data", 'invalid parameter "start", "end" or "step"')
        if step <= 0 or end < start:
            return _error(400, "bad_data", "zero or negative query resolution step widths")
        if (end - start) / step > MAX_POINTS:
            return _error(
                400,
                "bad_data",
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                "the query resolution (?step=XX)",
            )
        times = [start + i * step for i in range(int((end - start) / step) + 1)]
        result = [
            {"metric": labels, "values": [[t, _format(_at(value, t))] for t in times]}
            for labels, value in found
        ]
        return _success("matrix", result)


def _at(value: Value, when: float) -> float:
    return value(when) if callable(value) else float(value)


def _success(kind: str, result: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"status": "success", "data": {"resultType": kind, "result": result}})
