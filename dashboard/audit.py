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
WRITES = Counter(
    "attic_iac_dashboard_writes",
    "State-changing requests by action and result (created/paused/resumed = done).",
    ["action", "result"],
)


def _now() -> datetime:
    return datetime.now(UTC)


def audit(
    *,
    user: str,
    user_id: int,
    action: Action,
    environment: str,
    result: Outcome,
    url: str | None = None,
    detail: str | None = None,
    clock: Callable[[], datetime] = _now,
) -> dict[str, object]:
    """Log one audit line and count it; returns the record (for tests and the caller)."""
    record: dict[str, object] = {
        "time": clock().isoformat(),
        "audit": True,
        "user": user,
        "user_id": user_id,
        "action": action,
        "environment": environment,
        "result": result,
        "url": url,
        "detail": detail[:300] if detail else None,
    }
    WRITES.labels(action=action, result=result).inc()
    log.info(json.dumps(record, sort_keys=True))
    return record
