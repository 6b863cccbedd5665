"""attic-<env> operations, read from the synthesized stacks: cache init, token rotation, cache
warming, Bazel cache, DNS and SLO rules. The in-cluster script itself is tested against fake
servers in test_attic_ops.py; here we check that what the stacks hand it is what it accepts."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.attic.cache_init import AtticCaches, AtticCachesProps, CacheSpec
from constructs_lib.attic.ops import attic_ops
from constructs_lib.attic.ops_pod import AtticadmInputs, ops_script
from constructs_lib.attic.token_rotation import (
    AtticTokenRotation,
    AtticTokenRotationProps,
    TokenSpec,
)
from constructs_lib.validation import PropsError
from tests.support.synth_output import SynthOutput, resources

DAY = 86400
ATTICADM = AtticadmInputs(
    image="attic@sha256:" + "0" * 64,
    config_map="attic-config",
    signing_secret="attic-token-signing",
    signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
)


def _one(items: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (item,) = (v for k, v in items.items() if k.startswith(prefix))
    return item


def _config_maps(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        c["metadata"]["name"]: c["data"]
        for c in resources(doc, "kubernetes_config_map_v1").values()
    }


def _mint_args(container: dict[str, Any]) -> list[str]:
    command = container["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert "exec /bin/atticadm" in command[2]
    assert "make-token" in command[2]
    return command[4:]


def test_cache_init_job_runs_after_the_api_with_a_narrow_short_token(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    job = _one(resources(doc, "kubernetes_job_v1"), "Caches_Job")
    assert job["metadata"]["name"].startswith("attic-caches-")
    assert job["wait_for_completion"] is True
    assert any("kubernetes_deployment_v1.Attic_Api" in d for d in job["depends_on"])
    pod = job["spec"]["template"]["spec"]
    (mint,) = pod["init_container"]
    assert _mint_args(mint) == [
        "--sub",
        "attic-iac/cache-init",
        "--validity",
        "30 minutes",
        "--pull",
        "main",
        "--create-cache",
        "main",
        "--configure-cache",
        "main",
        "--configure-cache-retention",
        "main",
    ]
    env = {e["name"]: e for e in mint["env"]}
    assert "secret_key_ref" in env["ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"]["value_from"]
    # atticadm needs a database URL to load the config but never connects: no DB credentials.
    assert env["ATTIC_SERVER_DATABASE_URL"]["value"] == "sqlite://:memory:"
    (runner,) = pod["container"]
    assert runner["command"][2:] == [
        "caches",
        "--spec",
        "/opt/attic-ops/caches.json",
        "--token-file",
        "/run/attic-tokens/caches.jwt",
    ]
    tokens = next(v for v in pod["volume"] if v["name"] == "tokens")
    assert tokens["empty_dir"]["medium"] == "Memory"


def test_the_script_accepts_the_specs_the_stacks_write(all_synths: list[SynthOutput]):
    checked = 0
    for synth in all_synths:
        for name, doc in synth.stacks():
            for data in _config_maps(doc).values():
                if "attic_ops.py" in data:
                    assert data["attic_ops.py"] == ops_script()
                if "caches.json" in data:
                    spec = attic_ops.parse_caches_spec(json.loads(data["caches.json"]))
                    assert spec.endpoint.startswith("http://attic."), name
                    checked += 1
                if "rotation.json" in data:
                    assert attic_ops.parse_tokens_spec(json.loads(data["rotation.json"]))
                    checked += 1
    assert checked >= 2 * 3 + 2 * 4


def test_declared_cache_settings_reach_the_job(variants_synth: SynthOutput):
    data = _config_maps(variants_synth.stack("attic-full"))["attic-caches"]
    caches = {c["name"]: c for c in json.loads(data["caches.json"])["caches"]}
    assert caches["main"] == {
        "name": "main",
        "is_public": True,
        "priority": 41,
        "upstream_cache_key_names": ["cache.nixos.org-1"],
        "retention_period": {"Period": 30 * DAY},
    }
    assert caches["team+dev"]["retention_period"] == "Global"
    assert caches["team+dev"]["upstream_cache_key_names"] == []


def _caches_job_name(caches: list[CacheSpec]) -> str:
    stack = TerraformStack(CdktfTesting.app(), "t")
    AtticCaches(
        stack,
        "Caches",
        AtticCachesProps(
            namespace="attic",
            caches=caches,
            endpoint="http://attic.attic.svc/",
            attic=ATTICADM,
            python_image="python@sha256:" + "1" * 64,
        ),
    )
    doc = json.loads(CdktfTesting.synth(stack))
    return str(_one(resources(doc, "kubernetes_job_v1"), "Caches_Job")["metadata"]["name"])


def test_cache_init_job_reruns_only_when_the_caches_change():
    base = [CacheSpec(name="main")]
    assert _caches_job_name(base) == _caches_job_name([CacheSpec(name="main")])
    assert _caches_job_name(base) != _caches_job_name([CacheSpec(name="main", public=True)])


def test_cache_init_rejects_bad_props_at_once():
    with pytest.raises(PropsError) as info:
        AtticCaches(
            TerraformStack(CdktfTesting.app(), "t"),
            "Caches",
            AtticCachesProps(
                namespace="attic",
                caches=[CacheSpec(name="-x"), CacheSpec(name="a"), CacheSpec(name="a")],
                endpoint="http://attic.attic.svc",
                attic=ATTICADM,
                python_image="p",
            ),
        )
    assert len(info.value.problems) == 3, info.value.problems


def _rotation_parts(doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cron = _one(resources(doc, "kubernetes_cron_job_v1"), "Tokens_Schedule")
    spec = json.loads(_config_maps(doc)["attic-token-rotator"]["rotation.json"])["tokens"]
    return cron, spec


def test_tokens_are_minted_in_the_cluster_and_rotated_hourly(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    cron, spec = _rotation_parts(doc)
    assert cron["spec"]["schedule"] == "17 * * * *"
    assert cron["spec"]["concurrency_policy"] == "Forbid"
    by_name = {t["name"]: t for t in spec}
    # The seeds: ci and read-only 90 days rotated 14 days before; admin short-lived.
    assert by_name["ci"]["validity_seconds"] == 90 * DAY
    assert by_name["ci"]["rotate_before_seconds"] == 14 * DAY
    assert by_name["readonly"]["validity_seconds"] == 90 * DAY
    assert by_name["admin"]["validity_seconds"] == DAY
    assert by_name["admin"]["rotate_before_seconds"] == 6 * 3600
    assert by_name["ci"]["secret_name"] == "attic-ci-token"
    pod = cron["spec"]["job_template"]["spec"]["template"]["spec"]
    mints = {c["name"]: _mint_args(c) for c in pod["init_container"]}
    assert mints["mint-ci"] == [
        "--sub",
        "attic-iac/ci",
        "--validity",
        f"{90 * DAY}s",
        "--pull",
        "main",
        "--push",
        "main",
    ]
    assert pod["automount_service_account_token"] is True
    # A Job mints at apply time too, so the Secrets exist before the first hourly run.
    job = _one(resources(doc, "kubernetes_job_v1"), "Tokens_Job")
    assert job["wait_for_completion"] is True
    assert job["spec"]["template"]["spec"]["init_container"] == pod["init_container"]


def test_the_service_token_rotates_by_percentage(variants_synth: SynthOutput):
    _cron, spec = _rotation_parts(variants_synth.stack("attic-full"))
    warm = next(t for t in spec if t["name"] == "warm")
    assert warm["validity_seconds"] == 365 * DAY
    assert warm["rotate_before_seconds"] == 365 * DAY // 10


def test_rotator_rbac_names_exactly_the_token_secrets(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-full")
    roles = {
        r["metadata"]["namespace"]: r
        for r in resources(doc, "kubernetes_role_v1").values()
        if r["metadata"]["name"] == "attic-token-rotator"
    }
    assert set(roles) == {"attic", "ci-jobs"}
    ci_rules = roles["ci-jobs"]["rule"]
    assert ci_rules[0] == {
        "api_groups": [""],
        "resources": ["secrets"],
        "resource_names": ["attic-ci-pull-token", "attic-ci-token"],
        "verbs": ["get", "update", "patch"],
    }
    assert ci_rules[1] == {"api_groups": [""], "resources": ["secrets"], "verbs": ["create"]}
    for binding in resources(doc, "kubernetes_role_binding_v1").values():
        (subject,) = binding["subject"]
        assert subject["kind"] == "ServiceAccount"
        assert binding["role_ref"]["kind"] == "Role"
    policy = next(
        item["manifest"]
        for item in resources(doc, "kubernetes_manifest").values()
        if item["manifest"]["kind"] == "ValidatingAdmissionPolicy"
        and item["manifest"]["metadata"]["name"].startswith("attic-token-rotator.")
    )
    (match,) = policy["spec"]["matchConditions"]
    assert match["expression"].startswith(
        "request.userInfo.username == 'system:serviceaccount:${kubernetes_namespace_v1.Namespace"
    )
    assert "${kubernetes_service_account_v1.Tokens_ServiceAccount" in match["expression"]
    allowed = policy["spec"]["validations"][0]["expression"]
    for target in ("ci-jobs/attic-ci-token", "attic/attic-warm-token", "attic/attic-admin-token"):
        assert f"'{target}'" in allowed
    assert policy["spec"]["validations"][1]["expression"] == "object.type == 'Opaque'"
    binding = next(
        item["manifest"]
        for item in resources(doc, "kubernetes_manifest").values()
        if item["manifest"]["kind"] == "ValidatingAdmissionPolicyBinding"
        and item["manifest"]["metadata"]["name"] == policy["metadata"]["name"]
    )
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }


def test_changed_permissions_re_mint_at_once():
    def spec_hash(push: list[str]) -> str:
        token = TokenSpec(
            name="ci",
            namespace="ci",
            secret_name="s",
            validity_seconds=100 * DAY,
            rotate_before_seconds=DAY,
            grants={"pull": ["main"], "push": push},
        )
        return str(token.wire()["spec_hash"])

    assert spec_hash(["main"]) == spec_hash(["main"])
    assert spec_hash(["main"]) != spec_hash(["main", "other"])


def test_token_rotation_rejects_bad_props_at_once():
    bad = TokenSpec(
        name="Bad",
        namespace="ci",
        secret_name="s",
        validity_seconds=10,
        rotate_before_seconds=20,
        grants={"pull": ["bad?"], "fly": ["x"]},
    )
    with pytest.raises(PropsError) as info:
        AtticTokenRotation(
            TerraformStack(CdktfTesting.app(), "t"),
            "Tokens",
            AtticTokenRotationProps(
                namespace="attic", tokens=[bad], attic=ATTICADM, python_image="p", schedule="hourly"
            ),
        )
    text = "\n".join(info.value.problems)
    for needle in (
        "name",
        "unknown permission",
        "not a cache pattern",
        "rotate_before",
        "schedule",
    ):
        assert needle in text, text


def test_cache_warming_pushes_with_a_token_file_and_runs_nix_unprivileged(
    variants_synth: SynthOutput,
):
    doc = variants_synth.stack("attic-full")
    cron = _one(resources(doc, "kubernetes_cron_job_v1"), "CacheWarm_Schedule")
    assert cron["spec"]["schedule"] == "15 3 * * *"
    job = cron["spec"]["job_template"]["spec"]
    assert job["backoff_limit"] == 0
    pod = job["template"]["spec"]
    (seed,) = pod["init_container"]
    assert seed["command"][-1] == "cp -a /nix/. /seed/"
    (warm,) = pod["container"]
    assert warm["command"][2:] == [
        "github:NixOS/nixpkgs/nixos-25.05#hello",
        "github:NixOS/nixpkgs/nixos-25.05#jq",
    ]
    env = {e["name"]: e["value"] for e in warm["env"]}
    assert env["ATTIC_CACHE"] == "main"
    assert "sandbox = false" in env["NIX_CONFIG"].splitlines()
    token = next(v for v in pod["volume"] if v["name"] == "token")
    assert token["secret"]["secret_name"] == "attic-warm-token"
    data = _config_maps(doc)["attic-cache-warm"]
    client = tomllib.loads(data["config.toml"])
    assert client["servers"]["cluster"] == {
        "endpoint": "http://attic.attic.svc/",
        "token-file": "/var/run/attic/token",
    }
    script = data["cache_warm.sh"]
    assert 'push --stdin "$ATTIC_CACHE"' in script
    assert "continue" in script  # a failed build does not stop the others
    assert resources(
        example_doc := variants_synth.stack("attic-external"), "kubernetes_cron_job_v1"
    )
    assert not any("CacheWarm" in a for a in resources(example_doc, "kubernetes_cron_job_v1"))


def test_operations_pods_get_exactly_their_egress(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-full")
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in resources(doc, "kubernetes_network_policy_v1").values()
    }
    init = policies["attic-cache-init"]["egress"]
    assert [r["ports"] for r in init] == [[{"port": "8080", "protocol": "TCP"}]]
    rotation = policies["attic-token-rotation"]["egress"]
    assert {p["port"] for p in rotation[0]["ports"]} == {"443", "6443"}
    warm = policies["attic-cache-warm"]["egress"]
    assert {p["port"] for p in warm[1]["ports"]} == {"80", "443"}


def test_dns_records_are_dns_only_and_use_a_sensitive_token(variants_synth: SynthOutput):
    full = variants_synth.stack("attic-full")
    records = {r["name"]: r for r in resources(full, "cloudflare_dns_record").values()}
    assert set(records) == {"attic.full.example.org", "s3.full.example.org"}
    assert all(r["type"] == "A" and r["proxied"] is False for r in records.values())
    assert full["variable"]["cloudflare_api_token"]["sensitive"] is True
    (provider,) = full["provider"]["cloudflare"]
    assert provider["api_token"] == "${var.cloudflare_api_token}"
    external = variants_synth.stack("attic-external")
    (record,) = resources(external, "cloudflare_dns_record").values()
    assert record["type"] == "CNAME"


def test_slo_rules_and_route_services_only_with_monitoring(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for name, doc in synth.stacks():
            if not name.startswith("attic-"):
                continue
            rules = [
                i["manifest"]
                for i in resources(doc, "kubernetes_manifest").values()
                if i["manifest"]["kind"] == "PrometheusRule"
            ]
            services = {
                s["metadata"]["name"] for s in resources(doc, "kubernetes_service_v1").values()
            }
            monitored = name in ("attic-staging", "attic-prod", "attic-full", "attic-incluster")
            assert len(rules) == (1 if monitored else 0), name
            assert ("attic-cache-info" in services) is monitored, name


def test_ingress_splits_cache_paths_for_the_latency_slis(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-full")
    ingress = resources(doc, "kubernetes_ingress_v1")["Ingress"]  # not Ingress_Limited (/_api/)
    paths = {
        (p["path"], p["path_type"]): p["backend"]["service"]["name"]
        for p in ingress["spec"]["rule"][0]["http"]["path"]
    }
    assert paths[("/main/nix-cache-info", "Exact")] == "attic-cache-info"
    assert paths[("/main/", "Prefix")] == "attic-binary-cache"
    assert paths[("/main/nar/", "Prefix")].startswith("${kubernetes_service_v1.Attic_Service")
    assert not any("team+dev" in path for path, _ in paths)  # '+' is not a valid Ingress path


def test_outputs_name_substituters_and_token_secrets(example_synth: SynthOutput):
    outputs = example_synth.stack("attic-prod")["output"]
    assert outputs["cache_substituters"]["value"] == {"main": "https://attic.example.com/main"}
    assert outputs["token_secret_names"]["value"]["ci"] == "gitlab-runner-jobs/attic-ci-token"
