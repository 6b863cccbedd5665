"""PromQL in rule groups, read the way Prometheus reads it (promql_parser): the rules, the
selectors and numbers in an expression, and a check that every label an expression uses is one
its series carry."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import promql_parser


def rules_of(groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every rule of every group, in order."""
    for group in groups:
        yield from group["rules"]


def alerts_named(groups: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The alerting rules called ``name``."""
    return [r for r in rules_of(groups) if r.get("alert") == name]


def alert_named(groups: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one alerting rule called ``name``."""
    (found,) = alerts_named(groups, name)
    return found


def parse(expr: str) -> Any:
    """The AST, typed loosely: the stubs type nodes as ``Expr`` without their fields."""
    return promql_parser.parse(expr)


def selectors(expr: str) -> list[Any]:
    """Every vector selector in the expression."""
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found


def thresholds(node: Any) -> list[float]:
    """Every number literal in the expression."""
    found: list[float] = []

    def visit(n: Any) -> None:
        if isinstance(n, promql_parser.NumberLiteral):
            found.append(n.val)

    promql_parser.walk(node, pre_visit=visit)
    return found


def matchers_of(expr: str, metric: str) -> list[dict[str, tuple[str, str]]]:
    """Per selector of ``metric``: label -> (match operator, value)."""
    return [
        {m.name: (str(m.op).rsplit(".", 1)[-1], m.value) for m in s.matchers.matchers}
        for s in selectors(expr)
        if s.name == metric
    ]


class LabelChecker:
    """Walks an expression, computing the labels each node's series carry, and records every
    label used in a matcher, by(), on() or group_left() that the series there do not have."""

    def __init__(self, known: dict[str, set[str]]) -> None:
        self.known = known
        self.problems: list[str] = []

    def labels(self, node: Any) -> set[str] | None:
        """Labels of the node's series; None for a scalar."""
        while isinstance(
            node, promql_parser.MatrixSelector | promql_parser.ParenExpr | promql_parser.UnaryExpr
        ):
            node = (
                node.vector_selector
                if isinstance(node, promql_parser.MatrixSelector)
                else node.expr
            )
        handlers = {
            promql_parser.VectorSelector: self._selector,
            promql_parser.Call: self._call,
            promql_parser.AggregateExpr: self._aggregate,
            promql_parser.BinaryExpr: self._binary,
        }
        handler = handlers.get(type(node))
        if handler is None:
            assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral)
            return None
        return handler(node)

    def _selector(self, node: Any) -> set[str]:
        own = self.known.get(node.name or "")
        if own is None:
            self.problems.append(f"unknown metric {node.name}")
            return set()
        used = {m.name for m in node.matchers.matchers}
        if used - own:
            self.problems.append(f"{node.name}{{{sorted(used - own)}}}")
        return set(own)

    def _call(self, node: Any) -> set[str] | None:
        name = node.func.name
        args = [self.labels(a) for a in node.args]
        if name == "time":
            return None
        if name == "vector":
            return set()
        if name == "absent":
            selector = node.args[0]
            return {m.name for m in selector.matchers.matchers if str(m.op).endswith("Equal")}
        assert name in {"rate", "increase", "max_over_time"}, name
        return args[0]

    def _aggregate(self, node: Any) -> set[str]:
        inner = self.labels(node.expr) or set()
        modifier = node.modifier
        if modifier is None:
            return set()
        grouping = set(modifier.labels)
        if str(modifier.type).endswith("By"):
            if grouping - inner:
                self.problems.append(f"by {sorted(grouping - inner)} not in {sorted(inner)}")
            return grouping
        return inner - grouping

    def _binary(self, node: Any) -> set[str] | None:
        lhs, rhs = self.labels(node.lhs), self.labels(node.rhs)
        if lhs is None or rhs is None:
            return rhs if lhs is None else lhs
        modifier = node.modifier
        matching = modifier.matching if modifier is not None else None
        op = str(node.op)
        if matching is not None and matching.labels:
            on = set(matching.labels)
            for side, labels in (("left", lhs), ("right", rhs)):
                if on - labels:
                    self.problems.append(f"on {sorted(on - labels)} missing on the {side}")
        group = set(modifier.group_labels or []) if modifier is not None else set()
        if group - rhs:
            self.problems.append(f"group_left {sorted(group - rhs)} missing on the right")
        if op in {"or"}:
            return lhs & rhs
        if op in {"and", "unless"}:
            return lhs
        if str(modifier.card if modifier else "").endswith("ManyToOne"):
            return lhs | group
        if matching is not None and str(matching.type).endswith("Include"):
            return set(matching.labels)
        return lhs


def label_problems(
    groups: list[dict[str, Any]], metric_labels: Mapping[str, set[str]]
) -> list[str]:
    """Every label a rule uses that its series lack, given the labels of each metric it reads;
    a recorded series has the labels its rule leaves, for the rules after it."""
    known = {name: set(labels) for name, labels in metric_labels.items()}
    problems: list[str] = []
    for rule in rules_of(groups):
        checker = LabelChecker(known)
        labels = checker.labels(parse(rule["expr"]))
        name = rule.get("alert") or rule.get("record")
        problems += [f"{name}: {p}" for p in checker.problems]
        if "record" in rule:
            known[rule["record"]] = labels or set()
        else:
            # Every {{ $labels.x }} in the texts must be on the alert's series.
            have = (labels or set()) | set(rule["labels"])
            texts = " ".join(rule["annotations"].values())
            missing = set(re.findall(r"\$labels\.(\w+)", texts)) - have
            problems += [f"{name}: annotation label {m}" for m in sorted(missing)]
    return problems
