"""Settings: defaults, every problem reported at once, secrets only from files and never
echoed, the environment checked against the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from config_model.wiring import dashboard_namespaces
from dashboard.settings import Settings, SettingsError
from tests.dashboard.web_support import (
    CLIENT_SECRET,
    READ_TOKEN,
    SESSION_KEY,
    base_env,
    make_settings,
    write_secrets,
)


def _errors(env: dict[str, str], *, demo: bool = False) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env, demo=demo)
    return caught.value.lines


def test_defaults(tmp_path: Path):
    settings = make_settings(tmp_path)
    assert settings.environment == "dev"
    assert settings.redirect_uri == "https://dash.example.test/auth/callback"
    assert settings.viewer_min_access == 20
    assert (settings.config_file, settings.config_branch) == ("config/organization.yaml", "main")
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8080, 9090)
    assert (settings.session_max_age, settings.session_idle) == (12 * 3600, 3600)
    assert settings.role_recheck == 300
    assert (settings.sse_max_clients, settings.sse_queue) == (1000, 32)
    assert (settings.gitlab_poll, settings.prometheus_poll) == (30, 30)
    assert settings.prometheus_url is None
    assert settings.kubernetes_url is None
    assert settings.log_level == "info"
    assert settings.oauth_client_secret == CLIENT_SECRET
    assert settings.session_key == SESSION_KEY.encode()
    assert settings.gitlab_read_token == READ_TOKEN
    config = settings.config.environments["dev"].config
    assert settings.watched_namespaces == dashboard_namespaces(config)
    assert settings.kubernetes_token is None


def test_gitlab_url_defaults_to_the_config(tmp_path: Path):
    env = base_env(tmp_path)
    del env["DASHBOARD_GITLAB_URL"]
    assert Settings.from_env(env).gitlab_url == "https://gitlab.com"


def test_values_are_parsed(tmp_path: Path):
    settings = make_settings(
        tmp_path,
        DASHBOARD_VIEWER_MIN_ACCESS="Developer",
        DASHBOARD_SESSION_MAX_AGE="8h",
        DASHBOARD_SESSION_IDLE="30m",
        DASHBOARD_ROLE_RECHECK="1m 30s",
        DASHBOARD_PROMETHEUS_URL="http://prometheus.monitoring.svc:9090/",
        DASHBOARD_GITLAB_GROUP="instance",
        DASHBOARD_PORT="8000",
        DASHBOARD_LOG_LEVEL="DEBUG",
    )
    assert settings.viewer_min_access == 30
    assert (settings.session_max_age, settings.session_idle) == (8 * 3600, 1800)
    assert settings.role_recheck == 90
    assert settings.prometheus_url == "http://prometheus.monitoring.svc:9090"
    assert settings.gitlab_group == "instance"
    assert settings.port == 8000
    assert settings.log_level == "debug"
    assert make_settings(tmp_path, DASHBOARD_VIEWER_MIN_ACCESS="15").viewer_min_access == 15


def test_every_problem_is_reported_at_once(tmp_path: Path):
    env = {
        **base_env(tmp_path),
        "DASHBOARD_ENVIRONMENT": "qa",
        "DASHBOARD_PUBLIC_URL": "http://dash.example.test",
        "DASHBOARD_VIEWER_MIN_ACCESS": "admin",
        "DASHBOARD_SESSION_MAX_AGE": "12",
        "DASHBOARD_SESSION_IDLE": "soon",
        "DASHBOARD_PORT": "tcp://10.0.0.1:8080",
        "DASHBOARD_SSE_QUEUE": "0",
        "DASHBOARD_LOG_LEVEL": "loud",
        "DASHBOARD_GITLAB_GROUP": "../etc",
    }
    del env["DASHBOARD_OAUTH_CLIENT_ID"]
    lines = _errors(env)
    expected = [
        "DASHBOARD_ENVIRONMENT: is not an environment of the config (got 'qa'; allowed: "
        "dev, staging, prod)",
        "DASHBOARD_PUBLIC_URL: is not a usable URL (got 'http://dash.example.test'",
        "DASHBOARD_VIEWER_MIN_ACCESS: is not an access level (got 'admin'; allowed: "
        "guest/planner/reporter/developer/maintainer/owner or 10..50)",
        "DASHBOARD_SESSION_MAX_AGE: is not a positive duration (got '12'",
        "DASHBOARD_SESSION_IDLE: is not a positive duration (got 'soon'",
        "DASHBOARD_PORT: is not a whole number in range (a Kubernetes Service named "
        "'dashboard' injects",
        "DASHBOARD_SSE_QUEUE: is not a whole number in range (got '0'",
        "DASHBOARD_LOG_LEVEL: is not a log level (got 'loud'",
        "DASHBOARD_GITLAB_GROUP: is not a GitLab id or path (got '../etc'",
        "DASHBOARD_OAUTH_CLIENT_ID: is required",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert len(lines) == len(expected), lines


def test_required_variables(tmp_path: Path):
    lines = _errors({"ATTIC_IAC_CONFIG": base_env(tmp_path)["ATTIC_IAC_CONFIG"]})
    named = {line.split(":", 1)[0] for line in lines}
    assert {
        "DASHBOARD_ENVIRONMENT",
        "DASHBOARD_PUBLIC_URL",
        "DASHBOARD_GITLAB_GROUP",
        "DASHBOARD_CONFIG_PROJECT",
        "DASHBOARD_OAUTH_CLIENT_ID",
        "DASHBOARD_SECRETS_DIR",  # the default directory does not exist here
    } <= named


def test_secrets_come_from_files_only_and_are_never_echoed(tmp_path: Path):
    env = {
        **base_env(tmp_path),
        "DASHBOARD_OAUTH_CLIENT_SECRET": "env-secret-value-123",
        "DASHBOARD_GITLAB_READ_TOKEN": "glpat-from-env-456",
    }
    write_secrets(tmp_path / "secrets", **{"session-key": "short-key-789"})
    (tmp_path / "secrets" / "gitlab-read-token").unlink()
    lines = _errors(env)
    text = "\n".join(lines)
    for secret in ("env-secret-value-123", "glpat-from-env-456", "short-key-789"):
        assert secret not in text
    assert any(
        line.startswith("DASHBOARD_OAUTH_CLIENT_SECRET: secrets are read from files")
        for line in lines
    )
    assert any(
        line.startswith("DASHBOARD_GITLAB_READ_TOKEN: secrets are read from files")
        for line in lines
    )
    assert any(
        "session-key holds 13 characters" in line and "at least 32" in line for line in lines
    )
    assert any("gitlab-read-token" in line and "cannot read" in line for line in lines)


def test_secret_values_are_not_in_the_repr(tmp_path: Path):
    settings = make_settings(tmp_path)
    text = repr(settings)
    for secret in (CLIENT_SECRET, SESSION_KEY, READ_TOKEN):
        assert secret not in text


def test_a_bad_config_file_is_reported_with_the_rest(tmp_path: Path):
    broken = tmp_path / "organization.yaml"
    broken.write_text("organization: [\n")
    lines = _errors({**base_env(tmp_path), "ATTIC_IAC_CONFIG": str(broken), "DASHBOARD_PORT": "x"})
    assert any(line.startswith("ATTIC_IAC_CONFIG: ") and "YAML" in line for line in lines)
    assert any(line.startswith("DASHBOARD_PORT: ") for line in lines)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DASHBOARD_PUBLIC_URL", "https://dash.example.test/sub"),
        ("DASHBOARD_PUBLIC_URL", "javascript:alert(1)"),
        ("DASHBOARD_GITLAB_URL", "ftp://gitlab.example.test"),
        ("DASHBOARD_GITLAB_URL", "https://gitlab.example.test/?x=1"),
        ("DASHBOARD_SESSION_IDLE", "13h"),  # longer than the absolute lifetime
        ("DASHBOARD_METRICS_PORT", "8080"),  # the app's port
        ("DASHBOARD_VIEWER_MIN_ACCESS", "60"),
    ],
)
def test_bad_values(tmp_path: Path, variable: str, value: str):
    lines = _errors({**base_env(tmp_path), variable: value})
    assert [line.split(":", 1)[0] for line in lines] == [variable]


def test_plain_http_only_on_loopback(tmp_path: Path):
    settings = make_settings(
        tmp_path,
        DASHBOARD_PUBLIC_URL="http://127.0.0.1:8080",
        DASHBOARD_GITLAB_URL="http://localhost:9000",
    )
    assert settings.public_url == "http://127.0.0.1:8080"


def test_demo_fills_what_a_local_run_cannot_know(tmp_path: Path):
    env = {"ATTIC_IAC_CONFIG": base_env(tmp_path)["ATTIC_IAC_CONFIG"]}
    env["DASHBOARD_SECRETS_DIR"] = str(tmp_path / "none")
    settings = Settings.from_env(env, demo=True)
    assert settings.demo
    assert settings.environment == "dev"  # the config's first environment
    assert settings.public_url == "http://127.0.0.1:8080"
    assert len(settings.session_key) >= 32
    other = Settings.from_env(env, demo=True)
    assert other.session_key != settings.session_key  # random per process, never a constant


def test_a_kubernetes_token_file_is_read_only_with_a_kubernetes_url(tmp_path: Path):
    env = base_env(tmp_path)
    write_secrets(tmp_path / "secrets", **{"kubernetes-token": "kube-token-value"})
    assert Settings.from_env(env).kubernetes_token is None  # in-cluster: the service account's
    with_url = Settings.from_env({**env, "DASHBOARD_KUBERNETES_URL": "http://127.0.0.1:6443"})
    assert with_url.kubernetes_token == "kube-token-value"
    assert "kube-token-value" in with_url.secret_values()
    assert "kube-token-value" not in repr(with_url)
    (tmp_path / "secrets" / "kubernetes-token").unlink()
    without = Settings.from_env({**env, "DASHBOARD_KUBERNETES_URL": "http://127.0.0.1:6443"})
    assert without.kubernetes_token is None
