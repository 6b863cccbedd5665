"""The dashboard's constructs on their own: what each refuses, and the Ingress settings an
event-streaming app gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.dashboard.oauth_application import (
    DashboardOAuthApplication,
    DashboardOAuthApplicationProps,
)
from constructs_lib.dashboard.read_access import (
    DashboardReadAccess,
    DashboardReadAccessProps,
    rule_problems,
)
from constructs_lib.dashboard.runner_dashboard import RunnerDashboard, RunnerDashboardProps
from constructs_lib.kubernetes.web_ingress import (
    WebIngress,
    WebIngressProps,
    traefik_sticky_service_annotations,
)
from constructs_lib.monitoring.dashboard_alerts import (
    METRICS,
    DashboardAlerts,
    DashboardAlertsProps,
    dashboard_rule_groups,
)
from constructs_lib.validation import PropsError
from tests.support.promql_rules import parse, rules_of, selectors
from tests.support.synth_output import resources


def _stack() -> TerraformStack:
    return TerraformStack(CdktfTesting.app(), "test")


def _dashboard_props(**overrides: Any) -> RunnerDashboardProps:
    props: dict[str, Any] = {
        "namespace": "runner-dashboard",
        "image": "registry.example.com/dashboard@sha256:" + "0" * 64,
        "settings": {"DASHBOARD_ENVIRONMENT": "dev"},
        "config_text": "organization: {name: acme}\n",
        "oauth_client_secret": "${var.secret}",
        "gitlab_read_token": "${var.token}",
    }
    return RunnerDashboardProps(**{**props, **overrides})


def test_the_dashboard_refuses_every_bad_prop_at_once():
    with pytest.raises(PropsError) as info:
        RunnerDashboard(
            _stack(),
            "D",
            _dashboard_props(
                name="Dashboard",
                replicas=0,
                termination_grace_seconds=5,
                config_text=" ",
                settings={"lower_case": "x", "DASHBOARD_PORT": "80"},
            ),
        )
    problems = "\n".join(info.value.problems)
    for expected in (
        "name: 'Dashboard' is not a valid Kubernetes name",
        "replicas: 0 is outside 1..10",
        "termination_grace_seconds: 5 is outside 30..600",
        "config_text: required",
        "settings: 'lower_case' is not an environment variable name",
        "settings: DASHBOARD_PORT is set by the construct itself",
    ):
        assert expected in problems


def test_the_config_reaches_the_configmap_as_written():
    """Terraform would read ${...} and %{...} in the file as its own syntax: escaped."""
    stack = _stack()
    RunnerDashboard(stack, "D", _dashboard_props(config_text="a: ${not_terraform} %{x}\n"))
    doc = json.loads(CdktfTesting.synth(stack))
    (config_map,) = resources(doc, "kubernetes_config_map_v1").values()
    assert config_map["data"]["organization.yaml"] == "a: $${not_terraform} %%{x}\n"


def test_read_access_needs_valid_watched_namespaces():
    with pytest.raises(PropsError) as info:
        DashboardReadAccess(
            _stack(),
            "R",
            DashboardReadAccessProps(account="a", account_namespace="d", namespaces=[]),
        )
    assert info.value.problems == ["namespaces: at least one is required"]
    with pytest.raises(PropsError) as info:
        DashboardReadAccess(
            _stack(),
            "R",
            DashboardReadAccessProps(account="a", account_namespace="d", namespaces=["Bad_NS"]),
        )
    assert len(info.value.problems) == 1
    assert "Bad_NS" in info.value.problems[0]


def test_the_rule_check_names_secrets_wildcards_and_writes():
    assert rule_problems("", ["pods"], ["get", "list", "watch"]) == []
    assert rule_problems("", ["secrets", "*"], ["get", "create"]) == [
        "rule core/secrets: the dashboard never reads it",
        "rule core/*: the dashboard never reads it",
        "rule core: verb 'create' is not read-only (allowed: get, list, watch)",
    ]
    assert rule_problems("*", ["pods"], ["get"]) == ["rule: the API group must be named, not '*'"]


def test_the_oauth_application_needs_an_https_url_and_known_scopes():
    with pytest.raises(PropsError) as info:
        DashboardOAuthApplication(
            _stack(),
            "A",
            DashboardOAuthApplicationProps(
                name=" ", public_url="http://runners.example.com/", scopes=("sudo",)
            ),
        )
    assert info.value.problems == [
        "name: required",
        "public_url: 'http://runners.example.com/' must be https://host, without a trailing '/'",
        "scopes: 'sudo' is not an OAuth scope the dashboard uses",
    ]


def test_alert_rules_are_valid_promql_on_the_apps_metrics():
    groups = dashboard_rule_groups(
        DashboardAlertsProps(name="d", namespace="dash", scrape_job="dash/d", drift_for="45m")
    )
    used = set()
    for rule in rules_of(groups):
        parse(rule["expr"])
        used |= {selector.name for selector in selectors(rule["expr"])}
    assert used == set(METRICS)
    with pytest.raises(PropsError, match="drift_for: '2 hours' is not a Prometheus duration"):
        DashboardAlerts(
            _stack(),
            "A",
            DashboardAlertsProps(name="d", namespace="dash", scrape_job="j", drift_for="2 hours"),
        )


def _ingress(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": "dash",
        "namespace": "dash",
        "host": "runners.example.com",
        "service_name": "dash",
        "service_port": 8080,
        "controller": "nginx",
        "controller_namespace": "ingress-nginx",
        "cluster_issuer": "le",
        "traffic": "events",
        **overrides,
    }
    stack = _stack()
    WebIngress(stack, "I", WebIngressProps(**props))
    doc: dict[str, Any] = json.loads(CdktfTesting.synth(stack))
    return doc


def test_event_streams_get_unbuffered_long_lived_small_bodied_routes():
    doc = _ingress(sticky_cookie="pod")
    (ingress,) = resources(doc, "kubernetes_ingress_v1").values()
    annotations = ingress["metadata"]["annotations"]
    assert annotations == {
        "cert-manager.io/cluster-issuer": "le",
        "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
        "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
        "nginx.ingress.kubernetes.io/affinity": "cookie",
        "nginx.ingress.kubernetes.io/session-cookie-name": "pod",
        "nginx.ingress.kubernetes.io/session-cookie-secure": "true",
        "nginx.ingress.kubernetes.io/session-cookie-samesite": "Lax",
    }
    assert traefik_sticky_service_annotations("pod") == {
        "traefik.ingress.kubernetes.io/service.sticky.cookie": "true",
        "traefik.ingress.kubernetes.io/service.sticky.cookie.name": "pod",
        "traefik.ingress.kubernetes.io/service.sticky.cookie.secure": "true",
        "traefik.ingress.kubernetes.io/service.sticky.cookie.httponly": "true",
        "traefik.ingress.kubernetes.io/service.sticky.cookie.samesite": "lax",
    }


def test_an_existing_certificate_needs_no_issuer_and_opens_nothing():
    doc = _ingress(cluster_issuer=None, tls_secret="runners-tls", acme_http01=True)
    (ingress,) = resources(doc, "kubernetes_ingress_v1").values()
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["runners.example.com"], "secret_name": "runners-tls"}
    ]
    assert resources(doc, "kubernetes_network_policy_v1") == {}


@pytest.mark.parametrize(
    ("issuer", "secret"), [(None, None), ("le", "runners-tls")], ids=["neither", "both"]
)
def test_the_certificate_has_exactly_one_source(issuer: str | None, secret: str | None):
    with pytest.raises(PropsError, match="cluster_issuer/tls_secret: give exactly one"):
        _ingress(cluster_issuer=issuer, tls_secret=secret)
