"""Label and field selectors as the Kubernetes API evaluates them, for the fake API server.

Labels: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``.
Fields: ``path=v``, ``path==v``, ``path!=v`` on dotted paths (``metadata.name``, ``type``,
``status.phase``, ``involvedObject.kind``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _requirements(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _label_ok(labels: Mapping[str, str], requirement: str) -> bool:
    if found := _SET.match(requirement):
        key, op, values = found.groups()
        options = {v.strip() for v in values.split(",")}
        inside = labels.get(key) in options
        return inside if op == "in" else not inside
    if "!=" in requirement:
        key, value = (s.strip() for s in requirement.split("!=", 1))
        return labels.get(key) != value
    if "=" in requirement:
        key, value = (s.strip() for s in requirement.replace("==", "=").split("=", 1))
        return labels.get(key) == value
    if requirement.startswith("!"):
        return requirement[1:].strip() not in labels
    return requirement in labels


def _field(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def _field_ok(obj: Mapping[str, Any], requirement: str) -> bool:
    if "!=" in requirement:
        path, value = (s.strip() for s in requirement.split("!=", 1))
        return _field(obj, path) != value
    path, value = (s.strip() for s in requirement.replace("==", "=").split("=", 1))
    return _field(obj, path) == value


def matches(obj: Mapping[str, Any], label_selector: str, field_selector: str) -> bool:
    """Whether ``obj`` is selected by both selectors (empty selects everything)."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(_label_ok(labels, r) for r in _requirements(label_selector)) and all(
        _field_ok(obj, r) for r in _requirements(field_selector)
    )
