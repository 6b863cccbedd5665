"""Timestamps as GitLab (ISO 8601, ``...Z`` with milliseconds) and Kubernetes (RFC 3339)
write them."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """The time ``value`` names; None for null, empty or garbage."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
