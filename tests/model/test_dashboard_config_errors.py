"""Bad ``dashboard`` sections: one clear line per problem, naming the key; and the defaults an
enabled dashboard takes from the rest of the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config_model.loader import EXAMPLE_CONFIG, load_config
from config_model.wiring import dashboard_namespaces
from tests.support.config_files import config_errors, config_with

ON: dict[str, Any] = {
    "enabled": True,
    "gitlab_group": "7",
    "config_project": "acme/infra/attic-iac",
    "oauth": {"client_id": "application-id"},
}


def _dashboard(**changes: Any) -> dict[str, Any]:
    return {**ON, **changes}


def test_an_enabled_dashboard_names_everything_it_still_needs(tmp_path: Path):
    errors = config_errors(tmp_path, config_with(dashboard={"enabled": True}))
    assert [line.split(" (got")[0] for line in errors] == [
        "dashboard.gitlab_group: is required when the dashboard is enabled",
        "dashboard.config_project: is required when the dashboard is enabled",
        "dashboard.oauth.client_id: is required when the dashboard is enabled, unless "
        "dashboard.oauth.create_application is true",
    ]


def test_a_disabled_dashboard_needs_nothing(tmp_path: Path):
    from tests.support.config_files import write_config

    loaded = load_config(write_config(tmp_path, config_with(dashboard={"enabled": False})))
    assert not loaded.base.dashboard.enabled


@pytest.mark.parametrize(
    ("dashboard", "attic", "key", "message"),
    [
        (
            _dashboard(oauth={"client_id": "abc", "create_application": True}),
            None,
            "dashboard.oauth.client_id",
            "comes from the application dashboard.oauth.create_application creates; remove it, "
            "or set create_application to false (got 'abc')",
        ),
        (
            _dashboard(gitlab_group="acme//platform"),
            None,
            "dashboard.gitlab_group",
            "must be a group id (digits), a group's full path such as acme/platform, or 'instance'",
        ),
        (_dashboard(gitlab_group=0), None, "dashboard.gitlab_group", "must be a group id"),
        (
            _dashboard(config_project="attic-iac"),
            None,
            "dashboard.config_project",
            "must be a project id (digits) or its full path such as acme/attic-iac "
            "(got 'attic-iac')",
        ),
        (
            _dashboard(config_file="/etc/organization.yaml"),
            None,
            "dashboard.config_file",
            "must be a relative path in the repository",
        ),
        (
            _dashboard(config_file="config/../other.yaml"),
            None,
            "dashboard.config_file",
            "must be a relative path in the repository",
        ),
        (
            _dashboard(config_branch="a..b"),
            None,
            "dashboard.config_branch",
            "must be a branch name such as main",
        ),
        (
            _dashboard(viewer_min_access="admin"),
            None,
            "dashboard.viewer_min_access",
            "not an allowed value (got 'admin'; allowed: 'guest', 'planner', 'reporter', "
            "'developer', 'maintainer' or 'owner')",
        ),
        (
            _dashboard(replicas=0),
            None,
            "dashboard.replicas",
            "input should be greater than or equal to 1",
        ),
        (
            _dashboard(drift_alert_after="2 hours"),
            None,
            "dashboard.drift_alert_after",
            "has the wrong format (got '2 hours'",
        ),
        (
            _dashboard(api_server_cidrs=["10.0.0.1/8"]),
            None,
            "dashboard.api_server_cidrs.0",
            "must be an address range",
        ),
        (
            _dashboard(api_server_cidrs=[]),
            None,
            "dashboard.api_server_cidrs",
            "list should have at least 1 item",
        ),
        (
            _dashboard(namespace="attic"),
            None,
            "dashboard.namespace",
            "is already attic.namespace's namespace; the dashboard needs one of its own",
        ),
        (
            _dashboard(namespace="gitlab-runner-jobs"),
            None,
            "dashboard.namespace",
            "is already runners.job_namespace's namespace",
        ),
        (
            _dashboard(prometheus_url="ftp://prometheus"),
            None,
            "dashboard.prometheus_url",
            "must be an http(s):// URL with a host",
        ),
        (
            _dashboard(ingress={"tls_secret": "runners-tls", "cluster_issuer": "le"}),
            None,
            "dashboard.ingress.cluster_issuer",
            "is not used with dashboard.ingress.tls_secret (an existing certificate); remove "
            "one of them (got 'le')",
        ),
        (
            _dashboard(ingress={"controller": "haproxy"}),
            None,
            "dashboard.ingress.controller",
            "not an allowed value (got 'haproxy'; allowed: 'traefik' or 'nginx')",
        ),
        (
            _dashboard(host="cache.example.com"),
            {"ingress": {"host": "cache.example.com"}},
            "dashboard.host",
            "is attic's host too; give the dashboard its own",
        ),
        (
            _dashboard(webhooks=True),
            None,
            "dashboard.webhooks",
            "unknown key (allowed: api_server_cidrs, config_branch, config_file, "
            "config_project, drift_alert_after, enabled, gitlab_group, host, ingress, "
            "namespace, oauth, prometheus_url, replicas, resources, viewer_min_access)",
        ),
    ],
)
def test_bad_dashboard_values_get_one_line_naming_the_key(
    tmp_path: Path, dashboard: dict[str, Any], attic: dict[str, Any] | None, key: str, message: str
):
    errors = config_errors(tmp_path, config_with(dashboard=dashboard, attic=attic))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{key}: {message}"), errors


def test_an_environment_override_is_reported_at_the_override(tmp_path: Path):
    data = config_with(dashboard=ON)
    data["environments"]["prod"]["overrides"] = {"dashboard": {"replicas": 20}}
    errors = config_errors(tmp_path, data)
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "environments.prod.overrides.dashboard.replicas: input should be less than or equal to 10"
    )


def test_the_example_enables_the_dashboard_everywhere_with_two_pods_in_prod():
    loaded = load_config(EXAMPLE_CONFIG)
    for name, env in loaded.environments.items():
        dashboard = env.config.dashboard
        assert dashboard.enabled, name
        assert dashboard.replicas == (2 if name == "prod" else 1), name
    assert loaded.environments["dev"].config.dashboard.prometheus_url is None


def test_the_ingress_takes_attic_settings_it_does_not_set():
    """One controller serves both hosts: the dashboard inherits attic.ingress's settings."""
    from config_model.attic import AtticIngress
    from config_model.dashboard import DashboardIngress

    attic = AtticIngress(
        controller="nginx",
        class_name="nginx-internal",
        controller_namespace="ingress-nginx",
        cluster_issuer="internal-ca",
        acme_http01=False,
    )
    inherited = DashboardIngress().effective(attic)
    assert (inherited.controller, inherited.class_name, inherited.controller_namespace) == (
        "nginx",
        "nginx-internal",
        "ingress-nginx",
    )
    assert (inherited.cluster_issuer, inherited.acme_http01, inherited.tls_secret) == (
        "internal-ca",
        False,
        None,
    )
    # Another controller does not take attic's IngressClass.
    own = DashboardIngress(controller="traefik", controller_namespace="kube-system").effective(
        attic
    )
    assert (own.class_name, own.controller_namespace) == (None, "kube-system")
    # An existing certificate: no issuer and nothing opened for HTTP-01.
    existing = DashboardIngress(tls_secret="runners-tls").effective(AtticIngress())
    assert (existing.cluster_issuer, existing.acme_http01) == (None, False)


def test_watched_namespaces_follow_the_runner_and_attic_config():
    loaded = load_config(EXAMPLE_CONFIG)
    config = loaded.environments["prod"].config
    assert dashboard_namespaces(config) == [
        "gitlab-runners",
        "gitlab-runner-jobs",
        "gitlab-runner-dind",
        "attic",
    ]
