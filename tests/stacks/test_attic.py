"""attic-<env>: what an operator relies on, read from the synthesized stacks."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml

from tests.support.pg_session import effective_setting, expand_env
from tests.support.synth_output import SynthOutput, manifests, resources, stacks_of_kind


def _pod_specs(doc: dict[str, Any]):
    for rtype in ("kubernetes_deployment_v1", "kubernetes_job_v1"):
        for address, item in resources(doc, rtype).items():
            yield rtype, address, item["spec"]["template"]["spec"]
    for address, item in resources(doc, "kubernetes_cron_job_v1").items():
        spec = item["spec"]["job_template"]["spec"]["template"]["spec"]
        yield "kubernetes_cron_job_v1", address, spec


def _server_toml(doc: dict[str, Any]) -> dict[str, Any]:
    (config_map,) = (
        c for c in resources(doc, "kubernetes_config_map_v1").values() if "server.toml" in c["data"]
    )
    return tomllib.loads(config_map["data"]["server.toml"])


def test_every_environment_has_an_attic_stack_after_platform_and_runners(
    all_synths: list[SynthOutput],
):
    for synth in all_synths:
        stacks = synth.manifest["stacks"]
        attic = [name for name in stacks if name.startswith("attic-")]
        assert attic
        for name in attic:
            env = name.removeprefix("attic-")
            assert stacks[name]["dependencies"] == [f"platform-{env}", f"runners-{env}"]


def test_every_attic_pod_is_hardened(all_synths: list[SynthOutput]):
    """atticd, the operations Jobs and the warming CronJob: all pass Pod Security restricted."""
    checked = 0
    for name, doc in stacks_of_kind(all_synths, "attic"):
        for _rtype, address, spec in _pod_specs(doc):
            containers = [*spec.get("init_container", []), *spec["container"]]
            # Only the token rotation and the signing-key Job talk to the Kubernetes API.
            command = spec["container"][0].get("command", [])
            api = "tokens" in command or any(part.endswith("/signing_key.py") for part in command)
            assert spec["automount_service_account_token"] is api, address
            pod = spec["security_context"]
            assert pod["run_as_non_root"] is True
            assert pod["seccomp_profile"] == {"type": "RuntimeDefault"}
            for container in containers:
                ctx = container["security_context"]
                where = (name, address, container["name"])
                assert ctx["run_as_non_root"] is True, where
                assert int(ctx["run_as_user"]) > 0, where
                assert ctx["read_only_root_filesystem"] is True, where
                assert ctx["allow_privilege_escalation"] is False, where
                assert ctx["privileged"] is False, where
                assert ctx["capabilities"] == {"drop": ["ALL"]}, where
                assert ctx["seccomp_profile"] == {"type": "RuntimeDefault"}, where
                assert set(container["resources"]) == {"requests", "limits"}, where
                assert "@sha256:" in container["image"], container["image"]
                checked += 1
    assert checked >= 3 * 12


def test_atticd_containers_get_tmp_logging_and_secret_refs(all_synths: list[SynthOutput]):
    checked = 0
    for _name, doc in stacks_of_kind(all_synths, "attic"):
        for _rtype, address, spec in _pod_specs(doc):
            for container in spec["container"]:
                if container["name"] != "atticd":
                    continue
                assert {"mount_path": "/tmp", "name": "tmp"} in container["volume_mount"]
                env = {e["name"]: e for e in container["env"]}
                assert env["RUST_LOG"]["value"] == "info"
                for secret in ("ATTIC_PG_URI", "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"):
                    assert "secret_key_ref" in env[secret]["value_from"], (address, secret)
                checked += 1
    assert checked >= 3 * 6


def test_modes_split_migrations_api_and_a_single_collector(all_synths: list[SynthOutput]):
    for name, doc in stacks_of_kind(all_synths, "attic"):
        modes: dict[str, list[str]] = {}
        for rtype, _address, spec in _pod_specs(doc):
            if spec["container"][0]["name"] != "atticd":
                continue
            args = spec["container"][0]["args"]
            modes.setdefault(args[args.index("--mode") + 1], []).append(rtype)
        assert modes["db-migrations"] == ["kubernetes_job_v1"]
        assert modes["api-server"] == ["kubernetes_deployment_v1"]
        collectors = modes.get("garbage-collector", []) + modes.get("garbage-collector-once", [])
        assert len(collectors) == 1, (name, modes)
        gc_interval = _server_toml(doc)["garbage-collection"]["interval"]
        expected = "kubernetes_cron_job_v1" if gc_interval == "0s" else "kubernetes_deployment_v1"
        assert collectors == [expected], name
        assert "monolithic" not in modes


def test_garbage_collector_is_one_pod_replaced_not_rolled(all_synths: list[SynthOutput]):
    for _name, doc in stacks_of_kind(all_synths, "attic"):
        for address, item in resources(doc, "kubernetes_deployment_v1").items():
            if "GarbageCollector" in address:
                assert item["spec"]["replicas"] == "1"
                assert item["spec"]["strategy"] == {"type": "Recreate"}
        for item in resources(doc, "kubernetes_cron_job_v1").values():
            assert item["spec"]["concurrency_policy"] == "Forbid"


def test_api_probes_hit_slash_with_an_allowed_host(all_synths: list[SynthOutput]):
    for name, doc in stacks_of_kind(all_synths, "attic"):
        allowed = _server_toml(doc)["allowed-hosts"]
        for address, item in resources(doc, "kubernetes_deployment_v1").items():
            container = item["spec"]["template"]["spec"]["container"][0]
            if "GarbageCollector" in address or container["name"] != "atticd":
                continue  # garbage-collector mode serves no HTTP (see .checkov.yaml)
            for probe in ("liveness_probe", "readiness_probe"):
                http = container[probe]["http_get"]
                assert http["path"] == "/"
                assert http["port"] == "http"
                assert http["http_header"][0]["value"] in allowed, name
            assert container["port"] == [{"container_port": 8080, "name": "http"}]


def test_api_scales_with_hpa_pdb_and_spread(all_synths: list[SynthOutput]):
    for _name, doc in stacks_of_kind(all_synths, "attic"):
        (hpa,) = (
            h
            for a, h in resources(doc, "kubernetes_horizontal_pod_autoscaler_v2").items()
            if a.startswith("Attic_")
        )
        spec = hpa["spec"]
        metrics = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metric"]}
        assert metrics["cpu"] == {"average_utilization": 70, "type": "Utilization"}
        assert metrics["memory"] == {"average_utilization": 80, "type": "Utilization"}
        up, down = spec["behavior"]["scale_up"][0], spec["behavior"]["scale_down"][0]
        assert up["stabilization_window_seconds"] == 0
        assert {(p["type"], p["value"], p["period_seconds"]) for p in up["policy"]} == {
            ("Percent", 100, 15),
            ("Pods", 4, 15),
        }
        assert down["stabilization_window_seconds"] == 300
        assert {(p["type"], p["value"], p["period_seconds"]) for p in down["policy"]} == {
            ("Percent", 10, 60),
            ("Pods", 2, 60),
        }
        (pdb,) = (
            p
            for a, p in resources(doc, "kubernetes_pod_disruption_budget_v1").items()
            if a.startswith("Attic_")
        )
        assert pdb["spec"]["max_unavailable"] == "1"
        api = next(d for a, d in resources(doc, "kubernetes_deployment_v1").items() if "Api" in a)
        assert api["lifecycle"]["ignore_changes"] == ["spec[0].replicas"]
        assert api["spec"]["strategy"]["rolling_update"]["max_unavailable"] == "0"
        keys = {
            c["topology_key"] for c in api["spec"]["template"]["spec"]["topology_spread_constraint"]
        }
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert api["spec"]["template"]["spec"]["termination_grace_period_seconds"] >= 300


def test_prod_scales_two_to_ten_and_dev_runs_one_instance(example_synth: SynthOutput):
    prod, dev = example_synth.stack("attic-prod"), example_synth.stack("attic-dev")
    (hpa,) = resources(prod, "kubernetes_horizontal_pod_autoscaler_v2").values()
    assert (hpa["spec"]["min_replicas"], hpa["spec"]["max_replicas"]) == (2, 10)
    assert manifests(prod, "Cluster")[0]["spec"]["instances"] == 3
    assert manifests(dev, "Cluster")[0]["spec"]["instances"] == 1
    assert manifests(dev, "ScheduledBackup") == []
    assert manifests(dev, "ObjectStore") == []


def test_migrations_rerun_when_image_or_config_changes(example_synth: SynthOutput):
    names = {
        stack: next(iter(resources(example_synth.stack(stack), "kubernetes_job_v1").values()))
        for stack in ("attic-dev", "attic-prod")
    }
    dev, prod = (names[s]["metadata"]["name"] for s in ("attic-dev", "attic-prod"))
    assert dev.startswith("attic-db-migrations-")
    assert dev != prod  # different server.toml, different revision
    assert names["attic-prod"]["wait_for_completion"] is True
    api = next(
        d
        for a, d in resources(example_synth.stack("attic-prod"), "kubernetes_deployment_v1").items()
        if "Api" in a
    )
    assert any("kubernetes_job_v1" in dep for dep in api["depends_on"])


def test_server_toml_is_complete_and_secret_free(all_synths: list[SynthOutput]):
    for _name, doc in stacks_of_kind(all_synths, "attic"):
        toml = _server_toml(doc)
        assert toml["api-endpoint"].endswith("/")
        assert toml["storage"]["type"] == "s3"
        assert set(toml["chunking"]) == {"nar-size-threshold", "min-size", "avg-size", "max-size"}
        assert toml["database"] == {"heartbeat": True}
        assert "jwt" not in toml or "signing" not in toml["jwt"]


def test_in_cluster_storage_is_reached_through_the_public_endpoint(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    toml = _server_toml(doc)
    assert toml["storage"]["endpoint"] == "https://s3.attic.example.com"
    hosts = {
        i["spec"]["rule"][0]["host"]: i for i in resources(doc, "kubernetes_ingress_v1").values()
    }
    assert set(hosts) == {"attic.example.com", "s3.attic.example.com"}
    backend = hosts["s3.attic.example.com"]["spec"]["rule"][0]["http"]["path"][0]["backend"]
    assert backend["service"] == {"name": "seaweedfs-s3", "port": {"number": 8333}}
    # Backups beside the cache (staging) use the internal address, never the public one.
    (store,) = manifests(example_synth.stack("attic-staging"), "ObjectStore")
    assert store["spec"]["configuration"]["endpointURL"].startswith("http://seaweedfs-s3.")


def test_in_cluster_only_clients_get_the_internal_endpoint(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-incluster")
    assert _server_toml(doc)["storage"]["endpoint"] == "http://seaweedfs-s3.attic-storage.svc:8333"
    hosts = [i["spec"]["rule"][0]["host"] for i in resources(doc, "kubernetes_ingress_v1").values()]
    assert hosts == ["attic.incluster.example.org"]


def test_postgres_cluster_is_hardened(all_synths: list[SynthOutput]):
    for _name, doc in stacks_of_kind(all_synths, "attic"):
        (cluster,) = manifests(doc, "Cluster")
        spec = cluster["spec"]
        assert spec["enableSuperuserAccess"] is False
        assert spec["postgresql"]["pg_hba"] == [
            "hostssl all all all scram-sha-256",
            "hostnossl all all all reject",
        ]
        params = spec["postgresql"]["parameters"]
        assert params["log_statement"] == "ddl"
        assert params["log_connections"] == "on"
        assert spec["affinity"]["enablePodAntiAffinity"] is True
        assert "@sha256:" in spec["imageName"]
        assert set(spec["resources"]) == {"requests", "limits"}
        assert "monitoring" not in spec  # enablePodMonitor is deprecated; a PodMonitor instead


# The shape of the ``uri`` key in CNPG's ``<cluster>-app`` Secret.
_PG_URI = "postgresql://attic:secret@attic-pg-rw.attic:5432/attic"


def test_only_the_api_sessions_get_a_statement_timeout(attic_environments):
    """Migrations and garbage collection run statements that grow with the cache (ALTER TABLE,
    bulk DELETEs): Postgres must not cut them; the API's sessions get the configured bound."""
    seen: set[str] = set()
    for env_name, env, doc in attic_environments:
        (cluster,) = manifests(doc, "Cluster")
        parameters = cluster["spec"]["postgresql"]["parameters"]
        for _rtype, address, spec in _pod_specs(doc):
            for container in spec["container"]:
                env_vars = container.get("env", [])
                if not any(v["name"] == "ATTIC_PG_URI" for v in env_vars):
                    continue
                url = expand_env(env_vars, "ATTIC_SERVER_DATABASE_URL", {"ATTIC_PG_URI": _PG_URI})
                mode = container["args"][container["args"].index("--mode") + 1]
                seen.add(mode)
                wanted = env.config.attic.api.statement_timeout or "0"
                if mode != "api-server":
                    wanted = "0"
                timeout = effective_setting(url, parameters, "statement_timeout")
                assert timeout == wanted, (env_name, address, mode)
    assert seen == {"api-server", "db-migrations", "garbage-collector", "garbage-collector-once"}


def test_pod_monitor_only_with_monitoring(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for name, doc in synth.stacks():
            if not name.startswith("attic-"):
                continue
            monitors = manifests(doc, "PodMonitor")
            assert len(monitors) == (
                1 if name in ("attic-staging", "attic-prod", "attic-full", "attic-incluster") else 0
            ), name


def test_namespace_denies_egress_except_dns_and_listed_paths(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    policies = {
        p["metadata"]["name"]: p for p in resources(doc, "kubernetes_network_policy_v1").values()
    }
    deny = policies["default-deny-egress"]["spec"]
    assert deny["pod_selector"] == {}
    assert deny["egress"] == [
        {"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}
    ]
    attic = policies["attic"]["spec"]
    ingress_from = [peer for rule in attic["ingress"] for peer in rule["from"]]
    assert {
        "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "traefik"}},
        "pod_selector": {"match_labels": {}},
    } in ingress_from
    egress_ports = {p["port"] for rule in attic["egress"] for p in rule.get("ports", [])}
    assert "5432" in egress_ports
    postgres = policies["postgres"]["spec"]
    ingress_ports = {p["port"] for rule in postgres["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"5432", "8000", "9187"}


def test_seaweedfs_keys_are_generated_and_scoped_per_bucket(example_synth: SynthOutput):
    doc = example_synth.stack("attic-staging")  # backups in SeaweedFS: two identities
    (release,) = [r for r in resources(doc, "helm_release").values() if r["chart"] == "seaweedfs"]
    values = yaml.safe_load(release["values"][0])
    s3 = values["filer"]["s3"]
    assert s3["enableAuth"] is True
    assert s3["createBuckets"] == [{"name": "attic"}, {"name": "attic-pg-backups"}]
    assert values["volume"]["resizeHook"] == {"enabled": False}
    for component in ("master", "volume", "filer"):
        assert values[component]["containerSecurityContext"]["readOnlyRootFilesystem"] is True
        assert values[component]["podSecurityContext"]["runAsNonRoot"] is True
    config = next(s for a, s in resources(doc, "kubernetes_secret_v1").items() if "S3Config" in a)[
        "data"
    ]["seaweedfs_s3_config"]
    assert config.startswith("${jsonencode(")
    assert '"Write:attic"' in config
    assert '"Write:attic-pg-backups"' in config
    assert len(resources(doc, "random_password")) == 4


@pytest.mark.parametrize(
    ("stack", "variables"),
    [
        (
            "attic-external",
            {
                "attic_s3_access_key_id",
                "attic_s3_secret_access_key",
                "backup_s3_access_key_id",
                "backup_s3_secret_access_key",
                "bazel_s3_access_key_id",
                "bazel_s3_secret_access_key",
                "cloudflare_api_token",
            },
        ),
        ("attic-nobackup", set()),
    ],
)
def test_external_s3_credentials_come_from_sensitive_variables(
    variants_synth: SynthOutput, stack: str, variables: set[str]
):
    doc = variants_synth.stack(stack)
    assert set(doc.get("variable", {})) == variables
    assert all(v["sensitive"] for v in doc.get("variable", {}).values())


def test_workload_identity_has_no_keys_and_annotates_service_accounts(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-nobackup")
    (account,) = (
        a
        for address, a in resources(doc, "kubernetes_service_account_v1").items()
        if address.startswith("Attic_")
    )
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/attic"
    }
    api = next(d for a, d in resources(doc, "kubernetes_deployment_v1").items() if "Api" in a)
    env = {e["name"] for e in api["spec"]["template"]["spec"]["container"][0]["env"]}
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert resources(doc, "kubernetes_ingress_v1") == {}


def test_created_buckets_are_private_versioned_encrypted_and_kept(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-external")
    buckets = resources(doc, "aws_s3_bucket")
    assert {b["bucket"] for b in buckets.values()} == {"attic", "attic-pg-backups", "bazel-cache"}
    assert all(b["force_destroy"] is False for b in buckets.values())
    for block in resources(doc, "aws_s3_bucket_public_access_block").values():
        assert all(
            block[k] is True
            for k in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            )
        )
    for versioning in resources(doc, "aws_s3_bucket_versioning").values():
        assert versioning["versioning_configuration"] == {"status": "Enabled"}
    for sse in resources(doc, "aws_s3_bucket_server_side_encryption_configuration").values():
        assert (
            sse["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
        )
    assert len(resources(doc, "aws_s3_bucket_lifecycle_configuration")) == 3
    assert doc["provider"]["aws"] == [{"region": "eu-west-1"}]


def test_outputs_tell_an_operator_where_things_are(example_synth: SynthOutput):
    outputs = example_synth.stack("attic-prod")["output"]
    assert outputs["cache_url"]["value"] == "https://attic.example.com/"
    assert outputs["pg_cluster_name"]["value"] == "attic-pg"
    assert outputs["namespace"]["value"] == "attic"
    assert not any(o.get("sensitive") for o in outputs.values())


def test_terraform_signing_key_is_rsa_4096_base64_pem(variants_synth: SynthOutput):
    """attic.signing_key.source terraform (the external environment); in_cluster is
    tests/stacks/test_signing_key.py."""
    doc = variants_synth.stack("attic-external")
    (key,) = resources(doc, "tls_private_key").values()
    assert (key["algorithm"], key["rsa_bits"]) == ("RSA", 4096)
    secret = next(s for a, s in resources(doc, "kubernetes_secret_v1").items() if "SigningKey" in a)
    value = secret["data"]["ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"]
    assert value == "${base64encode(tls_private_key.SigningKey_66600D98.private_key_pem)}"
