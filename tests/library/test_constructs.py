"""Construct-level behaviour: validation collects every problem; defaults are secure."""

from __future__ import annotations

import json

import cdktf
import pytest
from cdktf import TerraformStack

from constructs_lib import versions
from constructs_lib.helm.pinned_release import PinnedHelmRelease, PinnedHelmReleaseProps
from constructs_lib.kubernetes.ingress_allow_policy import (
    IngressAllowPolicy,
    IngressAllowPolicyProps,
)
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.validation import PropsError
from constructs_lib.versions import ALL_IMAGES, CLOUDNATIVE_PG_CHART, ImagePin


@pytest.fixture
def stack(tmp_path) -> TerraformStack:
    return TerraformStack(cdktf.Testing.app(outdir=str(tmp_path)), "test")


def _synth(stack: TerraformStack) -> dict:
    return json.loads(cdktf.Testing.synth(stack))


def test_fails_with_every_namespace_problem_at_once(stack):
    with pytest.raises(PropsError) as info:
        SecureNamespace(stack, "Ns", SecureNamespaceProps(name="Bad_Name", pod_security="open"))  # type: ignore[arg-type]
    assert info.value.problems == [
        "name: 'Bad_Name' is not a valid Kubernetes name (allowed: lowercase letters, digits and "
        "'-', at most 63 characters)",
        "pod_security: 'open' is not one of restricted, baseline, privileged",
    ]


def test_namespace_defaults_to_restricted_with_default_deny(stack):
    SecureNamespace(stack, "Ns", SecureNamespaceProps(name="apps"))
    doc = _synth(stack)
    ns = doc["resource"]["kubernetes_namespace_v1"]["Ns"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "lifecycle" not in ns
    (policy,) = doc["resource"]["kubernetes_network_policy_v1"].values()
    assert policy["spec"] == {"pod_selector": {}, "policy_types": ["Ingress"]}


def test_namespace_can_relax_pod_security_and_protect(stack):
    SecureNamespace(
        stack,
        "Ns",
        SecureNamespaceProps(
            name="dind", pod_security="privileged", deny_ingress=False, protect=True
        ),
    )
    doc = _synth(stack)
    ns = doc["resource"]["kubernetes_namespace_v1"]["Ns"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert ns["lifecycle"] == {"prevent_destroy": True}
    assert "kubernetes_network_policy_v1" not in doc.get("resource", {})


def test_fails_with_every_policy_problem_at_once(stack):
    with pytest.raises(PropsError) as info:
        IngressAllowPolicy(
            stack,
            "P",
            IngressAllowPolicyProps(name="p", namespace="n", pod_selector={}, ports=[0, 70000]),
        )
    assert info.value.problems == [
        "pod_selector: must select pods (got no labels)",
        "ports: 0 is outside 1-65535",
        "ports: 70000 is outside 1-65535",
    ]


def test_release_values_are_rendered_yaml_and_protection_is_optional(stack):
    PinnedHelmRelease(
        stack,
        "R",
        PinnedHelmReleaseProps(
            name="cnpg",
            namespace="ops",
            chart=CLOUDNATIVE_PG_CHART,
            values={"b": {"c": "x: y"}, "a": [1]},
            protect=True,
        ),
    )
    (release,) = _synth(stack)["resource"]["helm_release"].values()
    assert release["values"] == ["a:\n- 1\nb:\n  c: 'x: y'\n"]
    assert release["lifecycle"] == {"prevent_destroy": True}
    assert release["version"] == CLOUDNATIVE_PG_CHART.version


def test_release_rejects_a_bad_name_and_timeout(stack):
    with pytest.raises(PropsError) as info:
        PinnedHelmRelease(
            stack,
            "R",
            PinnedHelmReleaseProps(
                name="CNPG", namespace="ops", chart=CLOUDNATIVE_PG_CHART, timeout_seconds=0
            ),
        )
    assert len(info.value.problems) == 2


def test_compute_resources_render_requests_and_limits():
    res = ComputeResources(cpu_request="1", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi")
    assert res.to_values() == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }


def test_image_pins_are_digests_or_documented_gaps():
    for pin in ALL_IMAGES:
        assert pin.digest is None or (pin.digest.startswith("sha256:") and len(pin.digest) == 71), (
            pin
        )
    unpinned = sorted(p.repository for p in ALL_IMAGES if p.digest is None)
    assert unpinned == ["quay.io/minio/operator"], (
        "a new unpinned image needs a note in versions.py"
    )


def test_every_digest_says_where_it_came_from():
    """Each digest pin (deployed and CI images) names its sources; the pins only one source
    corroborates are exactly the ones versions.py and the README call out."""
    pins = [v for v in vars(versions).values() if isinstance(v, ImagePin)]
    pins += list(versions.CERT_MANAGER_IMAGES.values())
    digests = [pin for pin in pins if pin.digest]
    assert len(digests) >= len(ALL_IMAGES)
    for pin in digests:
        assert pin.sources, f"{pin.ref}: say in versions.py where the digest was read"
        assert all(source.strip() for source in pin.sources), pin.ref
    single = sorted(f"{pin.repository}:{pin.tag}" for pin in digests if len(pin.sources) < 2)
    assert single == [
        "buchgr/bazel-remote-cache:v2.6.2",
        "docker.io/gitlab/gitlab-runner:alpine-v19.3.1",
        "ghcr.io/cloudnative-pg/postgresql:18.6-202608170814-system-trixie",
        "ghcr.io/opentofu/opentofu:1.13.1",
    ]
