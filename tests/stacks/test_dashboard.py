"""dashboard-<env>: what the synthesized stack mounts and exposes, held against the app's
settings contract (ports 8080/9090, DASHBOARD_* variables, secret files, metric names). Its
grants are in test_dashboard_rbac.py, its network paths in test_dashboard_network.py."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, ResolvedEnvironment, load_config
from tests.support.plan_inputs import DASHBOARD_IMAGE, required_variables, validation_accepts
from tests.support.promql_rules import parse, rules_of, selectors
from tests.support.synth_output import SynthOutput, manifests, resources

Stacks = list[tuple[str, ResolvedEnvironment, dict[str, Any]]]

SECRETS_DIR = "/var/run/secrets/dashboard"
SECRET_FILES = {"oauth-client-secret", "session-key", "gitlab-read-token"}
CONFIG_PATH = "/etc/attic-iac/organization.yaml"
# The app's settings (its contract), plus the ports the stack pins.
SETTINGS = {
    "DASHBOARD_ENVIRONMENT",
    "DASHBOARD_PUBLIC_URL",
    "DASHBOARD_GITLAB_URL",
    "DASHBOARD_GITLAB_GROUP",
    "DASHBOARD_CONFIG_PROJECT",
    "DASHBOARD_CONFIG_FILE",
    "DASHBOARD_CONFIG_BRANCH",
    "DASHBOARD_OAUTH_CLIENT_ID",
    "DASHBOARD_VIEWER_MIN_ACCESS",
    "ATTIC_IAC_CONFIG",
    "DASHBOARD_SECRETS_DIR",
    "DASHBOARD_PORT",
    "DASHBOARD_METRICS_PORT",
}
# The metric names the app exports (its contract).
APP_METRICS = {"attic_iac_dashboard_source_up", "attic_iac_dashboard_drift_items"}


def _one(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    (item,) = resources(doc, rtype).values()
    return item


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = _one(doc, "kubernetes_deployment_v1")["spec"]["template"]
    return spec


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(doc)["spec"]["container"]
    return dict(container)


def _env(doc: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in _container(doc)["env"]}


# --- secrets and settings --------------------------------------------------------------------


def test_secrets_are_files_from_variables_or_state_and_never_env(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        secret = _one(doc, "kubernetes_secret_v1")
        assert set(secret["data"]) == SECRET_FILES, name
        assert secret["data"]["session-key"].startswith("${random_password."), name
        assert secret["data"]["gitlab-read-token"] == "${var.dashboard_gitlab_read_token}"
        oauth = env.config.dashboard.oauth
        expected = (
            "${gitlab_application.OAuthApplication.secret}"
            if oauth.create_application
            else "${var.dashboard_oauth_client_secret}"
        )
        assert secret["data"]["oauth-client-secret"] == expected, name
        variables = doc["variable"]
        for variable in ("dashboard_gitlab_read_token", "dashboard_oauth_client_secret"):
            if variable in variables:
                assert variables[variable]["sensitive"] is True, (name, variable)
        assert ("dashboard_oauth_client_secret" in variables) is not oauth.create_application
        # Mounted read-only as files; nothing secret in the environment.
        container = _container(doc)
        mounts = {m["name"]: m for m in container["volume_mount"]}
        volumes = {v["name"]: v for v in _pod(doc)["spec"]["volume"]}
        assert mounts["secrets"] == {
            "name": "secrets",
            "mount_path": SECRETS_DIR,
            "read_only": True,
        }
        assert volumes["secrets"]["secret"]["secret_name"].startswith("${kubernetes_secret_v1.")
        assert volumes["secrets"]["secret"]["default_mode"] == "0440"
        for item in container["env"]:
            assert set(item) == {"name", "value"}, (name, item)  # no secretKeyRef, no envFrom
            assert not re.search(r"\$\{(var|random_password)\.|\.secret\}", item["value"]), item
        assert "env_from" not in container


def test_the_settings_are_the_apps_contract(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        config = env.config
        dashboard = config.dashboard
        settings = _env(doc)
        expected = SETTINGS | ({"DASHBOARD_PROMETHEUS_URL"} if dashboard.prometheus_url else set())
        assert set(settings) == expected, name
        host = dashboard.host or f"runners.{env.settings.domain}"
        assert settings["DASHBOARD_ENVIRONMENT"] == name
        assert settings["DASHBOARD_PUBLIC_URL"] == f"https://{host}"
        assert settings["DASHBOARD_GITLAB_URL"] == config.gitlab.url
        assert settings["DASHBOARD_GITLAB_GROUP"] == dashboard.gitlab_group
        assert settings["DASHBOARD_CONFIG_PROJECT"] == dashboard.config_project
        assert settings["DASHBOARD_CONFIG_FILE"] == dashboard.config_file
        assert settings["DASHBOARD_CONFIG_BRANCH"] == dashboard.config_branch
        assert settings["DASHBOARD_VIEWER_MIN_ACCESS"] == dashboard.viewer_min_access
        assert settings["DASHBOARD_SECRETS_DIR"] == SECRETS_DIR
        assert settings["ATTIC_IAC_CONFIG"] == CONFIG_PATH
        assert (settings["DASHBOARD_PORT"], settings["DASHBOARD_METRICS_PORT"]) == ("8080", "9090")
        client_id = settings["DASHBOARD_OAUTH_CLIENT_ID"]
        if dashboard.oauth.create_application:
            assert client_id == "${gitlab_application.OAuthApplication.application_id}"
        else:
            assert client_id == dashboard.oauth.client_id


def _config_map_text(doc: dict[str, Any]) -> str:
    data = _one(doc, "kubernetes_config_map_v1")["data"]
    assert list(data) == ["organization.yaml"]
    # Terraform reads '$${' and '%%{' as the literal '${' and '%{'.
    text: str = data["organization.yaml"].replace("$${", "${").replace("%%{", "%{")
    return text


def test_the_app_gets_the_very_file_the_stack_was_synthesized_from(
    example_synth: SynthOutput, tmp_path: Path
):
    """Mounted at ATTIC_IAC_CONFIG, it loads through the loader to the config of this stack,
    and its checksum on the pod template rolls the pods when it changes."""
    doc = example_synth.stack("dashboard-prod")
    text = _config_map_text(doc)
    assert text == EXAMPLE_CONFIG.read_text()
    copy = tmp_path / "organization.yaml"
    copy.write_text(text)
    assert load_config(copy).environments["prod"].config == (
        load_config(EXAMPLE_CONFIG).environments["prod"].config
    )
    annotations = _pod(doc)["metadata"]["annotations"]
    assert annotations["checksum/config"] == hashlib.sha256(text.encode()).hexdigest()
    secret_refs = annotations["checksum/secrets"]
    assert secret_refs.startswith("${sha256(join(")
    assert "var.dashboard_oauth_client_secret" in secret_refs
    assert "random_password." in secret_refs
    assert "var.dashboard_gitlab_read_token" in secret_refs
    mounts = {m["name"]: m for m in _container(doc)["volume_mount"]}
    assert mounts["config"] == {"name": "config", "mount_path": "/etc/attic-iac", "read_only": True}


def test_the_config_file_holds_no_secret_and_no_terraform_interpolation(
    dashboard_environments: Stacks,
):
    for name, _, doc in dashboard_environments:
        raw = _one(doc, "kubernetes_config_map_v1")["data"]["organization.yaml"]
        assert not re.search(r"(?<!\$)\$\{", raw), name
        assert not re.search(r"(?<!%)%\{", raw), name
        parsed = yaml.safe_load(_config_map_text(doc))
        assert "password" not in str(parsed).lower(), name


# --- the image -------------------------------------------------------------------------------


GOOD_IMAGES = [
    DASHBOARD_IMAGE,
    "registry.gitlab.com/acme/infra/attic-iac/dashboard@sha256:" + "a" * 64,
    "registry.internal:5000/dashboard@sha256:" + "0" * 64,
    "docker.io/library/dashboard@sha256:" + "9" * 64,
    "dashboard@sha256:" + "b" * 64,
]
BAD_IMAGES = [
    "registry.gitlab.com/acme/dashboard:latest",
    "registry.gitlab.com/acme/dashboard:1.2.0",
    "registry.gitlab.com/acme/dashboard:1.2.0@sha256:" + "a" * 64,  # a tag beside the digest
    "registry.gitlab.com/acme/dashboard",
    "registry.gitlab.com/acme/dashboard@sha256:" + "A" * 64,
    "registry.gitlab.com/acme/dashboard@sha256:" + "a" * 63,
    "registry.gitlab.com/acme/dashboard@sha512:" + "a" * 128,
    "registry.gitlab.com/Acme/dashboard@sha256:" + "a" * 64,
    " registry.gitlab.com/acme/dashboard@sha256:" + "a" * 64,
    "registry.gitlab.com/acme/dashboard@sha256:" + "a" * 64 + "\n",
    "",
]


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_the_image_variable_takes_a_digest(example_synth: SynthOutput, image: str):
    spec = example_synth.stack("dashboard-dev")["variable"]["dashboard_image"]
    assert validation_accepts(spec, image)


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_the_image_variable_rejects_a_tag_or_anything_else(example_synth: SynthOutput, image: str):
    spec = example_synth.stack("dashboard-dev")["variable"]["dashboard_image"]
    assert not validation_accepts(spec, image)


def test_the_image_is_that_variable_with_no_default(dashboard_environments: Stacks):
    for name, _, doc in dashboard_environments:
        spec = doc["variable"]["dashboard_image"]
        assert "default" not in spec, name  # no tag to fall back to: the plan stops
        assert "dashboard_image" in required_variables(doc)
        assert spec["validation"][0]["error_message"].startswith("The dashboard image must be")
        assert _container(doc)["image"] == "${var.dashboard_image}", name


# --- the pods --------------------------------------------------------------------------------


def test_pods_are_hardened_and_probed_on_the_real_port(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        pod = _pod(doc)["spec"]
        container = _container(doc)
        context = container["security_context"]
        assert context["run_as_non_root"] is True
        assert context["read_only_root_filesystem"] is True
        assert context["allow_privilege_escalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccomp_profile"] == {"type": "RuntimeDefault"}
        assert pod["security_context"]["seccomp_profile"] == {"type": "RuntimeDefault"}
        # The app reads the Kubernetes API with the token: mounted here, never on the account.
        assert pod["automount_service_account_token"] is True
        assert pod["enable_service_links"] is False
        ports = {p["name"]: p["container_port"] for p in container["port"]}
        assert ports == {"http": 8080, "metrics": 9090}
        for probe, path in (
            ("startup_probe", "/healthz"),
            ("liveness_probe", "/healthz"),
            ("readiness_probe", "/readyz"),
        ):
            assert container[probe]["http_get"] == {"path": path, "port": "http"}, (name, probe)
        assert 30 <= pod["termination_grace_period_seconds"] <= 60
        volumes = {v["name"]: v for v in pod["volume"]}
        assert "empty_dir" in volumes["tmp"]
        assert {"name": "tmp", "mount_path": "/tmp"} in container["volume_mount"]
        wanted = env.config.dashboard.resources
        assert container["resources"] == {
            "requests": {"cpu": wanted.cpu_request, "memory": wanted.memory_request},
            "limits": {"cpu": wanted.cpu_limit, "memory": wanted.memory_limit},
        }


def test_more_than_one_pod_brings_a_pdb_spread_and_sticky_sessions(
    dashboard_environments: Stacks,
):
    multi = 0
    for name, env, doc in dashboard_environments:
        replicas = env.config.dashboard.replicas
        deployment = _one(doc, "kubernetes_deployment_v1")
        assert deployment["spec"]["replicas"] == str(replicas), name
        assert deployment["spec"]["strategy"]["rolling_update"]["max_unavailable"] == "0"
        pdbs = resources(doc, "kubernetes_pod_disruption_budget_v1")
        spread = _pod(doc)["spec"].get("topology_spread_constraint", [])
        service = _one(doc, "kubernetes_service_v1")
        annotations = service["metadata"].get("annotations") or {}
        ingresses = resources(doc, "kubernetes_ingress_v1")
        ingress_annotations = (
            next(iter(ingresses.values()))["metadata"]["annotations"] if ingresses else {}
        )
        sticky = (
            "traefik.ingress.kubernetes.io/service.sticky.cookie" in annotations
            or ingress_annotations.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
        )
        if replicas > 1:
            multi += 1
            (pdb,) = pdbs.values()
            assert pdb["spec"]["max_unavailable"] == "1"
            assert {c["topology_key"] for c in spread} == {
                "topology.kubernetes.io/zone",
                "kubernetes.io/hostname",
            }
            # Sessions live in each pod's memory: a browser stays on one pod.
            assert sticky, name
        else:
            assert (pdbs, spread, sticky) == ({}, [], False), name
    assert multi >= 2


def test_the_service_carries_the_app_port_only_and_the_monitor_scrapes_the_pods(
    dashboard_environments: Stacks,
):
    monitored = 0
    for name, env, doc in dashboard_environments:
        service = _one(doc, "kubernetes_service_v1")
        assert [(p["port"], p["target_port"]) for p in service["spec"]["port"]] == [
            (8080, "http")
        ], name
        monitors = manifests(doc, "PodMonitor")
        rules = manifests(doc, "PrometheusRule")
        if not env.config.monitoring.prometheus_operator:
            assert (monitors, rules) == ([], []), name
            continue
        monitored += 1
        (monitor,) = monitors
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
        assert monitor["spec"]["selector"]["matchLabels"] == _pod(doc)["metadata"]["labels"]
        assert monitor["metadata"]["labels"] == dict(env.config.monitoring.discovery_labels)
    assert monitored >= 2


# --- ingress ---------------------------------------------------------------------------------


def test_the_ingress_is_tls_and_safe_for_event_streams(dashboard_environments: Stacks):
    seen = set()
    for name, env, doc in dashboard_environments:
        dashboard = env.config.dashboard
        ingresses = resources(doc, "kubernetes_ingress_v1")
        if not dashboard.ingress.enabled:
            assert ingresses == {}, name
            continue
        (ingress,) = ingresses.values()
        settings = dashboard.ingress.effective(env.config.attic.ingress)
        host = dashboard.host or f"runners.{env.settings.domain}"
        annotations = ingress["metadata"]["annotations"]
        (tls,) = ingress["spec"]["tls"]
        assert tls["hosts"] == [host]
        if settings.tls_secret:
            assert tls["secret_name"] == settings.tls_secret
            assert "cert-manager.io/cluster-issuer" not in annotations
        else:
            assert annotations["cert-manager.io/cluster-issuer"] == settings.cluster_issuer
        if settings.controller == "nginx":
            assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
            assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
            assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
            assert "nginx.ingress.kubernetes.io/proxy-request-buffering" not in annotations
        else:
            assert annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"
            assert not any(key.startswith("nginx.") for key in annotations)
        assert ingress["spec"]["ingress_class_name"] == (settings.class_name or settings.controller)
        seen.add((settings.controller, bool(settings.tls_secret)))
    assert {("nginx", False), ("traefik", False), ("traefik", True)} <= seen


# --- alerts ----------------------------------------------------------------------------------


def test_alerts_use_the_metrics_the_app_exports(dashboard_environments: Stacks):
    checked = 0
    for name, env, doc in dashboard_environments:
        for rule_object in manifests(doc, "PrometheusRule"):
            groups = rule_object["spec"]["groups"]
            alerts = {rule["alert"]: rule for rule in rules_of(groups)}
            assert set(alerts) == {
                "RunnerDashboardDown",
                "RunnerDashboardSourceFailing",
                "RunnerDashboardDriftPersists",
            }
            used = set()
            for rule in alerts.values():
                parse(rule["expr"])  # valid PromQL
                for selector in selectors(rule["expr"]):
                    used.add(selector.name)
                    job = [m for m in selector.matchers.matchers if m.name == "job"]
                    assert [m.value for m in job] == [
                        f"{env.config.dashboard.namespace}/runner-dashboard"
                    ]
            assert used == {"up", *APP_METRICS}, name
            assert alerts["RunnerDashboardSourceFailing"]["for"] == "10m"
            assert "== 0" in alerts["RunnerDashboardSourceFailing"]["expr"]
            drift = alerts["RunnerDashboardDriftPersists"]
            assert drift["for"] == env.config.dashboard.drift_alert_after
            assert "> 0" in drift["expr"]
            assert "or vector(0)" in alerts["RunnerDashboardDown"]["expr"]
            checked += 1
    assert checked >= 2


# --- the OAuth application and the stack itself ----------------------------------------------


def test_the_oauth_application_is_made_only_when_asked_with_the_derived_redirect(
    dashboard_environments: Stacks,
):
    made = 0
    for name, env, doc in dashboard_environments:
        applications = resources(doc, "gitlab_application")
        if not env.config.dashboard.oauth.create_application:
            assert applications == {}, name
            assert "gitlab" not in doc.get("provider", {}), name
            continue
        made += 1
        (application,) = applications.values()
        host = env.config.dashboard.host or f"runners.{env.settings.domain}"
        assert application["redirect_url"] == f"https://{host}/auth/callback"
        assert application["scopes"] == ["read_user", "read_api", "api"]
        assert application["confidential"] is True
        assert doc["variable"]["gitlab_token"]["sensitive"] is True
        assert doc["output"]["oauth_redirect_uri"]["value"] == application["redirect_url"]
    assert made == 1


def test_a_disabled_dashboard_is_an_empty_stack_with_its_state(variants_synth: SynthOutput):
    doc = variants_synth.stack("dashboard-external")
    assert doc.get("resource", {}) == {}
    assert doc.get("variable", {}) == {}  # so its plan needs no image either
    assert doc["terraform"]["backend"]["http"]["address"].endswith("/dashboard-external")


def test_the_stack_applies_after_runners_and_attic(example_synth: SynthOutput):
    stacks = example_synth.manifest["stacks"]
    for env in ("dev", "staging", "prod"):
        assert sorted(stacks[f"dashboard-{env}"]["dependencies"]) == [
            f"attic-{env}",
            f"runners-{env}",
        ]
        doc = example_synth.stack(f"dashboard-{env}")
        assert set(doc["terraform"]["required_providers"]) == {"kubernetes", "random"}


def test_the_namespace_enforces_restricted_pod_security(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        namespace = _one(doc, "kubernetes_namespace_v1")
        labels = namespace["metadata"]["labels"]
        assert namespace["metadata"]["name"] == env.config.dashboard.namespace
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", name
