"""Bad configs: every problem reported at once, one line each, naming key, value and file line."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_model.loader import ConfigError, load_config

VALID: dict[str, Any] = {
    "organization": {"name": "acme", "full_name": "Acme Corp"},
    "gitlab": {"url": "https://gitlab.com", "state_project_id": "123"},
    "environments": {
        "dev": {"cluster_context": "a:dev", "domain": "dev.example.com"},
        "prod": {"cluster_context": "a:prod", "domain": "example.com"},
    },
}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "organization.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _errors(tmp_path: Path, data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, data))
    return info.value.lines


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


def test_the_valid_base_loads(tmp_path: Path):
    config = load_config(_write(tmp_path, VALID))
    assert list(config.environments) == ["dev", "prod"]
    assert config.base.gitlab.state_username == "gitlab-ci-token"
    assert config.environments["prod"].settings.protect_stateful is True


def test_numeric_project_id_is_accepted(tmp_path: Path):
    config = load_config(_write(tmp_path, _with("gitlab.state_project_id", 123)))
    assert config.base.gitlab.state_project_id == "123"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("organization.name", "Acme", "organization.name: has the wrong format (got 'Acme'"),
        ("organization.full_name", _DELETE, "organization.full_name: required key is missing"),
        (
            "gitlab.url",
            "http://gitlab.com",
            "gitlab.url: must be an https:// URL with a host (got 'http://gitlab.com')",
        ),
        ("gitlab.url", "gitlab.com", "gitlab.url: must be an https:// URL"),
        (
            "gitlab.state_project_id",
            "group/project",
            "gitlab.state_project_id: has the wrong format (got 'group/project'",
        ),
        (
            "gitlab.state_username",
            "",
            "gitlab.state_username: string should have at least 1 character",
        ),
        (
            "gitlab.token",
            "x",
            "gitlab.token: unknown key (allowed: state_project_id, state_username, url)",
        ),
        ("environments", {}, "environments: dictionary should have at least 1 item"),
        (
            "environments.Dev",
            {"cluster_context": "c", "domain": "d.example.com"},
            "environments.Dev: invalid name",
        ),
        (
            "environments.1dev",
            {"cluster_context": "c", "domain": "d.example.com"},
            "environments.1dev: invalid name",
        ),
        (
            "environments.a-very-long-environment",
            {"cluster_context": "c", "domain": "d.example.com"},
            "invalid name",
        ),
        (
            "environments.dev.cluster_context",
            _DELETE,
            "environments.dev.cluster_context: required key is missing",
        ),
        (
            "environments.dev.domain",
            "Dev.Example.com",
            "environments.dev.domain: must be a lowercase DNS name",
        ),
        (
            "environments.dev.domain",
            "localhost",
            "environments.dev.domain: must be a lowercase DNS name",
        ),
        (
            "environments.dev.protect_stateful",
            "maybe",
            "environments.dev.protect_stateful: input should be a valid boolean",
        ),
        (
            "platform.cert_manager",
            "helm",
            "platform.cert_manager: not an allowed value "
            "(got 'helm'; allowed: 'external', 'install' or 'none')",
        ),
        ("platform.cnpg_operator", "none", "platform.cnpg_operator: not an allowed value"),
        (
            "platform.namespaces.cnpg",
            "CNPG",
            "platform.namespaces.cnpg: has the wrong format (got 'CNPG'",
        ),
        (
            "attic.storage.backend",
            "gcs",
            "attic.storage.backend: not an allowed value "
            "(got 'gcs'; allowed: 's3', 'seaweedfs' or 'minio')",
        ),
        (
            "dashboard",
            {},
            "dashboard: unknown key "
            "(allowed: attic, environments, gitlab, monitoring, organization, platform, runners)",
        ),
    ],
)
def test_one_clear_line_per_bad_key(tmp_path: Path, path: str, value: Any, expected: str):
    errors = _errors(tmp_path, _with(path, value))
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected) or expected in errors[0], errors[0]
    assert f"[{tmp_path / 'organization.yaml'}:" in errors[0], "the file line is missing"


def test_cert_manager_none_is_rejected_while_backups_are_possible(tmp_path: Path):
    errors = _errors(tmp_path, _with("platform", {"cert_manager": "none"}))
    assert errors == [
        "platform.cert_manager: cert-manager is required while platform.barman_cloud_plugin "
        "is 'install' (the plugin's operator link uses cert-manager certificates); allowed: "
        "'external', 'install', or set platform.barman_cloud_plugin to 'none' to run without "
        f"database backups (got 'none') [{tmp_path / 'organization.yaml'}:15]"
    ]


def test_cert_manager_none_without_backups_is_fine(tmp_path: Path):
    data = _with("platform", {"cert_manager": "none", "barman_cloud_plugin": "none"})
    data["attic"] = {"database": {"backup": {"enabled": False}}}
    assert load_config(_write(tmp_path, data)).base.platform.cert_manager == "none"


def test_override_problems_point_into_the_overrides(tmp_path: Path):
    data = _with("environments.dev.overrides", {"platform": {"cert_manager": "none", "x": 1}})
    errors = _errors(tmp_path, data)
    assert len(errors) == 1
    assert errors[0].startswith("environments.dev.overrides.platform.x: unknown key")


def test_cross_field_problem_made_by_an_override(tmp_path: Path):
    data = _with("environments.dev.overrides", {"platform": {"cert_manager": "none"}})
    errors = _errors(tmp_path, data)
    assert len(errors) == 1
    assert errors[0].startswith(
        "environments.dev.overrides.platform.cert_manager: cert-manager is required"
    )


def test_problem_from_the_base_reported_once_not_per_environment(tmp_path: Path):
    errors = _errors(tmp_path, _with("platform", {"cert_manager": "bogus"}))
    assert len(errors) == 1


def test_overrides_cannot_redefine_environments(tmp_path: Path):
    data = _with("environments.dev.overrides", {"environments": {}})
    assert _errors(tmp_path, data)[0].startswith(
        "environments.dev.overrides.environments: overrides cannot redefine environments"
    )


def test_overrides_merge_deeply_and_apply_to_one_environment(tmp_path: Path):
    data = _with("environments.dev.overrides", {"platform": {"namespaces": {"cnpg": "pg-ops"}}})
    data["platform"] = {"cert_manager": "install"}
    config = load_config(_write(tmp_path, data))
    dev, prod = config.environments["dev"].config, config.environments["prod"].config
    assert dev.platform.namespaces.cnpg == "pg-ops"
    assert dev.platform.cert_manager == "install"  # kept from the base
    assert prod.platform.namespaces.cnpg == "cnpg-system"


def test_every_problem_is_reported_at_once(tmp_path: Path):
    data = _with("organization.name", "Bad Name")
    data["gitlab"]["url"] = "ftp://x"
    data["environments"]["dev"]["domain"] = "nope"
    errors = _errors(tmp_path, data)
    assert [e.split(":")[0] for e in errors] == [
        "organization.name",
        "gitlab.url",
        "environments.dev.domain",
    ]


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path: Path):
    text = "organization: {name: a1, full_name: A}\norganization: {name: b1, full_name: B}\n"
    errors = _errors(tmp_path, text)
    assert errors[0].startswith("organization: duplicate key (first defined on line 1)")
    assert errors[0].endswith(":2]")


def test_yaml_syntax_error_gives_one_location_with_line_and_column(tmp_path: Path):
    errors = _errors(tmp_path, "organization:\n  name: [unclosed\ngitlab: {}\n")
    assert len(errors) == 1
    message, location = errors[0].rsplit(" [", 1)
    assert message == "<file>: YAML syntax error: expected ',' or ']', but got ':'"
    # one location, path:line:column of the offending token ("gitlab:" on line 3)
    assert re.fullmatch(r".*organization\.yaml:3:7\]", location)
    assert errors[0].count("[") == 1


def test_yaml_tab_indent_points_at_the_tab(tmp_path: Path):
    errors = _errors(tmp_path, "organization:\n\tname: a1\n")
    assert errors[0].startswith("<file>: YAML syntax error: found character '\\t'")
    assert errors[0].endswith(":2:1]")


@pytest.mark.parametrize(
    ("text", "expected"), [("", "an empty file"), ("- a\n- b\n", "got a list")]
)
def test_the_file_must_be_a_mapping(tmp_path: Path, text: str, expected: str):
    errors = _errors(tmp_path, text)
    assert errors[0].startswith("<file>: the file must be a mapping")
    assert expected in errors[0]


def test_a_url_password_is_never_echoed(tmp_path: Path):
    errors = _errors(tmp_path, _with("gitlab.url", "https://root:hunter2@gitlab.com?x=1"))
    assert "hunter2" not in "\n".join(errors)
    assert "https://***@gitlab.com" in errors[0]


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.lines == [
        f"{tmp_path / 'nope.yaml'}: cannot read the config file (No such file or directory)"
    ]


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
    errors = _errors(tmp_path, _with(path, value))
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
    data = copy.deepcopy(VALID)
    data["attic"] = attic
    if platform:
        data["platform"] = platform
    errors = _errors(tmp_path, data)
    assert errors[0].startswith(f"{key}: {message}"), errors
    # The cache-warming case without a token also reports the missing token, nothing else.
    assert len(errors) == (2 if key == "attic.cache_warming.cache" else 1), errors


def test_in_cluster_storage_without_outside_clients_needs_no_ingress(tmp_path: Path):
    data = copy.deepcopy(VALID)
    data["attic"] = {"ingress": {"enabled": False}, "storage": {"clients_outside_cluster": False}}
    config = load_config(_write(tmp_path, data))
    assert config.base.attic.storage.public_endpoint is None


_CACHES: dict[str, Any] = {
    "caches": [{"name": "main"}],
    "tokens": [
        {
            "name": "ci",
            "type": "ci",
            "namespace": "gitlab-runner-jobs",
            "permissions": {"pull": ["main"], "push": ["main"]},
        },
        {"name": "ro", "type": "read_only", "permissions": {"pull": ["main"]}},
    ],
}


@pytest.mark.parametrize(
    ("runners", "attic", "key", "message"),
    [
        ({"types": {"docker2": {}}}, {}, "runners.types.docker2", "unknown key"),
        (
            {"types": {"docker": {"privileged": True}}},
            {},
            "runners.types.docker.privileged",
            "only the dind type runs privileged job pods",
        ),
        (
            {"types": {"dind": {"privileged": False}}},
            {},
            "runners.types.dind.privileged",
            "dind needs privileged job pods",
        ),
        (
            {"types": {"docker": {"concurrent": 40}}},
            {},
            "runners.budgets.jobs.quota.limits.cpu",
            "is below what docker, nix, rocky8, rocky9 need at full concurrency (138",
        ),
        (
            {"types": {"nix": {"job_ceilings": {"cpu_limit": "16"}}}},
            {},
            "runners.types.nix.job_ceilings.cpu_limit",
            "is above runners.budgets.jobs.max.cpu (8)",
        ),
        (
            {"types": {"rocky9": {"job": {"memory_limit": "32Gi"}}}},
            {},
            "runners.types.rocky9.job.memory_limit",
            "is above runners.budgets.jobs.max.memory (16Gi)",
        ),
        (
            {
                "cleanup": {"max_age": "2 hours"},
                "token_source": "gitlab_api",
                "gitlab_api": {"group_id": 5},
            },
            {},
            "runners.cleanup.max_age",
            "must exceed runners.types.docker gitlab.maximum_timeout + poll_timeout (11400 s)",
        ),
        (
            {"token_source": "gitlab_api"},
            {},
            "runners.gitlab_api.group_id",
            "is required with runner_type group_type",
        ),
        (
            {"types": {"nix": {"gitlab": {"tags": ["nix"]}}}},
            {},
            "runners.types.nix.gitlab",
            "has no effect with token_source existing_secret",
        ),
        (
            {"namespace": "attic"},
            {},
            "runners.namespace",
            "is already used by attic.namespace",
        ),
        (
            {"agent_access": [{"project_id": 1, "group_id": 2}]},
            {},
            "runners.agent_access.0",
            "give exactly one of project_id or group_id",
        ),
        (
            {"attic": {"token": "ro"}},
            _CACHES,
            "runners.attic.token",
            "its Secret is delivered to attic, and nix jobs run in gitlab-runner-jobs",
        ),
        (
            {"attic": {"token": None, "caches": ["main"]}},
            _CACHES,
            "runners.attic.token",
            "caches main are private, so nix jobs need a token",
        ),
        (
            {"attic": {"token": "ci", "caches": ["other"]}},
            _CACHES,
            "runners.attic.caches",
            "is not declared in attic.caches (main)",
        ),
        (
            {"cache": {"enabled": True, "bucket": "runner-cache"}},
            {},
            "runners.cache.server_address",
            "is required when the runner cache is enabled",
        ),
    ],
)
def test_runner_combinations_that_cannot_work_are_rejected(
    tmp_path: Path, runners: dict[str, Any], attic: dict[str, Any], key: str, message: str
):
    data = copy.deepcopy(VALID)
    data["runners"] = runners
    if attic:
        data["attic"] = attic
    errors = _errors(tmp_path, data)
    assert any(line.startswith(f"{key}: {message}") for line in errors), errors


def test_a_read_only_token_cannot_be_the_push_token(tmp_path: Path):
    data = copy.deepcopy(VALID)
    attic = copy.deepcopy(_CACHES)
    attic["tokens"][1]["namespace"] = "gitlab-runner-jobs"
    data["attic"] = attic
    data["runners"] = {"attic": {"token": "ro"}}
    errors = _errors(tmp_path, data)
    assert len(errors) == 1, errors
    assert errors[0].startswith("runners.attic.token: token 'ro' cannot pull and push 'main'")
