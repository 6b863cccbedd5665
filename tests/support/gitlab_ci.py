"""GitLab CI YAML as GitLab reads it, for the tests of our pipeline and components."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from config_model.base import deep_merge


def resolve_extends(jobs: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Job ``name`` with its ``extends`` applied as GitLab does: parents in order, then the job;
    hashes merge deeply, everything else is replaced. The result shares nothing with ``jobs``."""
    job = jobs[name]
    parents = job.get("extends", [])
    result: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        result = deep_merge(result, resolve_extends(jobs, parent))
    own = {key: value for key, value in job.items() if key != "extends"}
    return copy.deepcopy(deep_merge(result, own))
