"""The operator release helpers: a pinned release and port policies named after the release."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformStack, Testing as CdktfTesting
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from constructs import Construct

from constructs_lib.helm.operator_release import add_release, open_release_port
from constructs_lib.versions import CLOUDNATIVE_PG_CHART
from tests.support.synth_output import resources


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    namespace: str = "ops"
    release_name: str = "cnpg"
    protect: bool = False


def _stack() -> tuple[TerraformStack, Construct]:
    stack = TerraformStack(CdktfTesting.app(), "test")
    return stack, Construct(stack, "Operator")


def _synth(stack: TerraformStack) -> dict[str, Any]:
    return json.loads(CdktfTesting.synth(stack))


def test_release_is_named_placed_and_pinned_by_the_settings():
    stack, scope = _stack()
    added = add_release(
        scope, Settings(), chart=CLOUDNATIVE_PG_CHART, values={"crds": {"create": True}}
    )
    assert added.node.path == "test/Operator/Release"
    [(address, release)] = resources(_synth(stack), "helm_release").items()
    assert address.startswith("Operator_Release_")
    assert (release["name"], release["namespace"]) == ("cnpg", "ops")
    assert (release["chart"], release["version"], release["repository"]) == (
        CLOUDNATIVE_PG_CHART.chart,
        CLOUDNATIVE_PG_CHART.version,
        CLOUDNATIVE_PG_CHART.repository,
    )
    assert release["values"] == ["crds:\n  create: true\n"]
    assert release["atomic"] is True
    assert "lifecycle" not in release
    assert "depends_on" not in release


def test_protect_and_depends_on_reach_the_release():
    stack, scope = _stack()
    first = ConfigMapV1(stack, "First", metadata={"name": "first", "namespace": "ops"})
    add_release(
        scope, Settings(protect=True), chart=CLOUDNATIVE_PG_CHART, values={}, depends_on=[first]
    )
    [release] = resources(_synth(stack), "helm_release").values()
    assert release["lifecycle"] == {"prevent_destroy": True}
    assert release["depends_on"] == ["kubernetes_config_map_v1.First"]
    assert "values" not in release


def test_port_policy_is_named_after_release_and_purpose():
    stack, scope = _stack()
    selector = {"app.kubernetes.io/instance": "cnpg"}
    added = open_release_port(scope, Settings(), "webhook", pod_selector=selector, port=9443)
    assert added.node.path == "test/Operator/WebhookIngress"
    [(address, policy)] = resources(_synth(stack), "kubernetes_network_policy_v1").items()
    assert address.startswith("Operator_WebhookIngress_")
    assert policy["metadata"] == {"name": "cnpg-webhook", "namespace": "ops"}
    assert policy["spec"]["pod_selector"] == {"match_labels": selector}
    assert policy["spec"]["policy_types"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "9443", "protocol": "TCP"}]
    # Default "cluster": pods of any namespace, nothing outside the pod network.
    assert rule["from"] == [{"namespace_selector": {}}]


def test_port_policy_passes_the_source_on():
    stack, scope = _stack()
    selector = {"app.kubernetes.io/instance": "cnpg"}
    open_release_port(
        scope, Settings(), "webhook", pod_selector=selector, port=1, source="anywhere"
    )
    open_release_port(scope, Settings(), "grpc", pod_selector=selector, port=2, source="namespace")
    policies = {
        p["metadata"]["name"]: p["spec"]["ingress"][0]
        for p in resources(_synth(stack), "kubernetes_network_policy_v1").values()
    }
    # The API server is not a pod: "anywhere" has no from clause.
    assert "from" not in policies["cnpg-webhook"]
    assert policies["cnpg-grpc"]["from"] == [
        {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "ops"}}}
    ]
