"""The audit trail of every state-changing request: one JSON log line each (who, what, where,
result, the merge request or runner URL) and the ``attic_iac_dashboard_writes_total`` counter.
Lines are built from named fields only, so no token, cookie or request body can reach them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import Counter

Action = Literal["change_request", "pause", "resume"]
Outcome = Literal[
    "created",
    "paused",
    "resumed",
    "invalid",
    "conflict",
    "unchanged",
    "denied",
    "rate_limited",
    "duplicate",
    "error",
]

log = logging.getLogger("dashboard.audit")


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Writes audit lines and counts them in ``attic_iac_dashboard_writes_total``."""

    def __init__(self, counter: Counter, *, clock: Callable[[], datetime] = _now) -> None:
        self._counter = counter
        self._clock = clock

    def record(
        self,
        *,
        user: str,
        user_id: int,
        action: Action,
        environment: str,
        result: Outcome,
        url: str | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        """Log one audit line and count it; returns the record."""
        record: dict[str, object] = {
            "time": self._clock().isoformat(),
            "audit": True,
            "user": user,
            "user_id": user_id,
            "action": action,
            "environment": environment,
            "result": result,
            "url": url,
            "detail": detail[:300] if detail else None,
        }
        self._counter.labels(action=action, result=result).inc()
        log.info(json.dumps(record, sort_keys=True))
        return record
