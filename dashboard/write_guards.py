"""Guards every state-changing request passes before it reaches GitLab: the same-site check, a
per-user rate limit, and idempotency so a double submit (a second click, a resent form) returns
the first outcome instead of opening a second merge request or pausing twice."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from starlette.requests import Request

T = TypeVar("T")
KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def same_site(request: Request, public_url: str) -> bool:
    """The browser says this site sent the form: Origin (a real one), else Sec-Fetch-Site,
    else Referer. A request that says nothing is refused."""
    origin = request.headers.get("origin")
    if origin not in (None, "null"):
        return origin.rstrip("/") == public_url
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    referer = urlsplit(request.headers.get("referer", ""))
    return bool(referer.netloc) and f"{referer.scheme}://{referer.netloc}" == public_url


class RateLimiter:
    """At most ``limit`` writes per user in any ``window`` seconds."""

    def __init__(
        self, *, limit: int = 10, window: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._seen: dict[int, deque[float]] = {}

    def allow(self, user_id: int) -> bool:
        """Count one write for ``user_id`` if it is under the limit."""
        now = self._clock()
        seen = self._seen.setdefault(user_id, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


class Idempotency(Generic[T]):
    """Runs each (user, key) once within ``ttl`` seconds; a repeat waits for and returns the
    first run's outcome. A run that raised is forgotten, so it can be retried."""

    def __init__(self, *, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._runs: dict[tuple[int, str], tuple[float, asyncio.Future[T]]] = {}

    async def run(
        self, user_id: int, key: str, action: Callable[[], Awaitable[T]]
    ) -> tuple[T, bool]:
        """``(outcome, repeated)``: the outcome of ``action``, run now or by an earlier
        request with the same key."""
        if not KEY.match(key):
            raise ValueError("idempotency key: 16-64 letters, digits, '-' or '_'")
        now = self._clock()
        self._runs = {k: v for k, v in self._runs.items() if v[0] > now - self.ttl}
        earlier = self._runs.get((user_id, key))
        if earlier is not None:
            return await asyncio.shield(earlier[1]), True
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._runs[(user_id, key)] = (now, future)
        try:
            outcome = await action()
        except BaseException as error:
            self._runs.pop((user_id, key), None)
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        future.set_result(outcome)
        return outcome, False
