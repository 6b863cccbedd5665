"""Bad configs: every problem reported at once, one line each, naming key, value and file line.

The ``attic`` and ``runners`` sections have modules of their own (test_attic_config_errors.py,
test_runner_config_errors.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from config_model.loader import ConfigError, load_config
from tests.support.config_files import DELETE, VALID, config_errors, valid_with, write_config


def test_the_valid_base_loads(tmp_path: Path):
    config = load_config(write_config(tmp_path, VALID))
    assert list(config.environments) == ["dev", "prod"]
    assert config.base.gitlab.state_username == "gitlab-ci-token"
    assert config.environments["prod"].settings.protect_stateful is True


def test_numeric_project_id_is_accepted(tmp_path: Path):
    config = load_config(write_config(tmp_path, valid_with("gitlab.state_project_id", 123)))
    assert config.base.gitlab.state_project_id == "123"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("organization.name", "Acme", "organization.name: has the wrong format (got 'Acme'"),
        ("organization.full_name", DELETE, "organization.full_name: required key is missing"),
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
            DELETE,
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
            "dashbord",
            {},
            "dashbord: unknown key (allowed: attic, dashboard, environments, gitlab, monitoring, "
            "organization, platform, runners)",
        ),
    ],
)
def test_one_clear_line_per_bad_key(tmp_path: Path, path: str, value: Any, expected: str):
    errors = config_errors(tmp_path, valid_with(path, value))
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected) or expected in errors[0], errors[0]
    assert f"[{tmp_path / 'organization.yaml'}:" in errors[0], "the file line is missing"


def test_cert_manager_none_is_rejected_while_backups_are_possible(tmp_path: Path):
    errors = config_errors(tmp_path, valid_with("platform", {"cert_manager": "none"}))
    assert errors == [
        "platform.cert_manager: cert-manager is required while platform.barman_cloud_plugin "
        "is 'install' (the plugin's operator link uses cert-manager certificates); allowed: "
        "'external', 'install', or set platform.barman_cloud_plugin to 'none' to run without "
        f"database backups (got 'none') [{tmp_path / 'organization.yaml'}:15]"
    ]


def test_cert_manager_none_without_backups_is_fine(tmp_path: Path):
    data = valid_with("platform", {"cert_manager": "none", "barman_cloud_plugin": "none"})
    data["attic"] = {"database": {"backup": {"enabled": False}}}
    assert load_config(write_config(tmp_path, data)).base.platform.cert_manager == "none"


def test_override_problems_point_into_the_overrides(tmp_path: Path):
    data = valid_with("environments.dev.overrides", {"platform": {"cert_manager": "none", "x": 1}})
    errors = config_errors(tmp_path, data)
    assert len(errors) == 1
    assert errors[0].startswith("environments.dev.overrides.platform.x: unknown key")


def test_cross_field_problem_made_by_an_override(tmp_path: Path):
    data = valid_with("environments.dev.overrides", {"platform": {"cert_manager": "none"}})
    errors = config_errors(tmp_path, data)
    assert len(errors) == 1
    assert errors[0].startswith(
        "environments.dev.overrides.platform.cert_manager: cert-manager is required"
    )


def test_problem_from_the_base_reported_once_not_per_environment(tmp_path: Path):
    errors = config_errors(tmp_path, valid_with("platform", {"cert_manager": "bogus"}))
    assert len(errors) == 1


def test_overrides_cannot_redefine_environments(tmp_path: Path):
    data = valid_with("environments.dev.overrides", {"environments": {}})
    assert config_errors(tmp_path, data)[0].startswith(
        "environments.dev.overrides.environments: overrides cannot redefine environments"
    )


def test_overrides_merge_deeply_and_apply_to_one_environment(tmp_path: Path):
    data = valid_with(
        "environments.dev.overrides", {"platform": {"namespaces": {"cnpg": "pg-ops"}}}
    )
    data["platform"] = {"cert_manager": "install"}
    config = load_config(write_config(tmp_path, data))
    dev, prod = config.environments["dev"].config, config.environments["prod"].config
    assert dev.platform.namespaces.cnpg == "pg-ops"
    assert dev.platform.cert_manager == "install"  # kept from the base
    assert prod.platform.namespaces.cnpg == "cnpg-system"


def test_every_problem_is_reported_at_once(tmp_path: Path):
    data = valid_with("organization.name", "Bad Name")
    data["gitlab"]["url"] = "ftp://x"
    data["environments"]["dev"]["domain"] = "nope"
    errors = config_errors(tmp_path, data)
    assert [e.split(":")[0] for e in errors] == [
        "organization.name",
        "gitlab.url",
        "environments.dev.domain",
    ]


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path: Path):
    text = "organization: {name: a1, full_name: A}\norganization: {name: b1, full_name: B}\n"
    errors = config_errors(tmp_path, text)
    assert errors[0].startswith("organization: duplicate key (first defined on line 1)")
    assert errors[0].endswith(":2]")


def test_yaml_syntax_error_gives_one_location_with_line_and_column(tmp_path: Path):
    errors = config_errors(tmp_path, "organization:\n  name: [unclosed\ngitlab: {}\n")
    assert len(errors) == 1
    message, location = errors[0].rsplit(" [", 1)
    assert message == "<file>: YAML syntax error: expected ',' or ']', but got ':'"
    # one location, path:line:column of the offending token ("gitlab:" on line 3)
    assert re.fullmatch(r".*organization\.yaml:3:7\]", location)
    assert errors[0].count("[") == 1


def test_yaml_tab_indent_points_at_the_tab(tmp_path: Path):
    errors = config_errors(tmp_path, "organization:\n\tname: a1\n")
    assert errors[0].startswith("<file>: YAML syntax error: found character '\\t'")
    assert errors[0].endswith(":2:1]")


@pytest.mark.parametrize(
    ("text", "expected"), [("", "an empty file"), ("- a\n- b\n", "got a list")]
)
def test_the_file_must_be_a_mapping(tmp_path: Path, text: str, expected: str):
    errors = config_errors(tmp_path, text)
    assert errors[0].startswith("<file>: the file must be a mapping")
    assert expected in errors[0]


def test_a_url_password_is_never_echoed(tmp_path: Path):
    errors = config_errors(
        tmp_path, valid_with("gitlab.url", "https://root:hunter2@gitlab.com?x=1")
    )
    assert "hunter2" not in "\n".join(errors)
    assert "https://***@gitlab.com" in errors[0]


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.lines == [
        f"{tmp_path / 'nope.yaml'}: cannot read the config file (No such file or directory)"
    ]
