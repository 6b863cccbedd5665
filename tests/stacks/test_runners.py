"""The runners-<env> stacks: runner TOML per type, tokens, privilege, namespaces, policy."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import yaml

from constructs_lib.runners.labels import JOB_POD_LABELS, RUNNER_TYPES
from stacks.app import apply_order
from stacks.runners import PRIVATE_RANGES
from tests.support import runner_keys as keys
from tests.support.runner_security import (
    CONTEXT_TABLES,
    api_server_problems,
    effective_context,
    pod_contexts,
    pod_security_problems,
)
from tests.support.synth_output import (
    SynthOutput,
    helm_releases,
    namespace_name,
    resources,
    stacks_of_kind,
)


def _runners(doc: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Runner type -> (Helm values, parsed [[runners]] entry)."""
    out = {}
    for release in helm_releases(doc).values():
        assert release["chart"] == "gitlab-runner"
        values = yaml.safe_load(release["values"][0])
        config = tomllib.loads(values["runners"]["config"])
        (entry,) = config["runners"]
        out[release["name"].removeprefix("gitlab-runner-")] = (values, entry)
    return out


def _unknown(table: dict[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    return [f"{where}.{key}" for key in table if key not in allowed]


def toml_key_problems(entry: dict[str, Any]) -> list[str]:
    """Keys gitlab-runner 19.3 would ignore (it only logs unknown keys)."""
    problems = _unknown(entry, keys.RUNNER_KEYS, "runners")
    problems += _unknown(entry.get("feature_flags", {}), keys.FEATURE_FLAGS, "feature_flags")
    cache = entry.get("cache", {})
    problems += _unknown(cache, keys.CACHE_KEYS, "cache")
    problems += _unknown(cache.get("s3", {}), keys.CACHE_S3_KEYS, "cache.s3")
    kube = entry.get("kubernetes", {})
    problems += _unknown(kube, keys.KUBERNETES_KEYS, "kubernetes")
    problems += _unknown(
        kube.get("pod_security_context", {}), keys.POD_SECURITY_CONTEXT_KEYS, "pod_security"
    )
    for context in CONTEXT_TABLES.values():
        table = kube.get(context, {})
        problems += _unknown(table, keys.CONTAINER_SECURITY_CONTEXT_KEYS, context)
        problems += _unknown(table.get("capabilities", {}), keys.CAPABILITIES_KEYS, context)
    for kind, volumes in kube.get("volumes", {}).items():
        if kind not in keys.VOLUME_KINDS:
            problems.append(f"volumes.{kind}")
            continue
        for volume in volumes:
            problems += _unknown(volume, keys.VOLUME_KEYS[kind], f"volumes.{kind}")
    for service in kube.get("services", []):
        problems += _unknown(service, keys.SERVICE_KEYS, "services")
    return problems


def test_every_environment_has_a_runner_stack_applied_before_attic(example_synth: SynthOutput):
    from config_model.loader import EXAMPLE_CONFIG, load_config

    order = apply_order(load_config(EXAMPLE_CONFIG))
    for env in ("dev", "staging", "prod"):
        assert order.index(f"runners-{env}") < order.index(f"attic-{env}")
        assert example_synth.manifest["stacks"][f"runners-{env}"]["dependencies"] == []


def test_example_has_all_five_types_each_with_its_own_release(example_synth: SynthOutput):
    for _, doc in stacks_of_kind([example_synth], "runners"):
        assert sorted(_runners(doc)) == sorted(RUNNER_TYPES)


def test_every_rendered_runner_config_uses_only_known_keys(all_synths: list[SynthOutput]):
    checked = 0
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            for kind, (_, entry) in _runners(doc).items():
                assert toml_key_problems(entry) == [], f"{stack}/{kind}"
                checked += 1
    assert checked >= 20


def test_key_check_catches_typos():
    entry = {
        "name": "x",
        "cache": {"type": "s3", "s3": {"bucket_name": "b"}},
        "kubernetes": {"cpu_requests": "1", "volumes": {"secret": [{"optional": True}]}},
    }
    assert toml_key_problems(entry) == [
        "cache.type",
        "cache.s3.bucket_name",
        "kubernetes.cpu_requests",
        "volumes.secret.optional",
    ]


def test_only_dind_runs_privileged_and_only_in_its_namespace(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            namespaces = {
                ns["metadata"]["name"]: ns["metadata"]["labels"]
                for ns in resources(doc, "kubernetes_namespace_v1").values()
            }
            for kind, (values, entry) in _runners(doc).items():
                kube = entry["kubernetes"]
                assert kube["privileged"] is False
                assert kube["allow_privilege_escalation"] is False
                assert kube["build_container_security_context"]["privileged"] is False
                assert kube["helper_container_security_context"]["privileged"] is False
                service = kube["service_container_security_context"]["privileged"]
                assert service is (kind == "dind"), f"{stack}/{kind}"
                job_ns = namespace_name(doc, kube["namespace"])
                level = namespaces[job_ns]["pod-security.kubernetes.io/enforce"]
                assert level == ("privileged" if kind == "dind" else "baseline"), kind
                manager_ns = namespace_name(doc, values["runners"]["jobNamespace"])
                assert manager_ns == job_ns
            levels = sorted(
                labels["pod-security.kubernetes.io/enforce"] for labels in namespaces.values()
            )
            assert levels == ["baseline", "privileged", "restricted"], stack


def test_every_job_container_passes_the_api_server_and_its_pod_security_level(
    all_synths: list[SynthOutput],
):
    """Each container's context as runner 19.3 really sends it (a field its own table leaves
    unset comes from [runners.kubernetes]): the API server must accept it, the job namespace's
    Pod Security level admit it, and only dind's daemon be privileged, and then able to
    escalate (Kubernetes refuses privileged without it)."""
    checked = set()
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            levels = {
                ns["metadata"]["name"]: ns["metadata"]["labels"][
                    "pod-security.kubernetes.io/enforce"
                ]
                for ns in resources(doc, "kubernetes_namespace_v1").values()
            }
            for kind, (_, entry) in _runners(doc).items():
                kube = entry["kubernetes"]
                level = levels[namespace_name(doc, kube["namespace"])]
                pod_seccomp = kube["pod_security_context"]["seccomp_profile"]["type"]
                assert pod_seccomp == "RuntimeDefault"
                for role, context in pod_contexts(kube).items():
                    where = f"{stack}/{kind}/{role}"
                    assert api_server_problems(context) == [], where
                    assert pod_security_problems(level, context, pod_seccomp) == [], where
                    privileged = kind == "dind" and role == "service"
                    assert context.privileged is privileged, where
                    assert context.allow_privilege_escalation is privileged, where
                    assert privileged or "NET_RAW" in context.drop, where
                    assert context.add == (), where
                    checked.add((kind, role))
    assert {kind for kind, _ in checked} == set(RUNNER_TYPES)
    assert len(checked) == len(RUNNER_TYPES) * len(CONTEXT_TABLES)


def test_effective_context_falls_back_to_the_global_flags():
    """A privileged service table that leaves allow_privilege_escalation unset inherits the
    global false: the pod the runner then creates is invalid."""
    kube = {
        "privileged": False,
        "allow_privilege_escalation": False,
        "service_container_security_context": {"privileged": True},
        "build_container_security_context": {"capabilities": {"add": ["CAP_SYS_ADMIN"]}},
        "cap_drop": ["MKNOD"],
    }
    service = effective_context(kube, "service")
    assert (service.privileged, service.allow_privilege_escalation) == (True, False)
    assert api_server_problems(service) == [
        "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
    ]
    assert service.drop == ("MKNOD", "NET_RAW")
    build = effective_context(kube, "build")
    assert build.add == ("CAP_SYS_ADMIN",)
    assert len(api_server_problems(build)) == 1
    assert pod_security_problems("baseline", build, "RuntimeDefault") == [
        "capability CAP_SYS_ADMIN added"
    ]
    assert pod_security_problems("baseline", service, None) == ["privileged"]


def test_dind_talks_tls_to_a_pinned_daemon_in_the_job_pod(example_synth: SynthOutput):
    _, entry = _runners(example_synth.stack("runners-prod"))["dind"]
    env = dict(item.split("=", 1) for item in entry["environment"])
    assert env["DOCKER_HOST"] == "tcp://docker:2376"
    assert env["DOCKER_TLS_VERIFY"] == "1"
    (service,) = entry["kubernetes"]["services"]
    assert service["alias"] == "docker"
    assert "-dind@sha256:" in service["name"]
    (certs,) = entry["kubernetes"]["volumes"]["empty_dir"]
    assert certs["mount_path"] == env["DOCKER_CERT_PATH"]
    assert "@sha256:" in entry["kubernetes"]["image"]


def test_job_pods_carry_the_labels_cleanup_and_policy_select(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for _, doc in stacks_of_kind([synth], "runners"):
            for kind, (_, entry) in _runners(doc).items():
                labels = entry["kubernetes"]["pod_labels"]
                assert labels == {**JOB_POD_LABELS, "attic-iac/runner-type": kind}
                assert entry["feature_flags"]["FF_USE_POD_ACTIVE_DEADLINE_SECONDS"] is True
                assert entry["kubernetes"]["automount_service_account_token"] is False


def test_manager_is_hardened_with_explicit_least_privilege_rbac(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            for kind, (values, _) in _runners(doc).items():
                assert values["rbac"]["create"] is True
                assert values["serviceAccount"]["create"] is True
                rules = values["rbac"]["rules"]
                assert rules, "empty rules grant '*' on the core group"
                for rule in rules:
                    assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
                    assert rule["resources"] != ["secrets"] or "list" not in rule["verbs"]
                namespaces_rule = any("namespaces" in r["resources"] for r in rules)
                assert namespaces_rule is values["rbac"]["clusterWideAccess"], f"{stack}/{kind}"
                ctx = values["securityContext"]
                assert ctx["readOnlyRootFilesystem"]
                assert ctx["runAsNonRoot"]
                assert ctx["capabilities"]["drop"] == ["ALL"]
                assert values["podSecurityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
                assert set(values["resources"]) == {"requests", "limits"}
                assert values["metrics"]["enabled"] is True
                assert "@sha256:" in values["image"]["tag"]


def test_namespace_per_job_gets_cluster_wide_rights_and_cleanup(variants_synth: SynthOutput):
    doc = variants_synth.stack("runners-full")
    values, entry = _runners(doc)["docker"]
    assert entry["kubernetes"]["namespace_per_job"] is True
    assert values["rbac"]["clusterWideAccess"] is True
    spec = json.loads(
        next(
            cm["data"]["cleanup.json"]
            for cm in resources(doc, "kubernetes_config_map_v1").values()
            if "cleanup.json" in cm.get("data", {})
        )
    )
    assert spec["namespace_per_job"] == {"prefix": "ci-job-"}


def test_no_runner_token_ever_reaches_values_or_output(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for _, doc in stacks_of_kind([synth], "runners"):
            text = json.dumps(doc)
            assert "glrt-" not in text
            for values, _ in _runners(doc).values():
                assert "runnerToken" not in values
                assert "runnerRegistrationToken" not in values
                assert "token" not in tomllib.loads(values["runners"]["config"])["runners"][0]


def test_gitlab_api_creates_one_runner_per_type_with_tags_on_gitlab(example_synth: SynthOutput):
    doc = example_synth.stack("runners-prod")
    runners = resources(doc, "gitlab_user_runner")
    assert len(runners) == 5
    by_description = {r["description"]: r for r in runners.values()}
    for kind in RUNNER_TYPES:
        runner = by_description[f"acme prod {kind}"]
        assert runner["runner_type"] == "group_type"
        assert runner["group_id"] == 1234
        assert runner["tag_list"] == [kind]
        assert runner["untagged"] is False
    secrets = resources(doc, "kubernetes_secret_v1")
    for secret in secrets.values():
        token = secret["data"]["runner-token"]
        assert token.startswith("${gitlab_user_runner.")
        assert token.endswith(".token}")
        assert secret["data"]["runner-registration-token"] == ""
    assert doc["variable"]["gitlab_token"]["sensitive"] is True
    assert doc["provider"]["gitlab"][0]["base_url"] == "https://gitlab.com/api/v4/"


def test_gitlab_token_may_be_left_unset(all_synths: list[SynthOutput]):
    """OpenTofu requires every variable whose block has no "default" (with -input=false a plan
    stops at it); gitlab_token must default to null so the provider falls back to GITLAB_TOKEN."""
    seen = 0
    for synth in all_synths:
        for name in synth.stack_names():
            variable = synth.stack(name).get("variable", {}).get("gitlab_token")
            if variable is None:
                continue
            seen += 1
            assert "default" in variable, name
            assert variable["default"] is None
            assert variable["nullable"] is True
    assert seen >= 2


def test_existing_secret_only_references_the_operators_secrets(variants_synth: SynthOutput):
    doc = variants_synth.stack("runners-incluster")
    assert "gitlab_user_runner" not in doc["resource"]
    assert "gitlab" not in doc.get("provider", {})
    for kind, (values, _) in _runners(doc).items():
        assert values["runners"]["secret"] == f"gitlab-runner-{kind}-token"


@pytest.mark.parametrize(
    ("stack", "scope", "ids"),
    [
        ("runners-full", "instance_type", {}),
        ("runners-external", "project_type", {"project_id": 99}),
    ],
)
def test_runner_scope_follows_the_config(variants_synth: SynthOutput, stack, scope, ids):
    for runner in resources(variants_synth.stack(stack), "gitlab_user_runner").values():
        assert runner["runner_type"] == scope
        for key in ("group_id", "project_id"):
            assert runner.get(key) == ids.get(key)


def test_job_egress_allows_public_internet_but_never_private_or_metadata(
    example_synth: SynthOutput,
):
    doc = example_synth.stack("runners-prod")
    policy = resources(doc, "kubernetes_network_policy_v1")["JobPolicy"]
    assert policy["spec"]["pod_selector"]["match_labels"] == JOB_POD_LABELS
    blocks = [
        to["ip_block"]
        for rule in policy["spec"]["egress"]
        for to in rule.get("to", [])
        if "ip_block" in to
    ]
    (internet,) = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert sorted(internet["except"]) == sorted(PRIVATE_RANGES)
    assert "169.254.0.0/16" in internet["except"]
    attic = [
        to
        for rule in policy["spec"]["egress"]
        for to in rule.get("to", [])
        if to.get("namespace_selector", {})
        .get("match_labels", {})
        .get("kubernetes.io/metadata.name")
        == "attic"
    ]
    assert attic, "nix jobs must reach atticd"


def test_no_internet_variant_allows_only_listed_cidrs(variants_synth: SynthOutput):
    doc = variants_synth.stack("runners-incluster")
    policy = resources(doc, "kubernetes_network_policy_v1")["JobPolicy"]
    cidrs = sorted(
        to["ip_block"]["cidr"]
        for rule in policy["spec"]["egress"]
        for to in rule.get("to", [])
        if "ip_block" in to
    )
    assert cidrs == ["10.20.0.0/16", "10.30.0.10/32"]


def test_attic_lets_the_nix_job_namespace_in(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    policy = resources(doc, "kubernetes_network_policy_v1")["AtticPolicy"]
    peers = [
        peer.get("namespace_selector", {}).get("match_labels", {})
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    ]
    assert {"kubernetes.io/metadata.name": "gitlab-runner-jobs"} in peers


def test_nix_jobs_get_attic_first_and_the_push_token(example_synth: SynthOutput):
    _, entry = _runners(example_synth.stack("runners-prod"))["nix"]
    env = dict(item.split("=", 1) for item in entry["environment"])
    assert env["ATTIC_ENDPOINT"] == "http://attic.attic.svc.cluster.local/"
    assert (
        "extra-substituters = http://attic.attic.svc.cluster.local/main?priority=30"
        in (env["NIX_CONFIG"])
    )
    assert env["ATTIC_PUSH_CACHE"] == "main"
    (secret,) = entry["kubernetes"]["volumes"]["secret"]
    assert secret["name"] == "attic-ci-token"
    assert secret["read_only"] is True
    assert "setup.sh" in entry["pre_build_script"]


def test_public_endpoint_and_pull_only_variants(variants_synth: SynthOutput):
    _, entry = _runners(variants_synth.stack("runners-full"))["nix"]
    env = dict(item.split("=", 1) for item in entry["environment"])
    assert env["ATTIC_ENDPOINT"] == "https://attic.full.example.org/"
    assert env["ATTIC_CACHES"] == "main team+dev"
    _, plain = _runners(variants_synth.stack("runners-nobackup"))["nix"]
    assert "environment" not in plain
    assert "pre_build_script" not in plain


def test_s3_cache_uses_camel_case_keys_and_a_secret_or_identity(variants_synth: SynthOutput):
    values, entry = _runners(variants_synth.stack("runners-full"))["docker"]
    cache = entry["cache"]
    assert cache["Type"] == "s3"
    assert cache["Shared"] is True
    assert cache["s3"]["BucketName"] == "runner-cache"
    assert cache["s3"]["AuthenticationType"] == "access-key"
    assert values["runners"]["cache"]["secretName"].startswith("${kubernetes_secret_v1.")
    doc = variants_synth.stack("runners-full")
    assert doc["variable"]["runner_cache_secret_access_key"]["sensitive"] is True
    values, entry = _runners(variants_synth.stack("runners-external"))["docker"]
    assert entry["cache"]["s3"]["AuthenticationType"] == "iam"
    assert "cache" not in values["runners"]
    annotations = values["serviceAccount"]["annotations"]
    assert annotations == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/runner-cache"
    }


def test_every_namespace_has_a_quota_and_limit_range(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            quotas = resources(doc, "kubernetes_resource_quota_v1")
            ranges = resources(doc, "kubernetes_limit_range_v1")
            assert len(quotas) == len(ranges) == 3, stack


def test_priority_classes_rank_managers_above_jobs(example_synth: SynthOutput):
    doc = example_synth.stack("runners-prod")
    classes = {
        pc["metadata"]["name"]: pc for pc in resources(doc, "kubernetes_priority_class_v1").values()
    }
    manager, job = classes["gitlab-runners-manager"], classes["gitlab-runners-job"]
    assert manager["value"] > 0 > job["value"]
    assert job["preemption_policy"] == "Never"
    values, entry = _runners(doc)["docker"]
    assert values["priorityClassName"] == "gitlab-runners-manager"
    assert entry["kubernetes"]["priority_class_name"] == "gitlab-runners-job"


def test_monitoring_follows_the_environment(example_synth: SynthOutput):
    def kinds(stack: str) -> list[str]:
        doc = example_synth.stack(stack)
        return sorted(m["manifest"]["kind"] for m in resources(doc, "kubernetes_manifest").values())

    assert kinds("runners-prod") == ["PodMonitor", "PrometheusRule"]
    assert kinds("runners-dev") == []


def test_agent_access_binds_gitlab_groups(variants_synth: SynthOutput):
    doc = variants_synth.stack("runners-full")
    subjects = sorted(
        subject["name"]
        for binding in resources(doc, "kubernetes_role_binding_v1").values()
        for subject in binding.get("subject", [])
        if subject["kind"] == "Group"
    )
    assert "gitlab:project:42" in subjects
    assert "gitlab:group:7" in subjects


def test_job_placement_is_separate_from_manager_placement(variants_synth: SynthOutput):
    values, entry = _runners(variants_synth.stack("runners-full"))["docker"]
    assert values["nodeSelector"] == {"pool": "system"}
    assert "tolerations" not in values
    kube = entry["kubernetes"]
    assert kube["node_selector"] == {"pool": "ci"}
    assert kube["node_tolerations"] == {"ci=jobs": "NoSchedule", "spot": ""}
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert values["replicas"] == 2


def test_manager_policy_selects_only_manager_pods(example_synth: SynthOutput):
    doc = example_synth.stack("runners-prod")
    policy = resources(doc, "kubernetes_network_policy_v1")["ManagerPolicy"]
    selector = policy["spec"]["pod_selector"]["match_labels"]
    assert selector["app.kubernetes.io/component"] == "runner-manager"
