"""Prometheus discovers our monitors and rules only by label: every PodMonitor, ServiceMonitor
and PrometheusRule a stack creates, directly or through an operator chart, carries
``monitoring.discovery_labels``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from config_model.loader import EXAMPLE_CONFIG, load_config
from tests.conftest import DATA
from tests.support.synth_output import SynthOutput, helm_releases, resources

MONITOR_KINDS = frozenset({"PodMonitor", "ServiceMonitor", "PrometheusRule"})

# Where each operator chart we install takes its monitor's labels, as its template reads them:
# chart -> ((value path that turns the monitor on, ...), value path of the extra labels).
# cloudnative-pg 0.29.0 templates/podmonitor.yaml lines 19, 27-28; cert-manager v1.21.1
# deploy/charts/cert-manager/templates/podmonitor.yaml (prometheus.enabled and
# prometheus.podmonitor.enabled, then prometheus.podmonitor.labels under metadata.labels).
CHART_MONITORS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "cloudnative-pg": (
        (("monitoring", "podMonitorEnabled"),),
        ("monitoring", "podMonitorAdditionalLabels"),
    ),
    "cert-manager": (
        (("prometheus", "enabled"), ("prometheus", "podmonitor", "enabled")),
        ("prometheus", "podmonitor", "labels"),
    ),
}


def _discovery_labels() -> dict[str, dict[str, str]]:
    labels = {}
    for path in (EXAMPLE_CONFIG, DATA / "variants.yaml"):
        for name, env in load_config(path).environments.items():
            labels[name] = dict(env.config.monitoring.discovery_labels)
    return labels


def _get(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values.get(key, {}) if isinstance(values, dict) else {}
    return values


def _monitors(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, metadata labels) of every monitor or rule the stack applies or a chart renders."""
    for name, item in resources(doc, "kubernetes_manifest").items():
        manifest = item["manifest"]
        if manifest["kind"] in MONITOR_KINDS:
            yield f"{manifest['kind']} {name}", manifest["metadata"].get("labels", {})
    for name, release in helm_releases(doc).items():
        if release["chart"] not in CHART_MONITORS:
            continue
        switches, labels_path = CHART_MONITORS[release["chart"]]
        values = yaml.safe_load(release["values"][0])
        if all(_get(values, switch) is True for switch in switches):
            yield f"helm_release {name}", _get(values, labels_path)


def test_every_monitor_and_rule_carries_the_discovery_labels(all_synths: list[SynthOutput]):
    expected = _discovery_labels()
    seen: dict[str, int] = {}
    for synth in all_synths:
        for stack, doc in synth.stacks():
            want = expected[stack.split("-", 1)[1]]
            for where, labels in _monitors(doc):
                assert want.items() <= dict(labels).items(), (stack, where, labels, want)
                seen[where.split()[0]] = seen.get(where.split()[0], 0) + 1
    # every kind of monitor we create is exercised by some config
    assert {"PodMonitor", "ServiceMonitor", "PrometheusRule", "helm_release"} <= set(seen), seen


def test_variants_use_their_own_labels():
    """One environment sets labels of its own, so the test above is not only about the default."""
    labels = _discovery_labels()
    assert labels["full"] != labels["dev"]
