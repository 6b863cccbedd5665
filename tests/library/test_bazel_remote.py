"""Unit tests of the bazel-remote construct: synthesized objects, S3 wiring and validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.bazel.bazel_remote import (
    GRPC_PORT,
    HTTP_PORT,
    BazelRemote,
    BazelRemoteProps,
    endpoint_problem,
    max_size_gi,
)
from constructs_lib.storage.s3_endpoint import S3Credentials
from constructs_lib.validation import PropsError
from constructs_lib.versions import BAZEL_REMOTE_IMAGE
from tests.support.conformance import crd_errors, crd_validator
from tests.support.synth_output import resources

CREDS = S3Credentials(
    secret_name="bazel-s3", access_key_id_key="id", secret_access_key_key="secret"
)


def _props(**overrides: Any) -> BazelRemoteProps:
    props: dict[str, Any] = {
        "namespace": "ci",
        "s3_endpoint": "http://seaweedfs-s3.storage.svc:8333",
        "bucket": "bazel",
        "region": "us-east-1",
        "credentials": CREDS,
    }
    props.update(overrides)
    return BazelRemoteProps(**props)


def _synth(**overrides: Any) -> tuple[BazelRemote, dict[str, Any]]:
    stack = TerraformStack(CdktfTesting.app(), "test")
    cache = BazelRemote(stack, "Cache", _props(**overrides))
    return cache, json.loads(CdktfTesting.synth(stack))


def _one(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = list(resources(doc, rtype).values())
    assert len(found) == 1, f"expected one {rtype}, got {len(found)}"
    return found[0]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return _one(doc, "kubernetes_deployment_v1")["spec"]["template"]["spec"]


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    [container] = _pod_spec(doc)["container"]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def _flag(container: dict[str, Any], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{name}=")]
    return value


def test_every_container_is_hardened():
    _, doc = _synth()
    pod = _pod_spec(doc)
    assert pod["automount_service_account_token"] is False
    # A Service named bazel-remote would inject BAZEL_REMOTE_PORT=tcp://... otherwise.
    assert pod["enable_service_links"] is False
    assert pod["security_context"]["run_as_non_root"] is True
    assert pod["security_context"]["seccomp_profile"] == {"type": "RuntimeDefault"}
    assert "init_container" not in pod
    volumes = {v["name"]: v for v in pod["volume"]}
    for container in pod["container"]:
        ctx = container["security_context"]
        assert ctx["run_as_non_root"] is True
        assert ctx["run_as_user"] != "0"
        assert ctx["read_only_root_filesystem"] is True
        assert ctx["allow_privilege_escalation"] is False
        assert ctx["privileged"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccomp_profile"] == {"type": "RuntimeDefault"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
        # Every writable path is an emptyDir with a size limit.
        mounts = {m["mount_path"]: m["name"] for m in container["volume_mount"]}
        assert set(mounts) == {"/data", "/tmp"}
        for volume in mounts.values():
            assert volumes[volume]["empty_dir"]["size_limit"].endswith("Gi")
    keys = {c["topology_key"] for c in pod["topology_spread_constraint"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_disk_cache_stays_below_the_emptydir_limit():
    _, doc = _synth(local_cache_size_gi=50)
    container = _container(doc)
    volumes = {v["name"]: v for v in _pod_spec(doc)["volume"]}
    assert _flag(container, "dir") == "/data"
    assert volumes["data"]["empty_dir"]["size_limit"] == "50Gi"
    assert _env(container)["BAZEL_REMOTE_MAX_SIZE"]["value"] == "45"
    assert container["resources"]["requests"]["ephemeral-storage"] == "51Gi"


@pytest.mark.parametrize(("size", "expected"), [(2, 1), (10, 9), (11, 9), (100, 90)])
def test_max_size_is_at_least_one_gib_below_the_volume(size: int, expected: int):
    assert max_size_gi(size) == expected
    assert 1 <= max_size_gi(size) < size


def test_probes_hit_endpoints_bazel_remote_serves():
    cache, doc = _synth(service_monitor=True)
    container = _container(doc)
    ports = {p["name"]: p["container_port"] for p in container["port"]}
    assert ports == {"http": HTTP_PORT, "grpc": GRPC_PORT}
    # The listeners are what the ports claim.
    assert _flag(container, "http_address") == f":{HTTP_PORT}"
    assert _flag(container, "grpc_address") == f":{GRPC_PORT}"
    assert _flag(container, "profile_address") == "none"
    readiness = container["readiness_probe"]["http_get"]
    assert readiness == {"path": "/status", "port": "http"}
    # Kubernetes' grpc probe takes a port number, never a name.
    assert container["liveness_probe"]["grpc"] == [{"port": GRPC_PORT}]
    # /metrics exists only with endpoint metrics on.
    assert _env(container)["BAZEL_REMOTE_ENABLE_ENDPOINT_METRICS"]["value"] == "true"
    assert cache.servicemonitor is not None
    [endpoint] = cache.servicemonitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")


@pytest.mark.parametrize(
    ("url", "host", "disable_ssl"),
    [
        ("http://seaweedfs-s3.storage.svc:8333", "seaweedfs-s3.storage.svc:8333", "true"),
        ("https://s3.eu-west-1.amazonaws.com/", "s3.eu-west-1.amazonaws.com", "false"),
        ("https://minio.example.com:9000", "minio.example.com:9000", "false"),
    ],
)
def test_s3_settings_come_from_props(url: str, host: str, disable_ssl: str):
    _, doc = _synth(s3_endpoint=url, prefix="ci/", bucket_lookup_type="path", region="eu-1")
    env = _env(_container(doc))
    values = {name: item.get("value") for name, item in env.items()}
    assert values["BAZEL_REMOTE_S3_ENDPOINT"] == host
    assert "://" not in values["BAZEL_REMOTE_S3_ENDPOINT"]
    assert values["BAZEL_REMOTE_S3_DISABLE_SSL"] == disable_ssl
    assert values["BAZEL_REMOTE_S3_BUCKET"] == "bazel"
    assert values["BAZEL_REMOTE_S3_PREFIX"] == "ci/"
    assert values["BAZEL_REMOTE_S3_REGION"] == "eu-1"
    assert values["BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE"] == "path"


def test_access_keys_come_from_the_secret_never_literal():
    _, doc = _synth()
    env = _env(_container(doc))
    assert env["BAZEL_REMOTE_S3_AUTH_METHOD"]["value"] == "access_key"
    assert env["BAZEL_REMOTE_S3_ACCESS_KEY_ID"] == {
        "name": "BAZEL_REMOTE_S3_ACCESS_KEY_ID",
        "value_from": {"secret_key_ref": {"name": "bazel-s3", "key": "id"}},
    }
    assert env["BAZEL_REMOTE_S3_SECRET_ACCESS_KEY"] == {
        "name": "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY",
        "value_from": {"secret_key_ref": {"name": "bazel-s3", "key": "secret"}},
    }
    for name, item in env.items():
        if "KEY" in name or "SECRET" in name or "TOKEN" in name:
            assert "value" not in item, name


def test_workload_identity_uses_iam_role_and_no_keys():
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/bazel"}
    _, doc = _synth(credentials=None, service_account_annotations=role)
    env = _env(_container(doc))
    assert env["BAZEL_REMOTE_S3_AUTH_METHOD"]["value"] == "iam_role"
    assert not [name for name in env if "ACCESS_KEY" in name]
    assert "secret_key_ref" not in json.dumps(env)
    account = _one(doc, "kubernetes_service_account_v1")
    assert account["metadata"]["annotations"] == role
    assert account["automount_service_account_token"] is False


def test_autoscaler_bounds_targets_and_behaviour():
    _, doc = _synth(min_replicas=3, max_replicas=9, cpu_target_percent=60)
    deployment = _one(doc, "kubernetes_deployment_v1")
    assert deployment["spec"]["replicas"] == "3"
    assert deployment["lifecycle"]["ignore_changes"] == ["spec[0].replicas"]
    assert deployment["spec"]["strategy"]["rolling_update"]["max_unavailable"] == "0"
    hpa = _one(doc, "kubernetes_horizontal_pod_autoscaler_v2")["spec"]
    assert (hpa["min_replicas"], hpa["max_replicas"]) == (3, 9)
    assert hpa["scale_target_ref"]["kind"] == "Deployment"
    assert hpa["scale_target_ref"]["name"].startswith("${kubernetes_deployment_v1.")
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["average_utilization"] for m in hpa["metric"]
    }
    assert targets == {"cpu": 60, "memory": 80}
    [down] = hpa["behavior"]["scale_down"]
    assert down["stabilization_window_seconds"] >= 300
    # "Max" so that at least one pod per minute can go even where 10 % rounds to zero.
    assert down["select_policy"] == "Max"
    assert {"type": "Pods", "value": 1, "period_seconds": 60} in down["policy"]
    [up] = hpa["behavior"]["scale_up"]
    assert up["stabilization_window_seconds"] == 0


def test_disruption_budget_keeps_all_but_one():
    cache, doc = _synth()
    pdb = _one(doc, "kubernetes_pod_disruption_budget_v1")["spec"]
    assert pdb["max_unavailable"] == "1"
    assert pdb["selector"]["match_labels"] == cache.labels


def test_service_exposes_http_and_grpc():
    cache, doc = _synth()
    service = _one(doc, "kubernetes_service_v1")
    ports = {p["name"]: p for p in service["spec"]["port"]}
    assert set(ports) == {"http", "grpc"}
    assert (ports["http"]["port"], ports["http"]["target_port"]) == (8080, "http")
    assert (ports["grpc"]["port"], ports["grpc"]["target_port"]) == (9092, "grpc")
    assert ports["grpc"]["app_protocol"] == "kubernetes.io/h2c"
    pod_labels = _one(doc, "kubernetes_deployment_v1")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert cache.service_name == service["metadata"]["name"] == "bazel-remote"
    assert cache.grpc_url == "grpc://bazel-remote.ci.svc:9092"
    assert cache.http_url == "http://bazel-remote.ci.svc:8080"


def test_extra_labels_reach_objects_but_not_selectors():
    cache, doc = _synth(labels={"release": "prometheus"}, service_monitor=True)
    deployment = _one(doc, "kubernetes_deployment_v1")
    assert deployment["metadata"]["labels"]["release"] == "prometheus"
    assert deployment["spec"]["template"]["metadata"]["labels"]["release"] == "prometheus"
    assert "release" not in deployment["spec"]["selector"]["match_labels"]
    assert "release" not in _one(doc, "kubernetes_service_v1")["spec"]["selector"]
    assert cache.servicemonitor is not None
    assert cache.servicemonitor["metadata"]["labels"]["release"] == "prometheus"
    assert "release" not in cache.servicemonitor["spec"]["selector"]["matchLabels"]


def test_servicemonitor_is_off_by_default():
    cache, doc = _synth()
    assert cache.servicemonitor is None
    assert resources(doc, "kubernetes_manifest") == {}


def test_servicemonitor_matches_the_crd_and_the_service(refdata: Path):
    cache, doc = _synth(service_monitor=True)
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_servicemonitors.yaml", "v1")
    manifest = _one(doc, "kubernetes_manifest")["manifest"]
    assert manifest == cache.servicemonitor
    assert crd_errors(validator, manifest) == []
    service = _one(doc, "kubernetes_service_v1")
    assert manifest["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert manifest["spec"]["namespaceSelector"]["matchNames"] == ["ci"]
    # The check is strict enough to catch a misspelt field.
    typo = copy.deepcopy(manifest)
    typo["spec"]["endpoints"][0]["metricsPath"] = "/metrics"
    assert any("metricsPath" in e for e in crd_errors(validator, typo))


def test_image_is_the_pinned_digest():
    _, doc = _synth()
    assert _container(doc)["image"] == BAZEL_REMOTE_IMAGE.ref
    assert BAZEL_REMOTE_IMAGE.digest is not None
    assert BAZEL_REMOTE_IMAGE.digest.startswith("sha256:")
    assert len(BAZEL_REMOTE_IMAGE.digest) == 71
    assert "@sha256:" in BAZEL_REMOTE_IMAGE.ref


def test_every_problem_is_reported_at_once():
    with pytest.raises(PropsError) as info:
        _synth(
            name="Bazel_Remote",
            s3_endpoint="s3.example.com:9000",
            min_replicas=5,
            max_replicas=2,
            local_cache_size_gi=0,
            bucket="",
            bucket_lookup_type="virtual",
            memory_target_percent=0,
        )
    assert info.value.construct == "BazelRemote"
    problems = info.value.problems
    for prefix in (
        "name:",
        "s3_endpoint:",
        "min_replicas/max_replicas:",
        "local_cache_size_gi:",
        "bucket: required",
        "bucket_lookup_type:",
        "memory_target_percent:",
    ):
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    assert len(problems) == 7, problems


@pytest.mark.parametrize(
    "url",
    [
        "s3.example.com",
        "ftp://s3.example.com",
        "https://s3.example.com/bucket",
        "https://user:pw@s3.example.com",
        "https://s3.example.com:99999",
        "https://s3.example.com?x=1",
        "https://",
    ],
)
def test_endpoint_must_be_scheme_host_and_port(url: str):
    assert endpoint_problem(url).startswith("s3_endpoint:")


@pytest.mark.parametrize(
    "url", ["https://s3.amazonaws.com", "http://minio:9000/", "http://[fd00::1]:9000"]
)
def test_good_endpoints_pass(url: str):
    assert endpoint_problem(url) == ""
