"""The polling loop of the GitLab and Prometheus collectors: collect, write the store, wait;
on failure keep the last data, mark the source failing and try again sooner, backing off so
a source that is down is not hammered and a short blip costs little staleness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dashboard.model import SourceName
from dashboard.store import FleetStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Retry:
    """Exponential delays from ``first`` seconds, doubling per failure up to ``maximum``."""

    first: float
    maximum: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
        return float(min(self.maximum, self.first * 2 ** max(0, failures - 1)))


def default_retry(interval: float) -> Retry:
    """First retry after 5 s (or the interval, if shorter), at most every 2 minutes."""
    return Retry(first=min(interval, 5.0), maximum=max(interval, 120.0))


async def poll(
    store: FleetStore,
    source: SourceName,
    collect: Callable[[], Awaitable[dict[str, Any]]],
    *,
    interval: float,
    retry: Retry,
    errors: tuple[type[Exception], ...],
) -> None:
    """Run ``collect`` every ``interval`` seconds until cancelled. ``errors`` mark the source
    failing with their message (which must hold no secret); any other exception with its
    type only, so a surprise never ends the collector."""
    failures = 0
    while True:
        try:
            parts = await collect()
        except Exception as error:
            failures += 1
            if isinstance(error, errors):
                log.warning("%s source failing: %s", source, error)
                message = str(error)
            else:
                # A bug or an answer of a shape nobody expected: keep collecting, say so.
                log.exception("%s collector failed", source)
                message = f"unexpected {type(error).__name__} (see the dashboard's log)"
            store.failed(source, message)
            await asyncio.sleep(retry.delay(failures))
            continue
        failures = 0
        store.update(source, **parts)
        await asyncio.sleep(interval)
