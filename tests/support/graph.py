"""Reachability in a directed graph given as node -> direct successors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def reachable(edges: Mapping[str, Iterable[str]], start: str) -> set[str]:
    """Every node reachable from ``start`` through one or more edges."""
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen
