"""A Prometheus Operator ``PrometheusRule`` (``monitoring.coreos.com/v1``), checked before apply.

The CRD's schema accepts a rule with both ``alert`` and ``record`` (or neither) and any alert
name; Prometheus then rejects the whole rule file at load time, and every rule in it stops being
evaluated. So the props are checked here, all problems reported at once.

PromQL itself is not parsed here (the parser is a test-only dependency): the unit tests parse
every expression the library builds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["PrometheusRule", "PrometheusRuleProps", "rule_group_problems"]

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"

# The CRD's duration pattern, without its empty match.
DURATION = re.compile(
    r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$"
)
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
RECORD_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
GROUP_KEYS = frozenset({"name", "interval", "limit", "query_offset", "rules"})
RULE_KEYS = frozenset(
    {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
)


def is_duration(value: object) -> bool:
    """True for a non-empty Prometheus duration such as ``5m``, ``1h30m`` or ``0``."""
    return isinstance(value, str) and value != "" and DURATION.match(value) is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class PrometheusRuleProps:
    """Props of :class:`PrometheusRule`.

    Attributes:
        name: PrometheusRule name (a DNS label).
        namespace: its namespace; the Prometheus CR's ``ruleNamespaceSelector`` must cover it.
        groups: rule groups as Prometheus spells them: ``name``, optional ``interval``,
            ``limit`` and ``query_offset``, and ``rules`` (each with ``alert`` or ``record``,
            ``expr``, and for alerts ``for``, ``keep_firing_for``, ``labels``,
            ``annotations``).
        labels: metadata labels, e.g. the ``release`` label a kube-prometheus-stack
            ``ruleSelector`` picks rules up by. Default - none.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    groups: Sequence[Mapping[str, Any]]
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


class PrometheusRule(Construct):
    """Alerting and recording rules for the Prometheus Operator, validated as a whole.

    Creates one ``PrometheusRule`` (child id ``Resource``). Every problem Prometheus would
    reject the whole rule file for (both or neither of ``alert`` and ``record``, a bad name,
    duration or label, a duplicate group) fails the synth instead, in one ``PropsError``.

    Attributes:
        manifest: the object as applied (``apiVersion``, ``kind``, ``metadata``, ``spec``).
        resource: the :class:`CustomResource` holding it.

    Example:
        ```python
        from constructs_lib.monitoring.prometheus_rule import PrometheusRule, PrometheusRuleProps

        PrometheusRule(
            stack,
            "Rules",
            PrometheusRuleProps(
                name="attic-extra",
                namespace="monitoring",
                groups=[
                    {
                        "name": "attic-extra",
                        "rules": [
                            {
                                "alert": "AtticDown",
                                "expr": 'up{job="attic"} == 0',
                                "for": "5m",
                                "labels": {"severity": "critical"},
                                "annotations": {"summary": "atticd is down"},
                            }
                        ],
                    }
                ],
                labels={"release": "kube-prometheus-stack"},
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: PrometheusRuleProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "PrometheusRule",
            [
                check_dns_label("name", props.name),
                check_dns_label("namespace", props.namespace),
                *_label_problems("labels", props.labels),
                *rule_group_problems(props.groups),
            ],
        )
        metadata: dict[str, Any] = {"name": props.name, "namespace": props.namespace}
        if props.labels:
            metadata["labels"] = dict(props.labels)
        self.manifest: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {"groups": [_plain(group) for group in props.groups]},
        }
        self.resource = CustomResource(
            self,
            "Resource",
            CustomResourceProps(manifest=self.manifest, depends_on=props.depends_on),
        )


def rule_group_problems(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every problem in a list of rule groups, one line each (empty when valid)."""
    if not groups:
        return ["groups: at least one rule group is required"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, group in enumerate(groups):
        name = group.get("name")
        where = f"groups[{index}]"
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name: required (a non-empty string)")
        elif name in seen:
            problems.append(f"{where}.name: {name!r} is used by another group")
        else:
            seen.add(name)
            where = f"groups[{name}]"
        problems += [
            f"{where}.{key}: unknown key (allowed: {', '.join(sorted(GROUP_KEYS))})"
            for key in sorted(set(group) - GROUP_KEYS)
        ]
        for key in ("interval", "query_offset"):
            if key in group and not is_duration(group[key]):
                problems.append(f"{where}.{key}: {group[key]!r} is not a Prometheus duration")
        rules = group.get("rules")
        if not isinstance(rules, Sequence) or isinstance(rules, str) or not rules:
            problems.append(f"{where}.rules: at least one rule is required")
            continue
        for position, rule in enumerate(rules):
            problems += _rule_problems(f"{where}.rules[{position}]", rule)
    return problems


def _rule_problems(where: str, rule: Mapping[str, Any]) -> list[str]:
    problems = [
        f"{where}.{key}: unknown key (allowed: {', '.join(sorted(RULE_KEYS))})"
        for key in sorted(set(rule) - RULE_KEYS)
    ]
    alert, record = rule.get("alert"), rule.get("record")
    if (alert is None) == (record is None):
        problems.append(f"{where}: needs exactly one of 'alert' and 'record'")
    if alert is not None:
        where = f"{where}({alert})"
        if not isinstance(alert, str) or not ALERT_NAME.match(alert):
            problems.append(
                f"{where}.alert: {alert!r} must be CamelCase (a capital letter, then letters "
                "and digits)"
            )
    if record is not None:
        where = f"{where}({record})"
        if not isinstance(record, str) or not RECORD_NAME.match(record):
            problems.append(
                f"{where}.record: {record!r} is not a metric name "
                "(allowed: [a-zA-Z_:][a-zA-Z0-9_:]*)"
            )
        problems += [
            f"{where}.{key}: only alerting rules take it"
            for key in ("for", "keep_firing_for", "annotations")
            if key in rule
        ]
    expr = rule.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        problems.append(f"{where}.expr: required (a PromQL expression)")
    for key in ("for", "keep_firing_for"):
        if key in rule and not is_duration(rule[key]):
            problems.append(
                f"{where}.{key}: {rule[key]!r} is not a Prometheus duration (e.g. 5m, 1h30m)"
            )
    labels = rule.get("labels", {})
    problems += _label_problems(f"{where}.labels", labels)
    problems += [
        f"{where}.labels.{key}: not a Prometheus label name (allowed: [a-zA-Z_][a-zA-Z0-9_]*)"
        for key in labels
        if not LABEL_NAME.match(str(key))
    ]
    annotations = rule.get("annotations", {})
    problems += [
        f"{where}.annotations.{key}: values are strings (got {value!r})"
        for key, value in annotations.items()
        if not isinstance(value, str)
    ]
    return problems


def _label_problems(where: str, labels: Mapping[str, Any]) -> Iterable[str]:
    for key, value in labels.items():
        if not isinstance(value, str):
            yield f"{where}.{key}: values are strings (got {value!r})"


def _plain(value: Any) -> Any:
    """A deep copy with mappings as dicts and sequences as lists (what the provider expects)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def alert_rule(
    name: str,
    expr: str,
    *,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    runbook: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One alerting rule with the annotations every rule of ours carries."""
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary": summary, "description": description, "runbook": runbook},
    }


def promql_number(value: float) -> str:
    """A threshold as PromQL reads it: ``0.0144`` rather than ``0.014400000000000001``."""
    return f"{value:.10g}"


def short_duration(seconds: int) -> str:
    """Seconds in the largest unit that divides them (``5400`` is ``90m``), as in rule text."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
