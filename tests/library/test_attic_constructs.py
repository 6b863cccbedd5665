"""Unit tests of the attic-stack constructs and their validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.attic.attic_server import AtticServer, AtticServerProps
from constructs_lib.attic.pod import DatabaseRef
from constructs_lib.attic.server_config import render_server_toml, server_config_problems
from constructs_lib.kubernetes.rate_limit import ClientIp, RateLimitProps
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.kubernetes.web_ingress import WebIngress, WebIngressProps
from constructs_lib.postgres.cnpg_cluster import (
    ClusterBackup,
    CnpgCluster,
    CnpgClusterProps,
    ManagedRole,
)
from constructs_lib.postgres.database_login import DatabaseLogin, DatabaseLoginProps
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)
from constructs_lib.storage.s3_endpoint import StorageIdentity
from constructs_lib.storage.seaweedfs import FilerPostgres, SeaweedFs, SeaweedFsProps
from constructs_lib.validation import PropsError
from tests.support.ingress_routing import traefik_client
from tests.support.synth_output import resources
from upstream_formats.humantime import parse_duration

GOOD: dict[str, Any] = {
    "listen": "0.0.0.0:8080",
    "api-endpoint": "https://attic.example.com/",
    "database": {"heartbeat": True},
    "storage": {"type": "s3", "region": "us-east-1", "bucket": "attic"},
    "chunking": {
        "nar-size-threshold": 65536,
        "min-size": 16384,
        "avg-size": 65536,
        "max-size": 262144,
    },
    "garbage-collection": {"interval": "12 hours", "default-retention-period": "0s"},
}


def _stack() -> TerraformStack:
    return TerraformStack(CdktfTesting.app(), "test")


def _with(**sections: Any) -> dict[str, Any]:
    return {**GOOD, **sections}


def test_the_good_config_has_no_problems_and_renders():
    assert server_config_problems(GOOD) == []
    assert 'api-endpoint = "https://attic.example.com/"' in render_server_toml(GOOD)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (_with(**{"allowed_hosts": []}), "allowed_hosts: unknown key"),
        (_with(chunking={**GOOD["chunking"], "avg_size": 1}), "chunking.avg_size: unknown key"),
        (_with(database={"url": "postgres://u:p@h/db"}), "database.url: secrets never go into"),
        (
            _with(storage={**GOOD["storage"], "credentials": {"access_key_id": "x"}}),
            "storage.credentials: secrets never go into",
        ),
        (_with(jwt={"signing": {}}), "jwt.signing: secrets never go into"),
        (
            _with(**{"api-endpoint": "https://attic.example.com"}),
            "api-endpoint: 'https://attic.example.com' must be an http(s) URL ending in '/'",
        ),
        (
            _with(chunking={**GOOD["chunking"], "min-size": 32}),
            "chunking.min-size: 32 is outside fastcdc's 64..67108864",
        ),
        (
            _with(chunking={**GOOD["chunking"], "min-size": 131072}),
            "chunking: min-size <= avg-size <= max-size must hold (got 131072, 65536, 262144)",
        ),
        (
            _with(chunking={k: v for k, v in GOOD["chunking"].items() if k != "max-size"}),
            "chunking.max-size: required",
        ),
        (
            _with(**{"garbage-collection": {"interval": "12"}}),
            "garbage-collection.interval: '12' is not a duration",
        ),
        (_with(compression={"type": "gzip"}), "compression.type: 'gzip' is not one of"),
        (_with(storage={"type": "s3", "bucket": "b"}), "storage.region: required for type 's3'"),
        ({k: v for k, v in GOOD.items() if k != "chunking"}, "[chunking]: the section is required"),
        (_with(**{"soft-delete-caches": "yes"}), "soft-delete-caches: must be a boolean"),
    ],
)
def test_server_config_problems_name_key_value_and_rule(doc: dict[str, Any], expected: str):
    problems = server_config_problems(doc)
    assert any(p.startswith(expected) for p in problems), problems


def test_known_keys_cover_attics_own_config_template(refdata: Path):
    """Every key attic's template documents (commented or not) passes our key check."""
    text = (refdata / "attic" / "config-template.toml").read_text()
    section = ""
    doc: dict[str, Any] = {}
    for line in text.splitlines():
        stripped = line.lstrip("#").strip()
        if m := re.fullmatch(r"\[([a-z.-]+)\]", stripped):
            section = m.group(1)
            continue
        if m := re.fullmatch(r"([a-z_-]+) = .*", stripped):
            key = m.group(1)
            top = section.split(".")[0]
            # Secrets are rejected on purpose: they come from the environment.
            if section in {"jwt.signing", "storage.credentials"} or (top, key) == (
                "database",
                "url",
            ):
                continue
            (doc.setdefault(top, {}) if top else doc)[key] = None
    unknown = [p for p in server_config_problems(doc) if "unknown key" in p]
    assert unknown == []
    assert {"listen", "allowed-hosts", "api-endpoint"} <= set(doc)


def test_humantime_matches_atticds_units():
    assert parse_duration("12 hours") == 43200
    assert parse_duration("1h 30m") == 5400
    assert parse_duration("1 month") == 2_630_016
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("123")


def test_to_struct_rejects_a_misspelt_field():
    from cdktf_cdktf_provider_kubernetes.deployment_v1 import DeploymentV1Spec

    with pytest.raises(TypeError, match=r"unknown field 'template\.spec\.container\[0\]\.imagee'"):
        to_struct(
            DeploymentV1Spec,
            {"selector": {}, "template": {"spec": {"container": [{"name": "c", "imagee": "x"}]}}},
        )


def _server(**overrides: Any) -> AtticServerProps:
    props: dict[str, Any] = {
        "namespace": "attic",
        "server_config": GOOD,
        "database": DatabaseRef(url_secret="pg-app", ca_secret="pg-ca"),
        "signing_secret": "signing",
        "signing_key": "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
        "storage_credentials": None,
    }
    props.update(overrides)
    return AtticServerProps(**props)


def test_attic_server_reports_every_problem_at_once():
    bad = _with(chunking={**GOOD["chunking"], "max-size": 512}, listn="x")
    with pytest.raises(PropsError) as info:
        AtticServer(
            _stack(),
            "Attic",
            _server(server_config=bad, min_replicas=3, max_replicas=2, gc_schedule="daily"),
        )
    problems = info.value.problems
    assert any("listn: unknown key" in p for p in problems)
    assert any("chunking.max-size: 512 is outside" in p for p in problems)
    assert any(p.startswith("min_replicas/max_replicas") for p in problems)
    assert any(p.startswith("gc_schedule:") for p in problems)


def test_attic_server_uses_a_cronjob_when_the_interval_is_zero():
    stack = _stack()
    config = _with(**{"garbage-collection": {"interval": "0s"}})
    server = AtticServer(stack, "Attic", _server(server_config=config))
    assert server.gc_mode == "cronjob"
    synthesized = CdktfTesting.synth(stack)
    assert "kubernetes_cron_job_v1" in synthesized
    assert "garbage-collector-once" in synthesized


def test_database_url_verifies_the_server_certificate():
    stack = _stack()
    AtticServer(stack, "Attic", _server())
    synthesized = CdktfTesting.synth(stack)
    assert "$(ATTIC_PG_URI)?sslmode=verify-full&sslrootcert=/etc/attic/pg-ca/ca.crt" in synthesized


def test_cnpg_cluster_rejects_a_five_field_backup_cron():
    with pytest.raises(PropsError, match="needs 6 fields"):
        CnpgCluster(
            _stack(),
            "Pg",
            CnpgClusterProps(
                name="pg",
                namespace="attic",
                backup=ClusterBackup(object_store="store", schedule="0 2 * * *"),
            ),
        )


def test_credentials_secret_refuses_literal_keys():
    with pytest.raises(PropsError, match="never a literal"):
        S3CredentialsSecret(
            _stack(),
            "Creds",
            S3CredentialsSecretProps(
                name="s3", namespace="attic", access_key_id="AKIA1234", secret_access_key="x"
            ),
        )


def test_seaweedfs_release_name_must_contain_seaweedfs():
    identity = StorageIdentity(name="a", bucket="b", secret_namespace="n", secret_name="s")
    with pytest.raises(PropsError, match="must contain 'seaweedfs'"):
        SeaweedFs(
            _stack(), "S", SeaweedFsProps(namespace="st", identities=[identity], release_name="s3")
        )


def test_seaweedfs_filer_database_needs_a_generated_password_and_tls():
    identity = StorageIdentity(name="a", bucket="b", secret_namespace="n", secret_name="s")
    filer = FilerPostgres(
        host="pg-rw.attic.svc", database="fs", user="fs", password="hunter2", sslmode="prefer"
    )
    with pytest.raises(PropsError) as info:
        SeaweedFs(
            _stack(),
            "S",
            SeaweedFsProps(namespace="st", identities=[identity], filer_postgres=filer),
        )
    assert any(
        p.startswith("filer_postgres.password: must be a reference") for p in info.value.problems
    )
    assert any(p.startswith("filer_postgres.sslmode: 'prefer'") for p in info.value.problems)


def test_database_login_and_roles_refuse_names_postgres_would_need_quoted_or_owns():
    with pytest.raises(PropsError, match="must be a lowercase identifier"):
        DatabaseLogin(
            _stack(), "L", DatabaseLoginProps(role="Seaweed-FS", namespace="n", secret_name="s")
        )
    with pytest.raises(PropsError, match="is the application database's owner"):
        CnpgCluster(
            _stack(),
            "Pg",
            CnpgClusterProps(
                name="pg", namespace="n", roles=[ManagedRole(name="app", password_secret="s")]
            ),
        )


def test_traffic_policy_needs_a_rule_and_valid_peers():
    with pytest.raises(PropsError) as info:
        TrafficPolicy(
            _stack(),
            "P",
            TrafficPolicyProps(
                name="p",
                namespace="n",
                egress=[Rule(peers=[Peer(namespace="x", cidr="10.0.0.0/8")], ports=[0])],
            ),
        )
    assert any("outside 1-65535" in p for p in info.value.problems)
    assert any("mixes cidr" in p for p in info.value.problems)


def _ingress_props(**overrides: Any) -> WebIngressProps:
    props: dict[str, Any] = {
        "name": "attic",
        "namespace": "attic",
        "host": "attic.example.com",
        "service_name": "attic",
        "service_port": 80,
        "controller": "traefik",
        "controller_namespace": "traefik",
        "cluster_issuer": "le",
    }
    return WebIngressProps(**{**props, **overrides})


def _limited_ingress(controller: str, limit: RateLimitProps) -> dict[str, Any]:
    stack = _stack()
    WebIngress(stack, "I", _ingress_props(controller=controller, rate_limit=limit))
    return json.loads(CdktfTesting.synth(stack))


def test_rate_limit_rejects_what_the_controller_would_do_otherwise():
    with pytest.raises(PropsError) as info:
        _limited_ingress(
            "nginx",
            RateLimitProps(
                average=100, burst=150, paths=("/", "/api"), client_ip=ClientIp(depth=1)
            ),
        )
    problems = "\n".join(info.value.problems)
    assert "'/' limits the whole host" in problems
    assert "ingress-nginx limits by the client address its own real-IP settings" in problems
    assert "burst: 150 must be a multiple of average (100)" in problems
    with pytest.raises(PropsError, match="set one of depth, excluded_ips, header"):
        _limited_ingress(
            "traefik",
            RateLimitProps(
                average=1, burst=1, paths=("/api/",), client_ip=ClientIp(depth=1, header="X-Ip")
            ),
        )


@pytest.mark.parametrize(
    ("client_ip", "trusted", "expected"),
    [
        (ClientIp(), True, "10.0.0.5"),
        (ClientIp(header="CF-Connecting-IP"), False, "203.0.113.7"),
        (ClientIp(excluded_ips=("10.0.0.0/8",)), True, "203.0.113.7"),
        (ClientIp(depth=1), True, "203.0.113.7"),
        # Without forwardedHeaders.trustedIPs Traefik strips X-Forwarded-For: one shared bucket.
        (ClientIp(depth=1), False, ""),
    ],
)
def test_traefik_counts_requests_for_the_client_it_is_told(
    client_ip: ClientIp, trusted: bool, expected: str
):
    doc = _limited_ingress(
        "traefik", RateLimitProps(average=5, burst=10, paths=("/_api/",), client_ip=client_ip)
    )
    (middleware,) = (m["manifest"] for m in doc["resource"]["kubernetes_manifest"].values())
    headers = {"X-Forwarded-For": "203.0.113.7, 10.9.8.7", "CF-Connecting-IP": "203.0.113.7"}
    if client_ip.depth:
        headers["X-Forwarded-For"] = "198.51.100.1, 203.0.113.7"
    spec = middleware["spec"]["rateLimit"]
    assert traefik_client(spec, "10.0.0.5", headers, trusted=trusted) == expected


def test_ingress_lets_the_controller_reach_acme_http01_solvers_and_nothing_else():
    stack = _stack()
    WebIngress(stack, "I", _ingress_props(controller_namespace="ingress-nginx"))
    doc = json.loads(CdktfTesting.synth(stack))
    [policy] = resources(doc, "kubernetes_network_policy_v1").values()
    assert policy["metadata"] == {"name": "attic-acme-http01", "namespace": "attic"}
    assert policy["spec"] == {
        "pod_selector": {"match_labels": {"acme.cert-manager.io/http01-solver": "true"}},
        "policy_types": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespace_selector": {
                            "match_labels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                        },
                        "pod_selector": {"match_labels": {}},
                    }
                ],
                "ports": [{"port": "8089", "protocol": "TCP"}],
            }
        ],
    }
    # A DNS-01 (or non-ACME) issuer needs no opening.
    stack = _stack()
    WebIngress(stack, "I", _ingress_props(acme_http01=False))
    doc = json.loads(CdktfTesting.synth(stack))
    assert resources(doc, "kubernetes_network_policy_v1") == {}
    with pytest.raises(PropsError, match="controller_namespace: 'Traefik'"):
        WebIngress(_stack(), "J", _ingress_props(controller_namespace="Traefik"))


def test_server_extra_errors_reach_the_user_as_one_clean_exit(tmp_path: Path):
    import subprocess
    import sys

    from tests.conftest import REPO

    data = yaml.safe_load((REPO / "config" / "organization.example.yaml").read_text())
    data["attic"]["server_extra"] = {"allowed_hosts": []}
    config = tmp_path / "organization.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "iac_tools.cli",
            "synth",
            "--config",
            str(config),
            "--outdir",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "server_config: allowed_hosts: unknown key" in run.stderr
    assert "Traceback" not in run.stderr
    assert not out.exists()
