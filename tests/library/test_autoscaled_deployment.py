"""The autoscaled Deployment helper: surge-only rollout, HPA, PDB and spread, in the caller."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from constructs import Construct

from constructs_lib.kubernetes.autoscaled_deployment import (
    ScalingPace,
    add_autoscaled_deployment,
    bounds_problem,
)
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from tests.support.synth_output import resources

SELECTOR = {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"}
PACE = ScalingPace(up_pods=3, down_pods=1, down_select="Max")


@dataclass(frozen=True, kw_only=True, slots=True)
class Bounds:
    min_replicas: int = 2
    max_replicas: int = 6
    cpu_target_percent: int = 65
    memory_target_percent: int = 75


def _template() -> dict[str, Any]:
    container = {
        "name": "web",
        "image": "example.org/web@sha256:" + "0" * 64,
        "port": [{"name": "http", "container_port": 8080}],
        "readiness_probe": {"http_get": {"path": "/healthz", "port": "http"}},
        "security_context": restricted_container(1000),
    }
    return {
        "metadata": {"labels": {**SELECTOR, "team": "ci"}},
        "spec": {"security_context": restricted_pod(1000), "container": [container]},
    }


def _add(scope: Construct, **overrides: Any) -> None:
    args: dict[str, Any] = {
        "name": "web",
        "namespace": "apps",
        "selector": SELECTOR,
        "template": _template(),
        "bounds": Bounds(),
        "pace": PACE,
    }
    args.update(overrides)
    add_autoscaled_deployment(scope, "Server", **args)


def _synth(**overrides: Any) -> dict[str, Any]:
    stack = TerraformStack(CdktfTesting.app(), "test")
    _add(Construct(stack, "Web"), **overrides)
    return json.loads(CdktfTesting.synth(stack))


def _one(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    [found] = resources(doc, rtype).values()
    return found


def test_objects_join_the_callers_scope_under_fixed_ids():
    stack = TerraformStack(CdktfTesting.app(), "test")
    scope = Construct(stack, "Web")
    _add(scope)
    assert [c.node.id for c in scope.node.children] == ["Server", "Autoscaler", "DisruptionBudget"]
    doc = json.loads(CdktfTesting.synth(stack))
    for rtype, prefix in (
        ("kubernetes_deployment_v1", "Web_Server_"),
        ("kubernetes_horizontal_pod_autoscaler_v2", "Web_Autoscaler_"),
        ("kubernetes_pod_disruption_budget_v1", "Web_DisruptionBudget_"),
    ):
        [address] = resources(doc, rtype)
        assert address.startswith(prefix), (rtype, address)


def test_rollout_is_surge_only_and_the_hpa_owns_the_replica_count():
    deployment = _one(_synth(), "kubernetes_deployment_v1")
    assert deployment["spec"]["replicas"] == "2"
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rolling_update": {"max_surge": "25%", "max_unavailable": "0"},
    }
    assert deployment["spec"]["selector"] == {"match_labels": SELECTOR}
    assert deployment["lifecycle"] == {"ignore_changes": ["spec[0].replicas"]}


def test_the_template_keeps_its_hardening_and_probes_and_gains_the_spread():
    pod = _one(_synth(), "kubernetes_deployment_v1")["spec"]["template"]
    assert pod["metadata"]["labels"] == {**SELECTOR, "team": "ci"}
    spec = pod["spec"]
    assert spec["security_context"] == {
        "run_as_non_root": True,
        "run_as_user": "1000",
        "run_as_group": "1000",
        "fs_group": "1000",
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    [container] = spec["container"]
    assert container["security_context"] == {
        "run_as_non_root": True,
        "run_as_user": "1000",
        "run_as_group": "1000",
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    assert container["readiness_probe"]["http_get"] == {"path": "/healthz", "port": "http"}
    assert container["port"] == [{"name": "http", "container_port": 8080}]
    spread = spec["topology_spread_constraint"]
    assert [c["topology_key"] for c in spread] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    for constraint in spread:
        # Best effort: a full zone must not leave a pod unscheduled.
        assert constraint["when_unsatisfiable"] == "ScheduleAnyway"
        assert constraint["max_skew"] == 1
        assert constraint["label_selector"] == [{"match_labels": SELECTOR}]


def test_the_callers_template_is_not_modified():
    template = _template()
    _synth(template=template)
    assert template == _template()


def test_autoscaler_targets_the_deployment_with_bounds_targets_and_pace():
    doc = _synth()
    hpa = _one(doc, "kubernetes_horizontal_pod_autoscaler_v2")["spec"]
    assert (hpa["min_replicas"], hpa["max_replicas"]) == (2, 6)
    [address] = resources(doc, "kubernetes_deployment_v1")
    assert hpa["scale_target_ref"] == {
        "api_version": "apps/v1",
        "kind": "Deployment",
        "name": f"${{kubernetes_deployment_v1.{address}.metadata[0].name}}",
    }
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["average_utilization"] for m in hpa["metric"]
    }
    assert targets == {"cpu": 65, "memory": 75}
    [up] = hpa["behavior"]["scale_up"]
    assert (up["stabilization_window_seconds"], up["select_policy"]) == (0, "Max")
    assert {"type": "Pods", "value": 3, "period_seconds": 15} in up["policy"]
    assert {"type": "Percent", "value": 100, "period_seconds": 15} in up["policy"]
    [down] = hpa["behavior"]["scale_down"]
    assert (down["stabilization_window_seconds"], down["select_policy"]) == (300, "Max")
    assert {"type": "Pods", "value": 1, "period_seconds": 60} in down["policy"]
    assert {"type": "Percent", "value": 10, "period_seconds": 60} in down["policy"]


def test_pace_picks_the_scale_down_policy():
    pace = ScalingPace(up_pods=4, down_pods=2, down_select="Min")
    hpa = _one(_synth(pace=pace), "kubernetes_horizontal_pod_autoscaler_v2")["spec"]
    [down] = hpa["behavior"]["scale_down"]
    assert down["select_policy"] == "Min"
    assert {"type": "Pods", "value": 2, "period_seconds": 60} in down["policy"]


def test_disruption_budget_lets_one_pod_go():
    pdb = _one(_synth(), "kubernetes_pod_disruption_budget_v1")["spec"]
    assert pdb == {"max_unavailable": "1", "selector": {"match_labels": SELECTOR}}


def test_without_labels_only_the_deployment_carries_the_selector():
    doc = _synth()
    assert _one(doc, "kubernetes_deployment_v1")["metadata"] == {
        "name": "web",
        "namespace": "apps",
        "labels": SELECTOR,
    }
    for rtype in ("kubernetes_horizontal_pod_autoscaler_v2", "kubernetes_pod_disruption_budget_v1"):
        assert _one(doc, rtype)["metadata"] == {"name": "web", "namespace": "apps"}


def test_labels_reach_every_object_but_not_the_selector():
    labels = {**SELECTOR, "release": "prometheus"}
    doc = _synth(labels=labels)
    for rtype in (
        "kubernetes_deployment_v1",
        "kubernetes_horizontal_pod_autoscaler_v2",
        "kubernetes_pod_disruption_budget_v1",
    ):
        assert _one(doc, rtype)["metadata"]["labels"] == labels, rtype
    deployment = _one(doc, "kubernetes_deployment_v1")
    assert deployment["spec"]["selector"] == {"match_labels": SELECTOR}


def test_depends_on_reaches_the_deployment_only():
    stack = TerraformStack(CdktfTesting.app(), "test")
    first = ConfigMapV1(stack, "First", metadata={"name": "first", "namespace": "apps"})
    add_autoscaled_deployment(
        stack,
        "Server",
        name="web",
        namespace="apps",
        selector=SELECTOR,
        template=_template(),
        bounds=Bounds(),
        pace=PACE,
        depends_on=[first],
    )
    doc = json.loads(CdktfTesting.synth(stack))
    assert _one(doc, "kubernetes_deployment_v1")["depends_on"] == ["kubernetes_config_map_v1.First"]
    assert "depends_on" not in _one(doc, "kubernetes_horizontal_pod_autoscaler_v2")
    assert "depends_on" not in _one(_synth(), "kubernetes_deployment_v1")


@pytest.mark.parametrize(
    ("bounds", "problem"),
    [
        (Bounds(), ""),
        (Bounds(min_replicas=1, max_replicas=1), ""),
        (
            Bounds(min_replicas=0),
            "min_replicas/max_replicas: need 1 <= min <= max (got 0, 6)",
        ),
        (
            Bounds(min_replicas=5, max_replicas=3),
            "min_replicas/max_replicas: need 1 <= min <= max (got 5, 3)",
        ),
    ],
)
def test_bounds_problem_names_both_props_and_values(bounds: Bounds, problem: str):
    assert bounds_problem(bounds) == problem
