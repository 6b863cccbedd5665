"""dashboard-<env>'s grants: read-only Roles in exactly the watched namespaces, on exactly the
kinds the app reads (the app's own list, so the two cannot drift apart), bound to its
ServiceAccount alone; and a check that fails when someone widens them (Secrets, a wildcard, a
write verb, a ClusterRole)."""

from __future__ import annotations

from typing import Any

import pytest

from config_model.loader import ResolvedEnvironment
from config_model.wiring import dashboard_namespaces
from constructs_lib.dashboard.read_access import READ_VERBS, WATCHED_KINDS
from dashboard.sources.kubernetes import READ_RESOURCES
from tests.support.synth_output import SynthOutput, resources

Stacks = list[tuple[str, ResolvedEnvironment, dict[str, Any]]]


def rbac_problems(doc: dict[str, Any]) -> list[str]:
    """Why a stack's grants are not read-only and narrow (empty when they are)."""
    problems = [
        f"{rtype} {name}: the dashboard reads nothing cluster-scoped"
        for rtype in ("kubernetes_cluster_role_v1", "kubernetes_cluster_role_binding_v1")
        for name in resources(doc, rtype)
    ]
    for name, role in resources(doc, "kubernetes_role_v1").items():
        for rule in role["rule"]:
            for field in ("api_groups", "resources", "verbs"):
                if "*" in rule.get(field, []):
                    problems.append(f"{name}: '*' in {field}")
            if "secrets" in rule["resources"]:
                problems.append(f"{name}: grants secrets")
            problems += [
                f"{name}: verb {verb!r} is not read-only"
                for verb in rule["verbs"]
                if verb not in READ_VERBS
            ]
            if rule.get("resource_names") == ["*"]:
                problems.append(f"{name}: resource_names '*'")
    return problems


def granted(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(API group, resource) pairs a synthesized Role grants."""
    return {
        (group, resource)
        for rule in role["rule"]
        for group in rule["api_groups"]
        for resource in rule["resources"]
    }


def test_the_roles_grant_exactly_the_resources_the_app_watches(example_synth: SynthOutput):
    """The app's own list of what it lists and watches (dashboard.sources.kubernetes) against the
    Roles of every dashboard-<env>: a kind the app starts reading without a grant fails here
    (it would be an RBAC denial in the cluster), and so does a grant nothing reads."""
    stacks = [(name, doc) for name, doc in example_synth.stacks() if name.startswith("dashboard-")]
    assert stacks
    for name, doc in stacks:
        roles = resources(doc, "kubernetes_role_v1")
        assert roles, name
        for address, role in roles.items():
            assert granted(role) == READ_RESOURCES, (name, address)
    # the construct's declaration says the same
    assert {(group, r) for group, kinds in WATCHED_KINDS for r in kinds} == READ_RESOURCES


def test_rbac_is_read_only_in_every_dashboard_stack(dashboard_environments: Stacks):
    for name, _, doc in dashboard_environments:
        assert rbac_problems(doc) == [], name


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"api_groups": [""], "resources": ["secrets"], "verbs": ["get"]}, "grants secrets"),
        ({"api_groups": ["*"], "resources": ["pods"], "verbs": ["get"]}, "'*' in api_groups"),
        ({"api_groups": [""], "resources": ["*"], "verbs": ["list"]}, "'*' in resources"),
        ({"api_groups": [""], "resources": ["pods"], "verbs": ["*"]}, "'*' in verbs"),
        ({"api_groups": [""], "resources": ["pods"], "verbs": ["delete"]}, "is not read-only"),
        ({"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}, "read-only"),
    ],
)
def test_the_rbac_check_catches_a_widened_grant(
    dashboard_environments: Stacks, rule: dict[str, Any], problem: str
):
    """Adding secrets, a wildcard, a write verb or a ClusterRole fails the test above."""
    _, _, doc = dashboard_environments[0]
    widened = {"resource": dict(doc["resource"])}
    roles = dict(resources(doc, "kubernetes_role_v1"))
    first = next(iter(roles))
    roles[first] = {**roles[first], "rule": [*roles[first]["rule"], rule]}
    widened["resource"]["kubernetes_role_v1"] = roles
    assert any(problem in line for line in rbac_problems(widened))
    widened["resource"]["kubernetes_cluster_role_v1"] = {"Reader": {"rule": []}}
    assert any("cluster-scoped" in line for line in rbac_problems(widened))


def test_roles_grant_exactly_what_the_app_reads_in_exactly_the_watched_namespaces(
    dashboard_environments: Stacks,
):
    for name, env, doc in dashboard_environments:
        config = env.config
        by_namespace: dict[str, set[tuple[str, str]]] = {}
        for role in resources(doc, "kubernetes_role_v1").values():
            assert all(sorted(rule["verbs"]) == sorted(READ_VERBS) for rule in role["rule"])
            assert "resource_names" not in str(role), name
            by_namespace[role["metadata"]["namespace"]] = granted(role)
        assert sorted(by_namespace) == sorted(dashboard_namespaces(config)), name
        for namespace, pairs in by_namespace.items():
            assert pairs == READ_RESOURCES, (name, namespace)
        # Each Role is bound to the dashboard's ServiceAccount only.
        account = next(iter(resources(doc, "kubernetes_service_account_v1").values()))
        assert account["automount_service_account_token"] is False
        for binding in resources(doc, "kubernetes_role_binding_v1").values():
            assert binding["subject"] == [
                {
                    "kind": "ServiceAccount",
                    "name": account["metadata"]["name"],
                    "namespace": config.dashboard.namespace,
                }
            ], name
            assert binding["role_ref"]["kind"] == "Role"
