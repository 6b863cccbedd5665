"""Bad ``attic`` sections: one clear line per bad key, and combinations that cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config_model.loader import load_config
from tests.support.config_files import config_errors, config_with, valid_with, write_config


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("attic.gc.interval", "12", "attic.gc.interval: '12' is not a duration"),
        ("attic.gc.interval", "12 hourz", "attic.gc.interval: '12 hourz': unknown unit 'hourz'"),
        ("attic.gc.schedule", "0 3 * *", "attic.gc.schedule: has the wrong format"),
        (
            "attic.database.backup.schedule",
            "0 2 * * *",
            "attic.database.backup.schedule: has the wrong format (got '0 2 * * *'",
        ),
        ("attic.database.backup.retention", "30 days", "attic.database.backup.retention"),
        ("attic.database.instances", 0, "attic.database.instances: input should be greater"),
        ("attic.database.storage_size", "20 GB", "attic.database.storage_size: has the wrong"),
        (
            "attic.database.recovery",
            {"source_cluster": "old-pg", "target_time": "yesterday"},
            "attic.database.recovery.target_time: has the wrong format (got 'yesterday'",
        ),
        (
            "attic.api.endpoint",
            "https://attic.example.com",
            "attic.api.endpoint: must end with '/'",
        ),
        ("attic.storage.bucket", "Attic_Cache", "attic.storage.bucket: has the wrong format"),
        (
            "attic.storage.public_endpoint",
            "s3.example.com",
            "attic.storage.public_endpoint: must be an http(s):// URL with a host",
        ),
        (
            "attic.storage.s3.credentials",
            "static",
            "attic.storage.s3.credentials: not an allowed value",
        ),
        ("attic.ingress.controller", "haproxy", "attic.ingress.controller: not an allowed value"),
        ("attic.ingress.host", "Attic.Example.com", "attic.ingress.host: must be a lowercase DNS"),
        (
            "attic.ingress.load_balancer_cidrs",
            ["10.40.0.5/24"],
            "attic.ingress.load_balancer_cidrs.0: must be an address range such as "
            "203.0.113.10/32 or 10.40.0.0/24, with no bits set past the prefix "
            "(got '10.40.0.5/24')",
        ),
        (
            "attic.ingress.load_balancer_cidrs",
            ["lb.example.com"],
            "attic.ingress.load_balancer_cidrs.0: must be an address range",
        ),
        # An empty port list in a NetworkPolicy means every port.
        (
            "attic.ingress.controller_ports",
            [],
            "attic.ingress.controller_ports: list should have at least 1 item",
        ),
        ("attic.ingress.controller_ports", [0], "attic.ingress.controller_ports.0: input should"),
        (
            "attic.ingress.rate_limit",
            {"client_ip": {"source": "forwarded_for", "excluded_ips": ["10.0.0.0/33"]}},
            "attic.ingress.rate_limit.client_ip.excluded_ips.0: must be an address range",
        ),
        (
            "attic.api.statement_timeout",
            "60",
            "attic.api.statement_timeout: has the wrong format (got '60'",
        ),
        ("attic.compression.type", "gzip", "attic.compression.type: not an allowed value"),
        (
            "attic.image",
            {"repository": "x", "tag": "y", "digest": "sha256:1"},
            "attic.image.digest",
        ),
        ("attic.chunking.avg", 1, "attic.chunking.avg: unknown key"),
        ("attic.caches", [{"name": "-main"}], "attic.caches.0.name: not an Attic cache name"),
        (
            "attic.caches",
            [{"name": "main", "retention": "100 years"}],
            "attic.caches.0.retention: atticd stores retention as i32 seconds",
        ),
        (
            "attic.tokens",
            [{"name": "ci", "type": "ci", "permissions": {"push": ["bad?"]}}],
            "attic.tokens.0.permissions.push.0: not an Attic cache pattern",
        ),
        (
            "attic.tokens",
            [{"name": "ci", "type": "robot", "permissions": {"pull": ["main"]}}],
            "attic.tokens.0.type: not an allowed value",
        ),
        (
            "attic.tokens",
            [{"name": "ci", "type": "ci", "rotate_before": "soon", "permissions": {"pull": ["x"]}}],
            "attic.tokens.0.rotate_before: 'soon' is not a duration",
        ),
    ],
)
def test_attic_keys_get_one_clear_line(tmp_path: Path, path: str, value: Any, expected: str):
    errors = config_errors(tmp_path, valid_with(path, value))
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors[0]
    assert f"[{tmp_path / 'organization.yaml'}:" in errors[0], "the file line is missing"


@pytest.mark.parametrize(
    ("attic", "platform", "key", "message"),
    [
        (
            {"ingress": {"enabled": False}},
            {},
            "attic.storage.clients_outside_cluster",
            "with backend 'seaweedfs' Nix clients outside the cluster are redirected",
        ),
        (
            {"storage": {"backend": "s3", "public_endpoint": "https://s3.example.com"}},
            {},
            "attic.storage.public_endpoint",
            "only for in-cluster backends",
        ),
        (
            {
                "storage": {
                    "backend": "s3",
                    "s3": {"endpoint": "https://r2.example.com", "create_bucket": True},
                }
            },
            {},
            "attic.storage.s3.create_bucket",
            "creates AWS S3 buckets",
        ),
        (
            {},
            {"barman_cloud_plugin": "none"},
            "attic.database.backup.enabled",
            "backups need the Barman Cloud plugin",
        ),
        (
            {"database": {"recovery": {"source_cluster": "attic-pg"}}},
            {},
            "attic.database.recovery.source_cluster",
            "must differ from attic.database.cluster_name",
        ),
        (
            {"api": {"min_replicas": 5, "max_replicas": 3}},
            {},
            "attic.api.min_replicas",
            "must not exceed attic.api.max_replicas (3)",
        ),
        (
            {"caches": [{"name": "main"}, {"name": "main"}]},
            {},
            "attic.caches.1.name",
            "duplicate cache",
        ),
        (
            {"tokens": [{"name": "ro", "type": "read_only", "permissions": {"push": ["main"]}}]},
            {},
            "attic.tokens.0.permissions",
            "a read_only token may only pull (got push)",
        ),
        (
            {"tokens": [{"name": "ci", "type": "ci", "permissions": {}}]},
            {},
            "attic.tokens.0.permissions",
            "grants nothing",
        ),
        (
            {
                "tokens": [
                    {
                        "name": "ci",
                        "type": "ci",
                        "validity": "10 days",
                        "rotate_before": "14 days",
                        "permissions": {"pull": ["main"]},
                    }
                ]
            },
            {},
            "attic.tokens.0.rotate_before",
            "must be shorter than the validity",
        ),
        (
            {
                "tokens": [
                    {
                        "name": "adm",
                        "type": "admin",
                        "rotate_before": "5%",
                        "permissions": {"pull": ["*"]},
                    }
                ]
            },
            {},
            "attic.tokens.0.rotate_before",
            "must leave at least 2 hours",
        ),
        (
            {
                "tokens": [
                    {
                        "name": "s3",
                        "type": "ci",
                        "secret_name": "attic-s3",
                        "permissions": {"pull": ["main"]},
                    }
                ]
            },
            {},
            "attic.tokens.0.secret_name",
            "is one of the stack's own Secrets",
        ),
        (
            {
                "caches": [{"name": "main"}],
                "tokens": [
                    # atticd takes the first matching wildcard: "ma*" grants pull only.
                    {"name": "w", "type": "ci", "permissions": {"pull": ["ma*"], "push": ["m*"]}}
                ],
                "cache_warming": {
                    "enabled": True,
                    "cache": "main",
                    "token": "w",
                    "installables": ["nixpkgs#hello"],
                },
            },
            {},
            "attic.cache_warming.token",
            "token 'w' cannot pull and push 'main'",
        ),
        (
            {
                "caches": [{"name": "main"}],
                "tokens": [
                    {
                        "name": "w",
                        "type": "ci",
                        "namespace": "ci",
                        "permissions": {"pull": ["main"], "push": ["main"]},
                    }
                ],
                "cache_warming": {"enabled": True, "token": "w", "installables": ["x#y"]},
            },
            {},
            "attic.cache_warming.token",
            "the warming job runs in attic",
        ),
        (
            {"cache_warming": {"enabled": True, "token": "none", "installables": ["x#y"]}},
            {},
            "attic.cache_warming.cache",
            "is not declared in attic.caches (declared: none)",
        ),
        (
            {"dns": {"provider": "cloudflare", "target": "203.0.113.1"}},
            {},
            "attic.dns.zone_id",
            "is required with provider 'cloudflare'",
        ),
        (
            {
                "dns": {
                    "provider": "cloudflare",
                    "zone_id": "0" * 32,
                    "target": "203.0.113.1",
                    "proxied": True,
                }
            },
            {},
            "attic.dns.proxied",
            "Cloudflare's proxy caps request bodies at 100 MB",
        ),
        (
            {"storage": {"seaweedfs": {"filer_store": "postgres"}}},
            {},
            "attic.storage.seaweedfs.filer_store",
            "'postgres' puts SeaweedFS's file index in the database whose backups this",
        ),
        (
            {"database": {"backup": {"s3": {"credentials": "secret"}}}},
            {},
            "attic.database.backup.s3.secret_name",
            "is required with credentials 'secret'",
        ),
        (
            {"database": {"backup": {"s3": {"secret_name": "keys"}}}},
            {},
            "attic.database.backup.s3.secret_name",
            "is only read with credentials 'secret' (credentials is 'variables')",
        ),
        (
            {"database": {"backup": {"s3": {"service_account_annotations": {"a": "b"}}}}},
            {},
            "attic.database.backup.s3.service_account_annotations",
            "are only set with credentials 'workload_identity'",
        ),
        (
            {"ingress": {"rate_limit": {"client_ip": {"source": "forwarded_for"}}}},
            {},
            "attic.ingress.rate_limit.client_ip.source",
            "forwarded_for needs exactly one of depth or excluded_ips",
        ),
        (
            {"ingress": {"rate_limit": {"client_ip": {"depth": 1}}}},
            {},
            "attic.ingress.rate_limit.client_ip.depth",
            "is not used with source 'remote_address'",
        ),
        (
            {"ingress": {"rate_limit": {"client_ip": {"source": "header"}}}},
            {},
            "attic.ingress.rate_limit.client_ip.header",
            "is required with source 'header'",
        ),
        (
            {"ingress": {"controller": "nginx", "rate_limit": {"burst": 150}}},
            {},
            "attic.ingress.rate_limit.burst",
            "must be a multiple of average (100): ingress-nginx allows limit-rps x",
        ),
        (
            {
                "ingress": {
                    "controller": "nginx",
                    "rate_limit": {"client_ip": {"source": "header", "header": "X-Real-Ip"}},
                }
            },
            {},
            "attic.ingress.rate_limit.client_ip.source",
            "ingress-nginx limits by the address its own real-IP settings give",
        ),
        (
            {"bazel_cache": {"enabled": True, "min_replicas": 4, "max_replicas": 2}},
            {},
            "attic.bazel_cache.min_replicas",
            "must not exceed attic.bazel_cache.max_replicas (2)",
        ),
    ],
)
def test_attic_combinations_that_cannot_work_are_rejected(
    tmp_path: Path, attic: dict[str, Any], platform: dict[str, Any], key: str, message: str
):
    errors = config_errors(tmp_path, config_with(attic=attic, platform=platform or None))
    assert errors[0].startswith(f"{key}: {message}"), errors
    # The cache-warming case without a token also reports the missing token, nothing else.
    assert len(errors) == (2 if key == "attic.cache_warming.cache" else 1), errors


def test_in_cluster_storage_without_outside_clients_needs_no_ingress(tmp_path: Path):
    data = config_with(
        attic={"ingress": {"enabled": False}, "storage": {"clients_outside_cluster": False}}
    )
    config = load_config(write_config(tmp_path, data))
    assert config.base.attic.storage.public_endpoint is None


_BESIDE_THE_CACHE = (
    "the environment protects its state (protect_stateful), but its Postgres backups"
)


def test_protected_environments_warn_about_backups_beside_the_cache(tmp_path: Path):
    config = load_config(write_config(tmp_path, config_with()))
    assert [w.split(":")[0] for w in config.warnings] == ["dev", "prod"]
    assert all(_BESIDE_THE_CACHE in w and "attic.database.backup.s3" in w for w in config.warnings)
    unprotected = config_with()
    unprotected["environments"]["dev"]["protect_stateful"] = False
    off_site = {"database": {"backup": {"s3": {"endpoint": "https://s3.example.net"}}}}
    unprotected["environments"]["prod"]["overrides"] = {"attic": off_site}
    assert load_config(write_config(tmp_path, unprotected)).warnings == ()
    accepted = config_with(attic={"database": {"backup": {"in_cluster": "allow"}}})
    assert load_config(write_config(tmp_path, accepted)).warnings == ()


def test_refuse_turns_the_warning_into_an_error_per_environment(tmp_path: Path):
    data = config_with(attic={"database": {"backup": {"in_cluster": "refuse"}}})
    data["environments"]["dev"]["overrides"] = {
        "attic": {"database": {"backup": {"enabled": False}}}
    }
    errors = config_errors(tmp_path, data)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"attic.database.backup.in_cluster: {_BESIDE_THE_CACHE}")
    assert "(in environment 'prod')" in errors[0]


def test_two_environments_cannot_archive_into_one_folder(tmp_path: Path):
    off_site = {"database": {"backup": {"s3": {"endpoint": "https://s3.example.net"}}}}
    errors = config_errors(tmp_path, config_with(attic=off_site))
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "attic.database.backup.bucket: environments 'dev' and 'prod' would archive Postgres "
        "into the same folder (https://s3.example.net, bucket attic-pg-backups, folder attic-pg/)"
    )
    data = config_with(attic=off_site)
    data["environments"]["prod"]["overrides"] = {
        "attic": {"database": {"backup": {"bucket": "attic-pg-prod"}}}
    }
    assert load_config(write_config(tmp_path, data)).warnings == ()
