"""Runner namespace security objects: quotas, priority classes, agent ci_access RBAC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1

from constructs_lib.kubernetes.namespace_budget import NamespaceBudget, NamespaceBudgetProps
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.runners.agent_access import (
    READ_RULES,
    AgentCiAccess,
    AgentCiAccessProps,
    AgentGrant,
)
from constructs_lib.runners.priority_classes import (
    RunnerPriorityClasses,
    RunnerPriorityClassesProps,
)
from constructs_lib.validation import PropsError
from tests.support.synth_output import resources

RBAC = "rbac.authorization.k8s.io"


def _stack() -> TerraformStack:
    return TerraformStack(CdktfTesting.app(), "test")


def _doc(stack: TerraformStack) -> dict[str, Any]:
    return json.loads(CdktfTesting.synth(stack))


def _one(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = list(resources(doc, rtype).values())
    assert len(found) == 1, f"expected one {rtype}, got {len(found)}"
    return found[0]


def _address(doc: dict[str, Any], rtype: str, item: dict[str, Any]) -> str:
    [name] = [n for n, other in resources(doc, rtype).items() if other is item]
    return f"{rtype}.{name}"


# --------------------------------------------------------------------------------------------
# NamespaceBudget

QUOTA = {
    "requests.cpu": "16",
    "requests.memory": "32Gi",
    "limits.cpu": "48",
    "limits.memory": "96Gi",
    "requests.ephemeral-storage": "100Gi",
    "pods": "40",
}


def _budget_props(**overrides: Any) -> NamespaceBudgetProps:
    props: dict[str, Any] = {
        "namespace": "gitlab-runner-jobs",
        "quota": QUOTA,
        "default_request": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
        "default_limit": {"cpu": "1", "memory": "1Gi"},
        "max": {"cpu": "8", "memory": "16Gi"},
    }
    props.update(overrides)
    return NamespaceBudgetProps(**props)


def test_budget_is_a_quota_and_container_defaults():
    stack = _stack()
    namespace = NamespaceV1(stack, "Ns", metadata={"name": "gitlab-runner-jobs"})
    budget = NamespaceBudget(stack, "Budget", _budget_props(depends_on=[namespace]))
    doc = _doc(stack)
    quota = _one(doc, "kubernetes_resource_quota_v1")
    limits = _one(doc, "kubernetes_limit_range_v1")
    for item in (quota, limits):
        assert item["metadata"]["name"] == "budget"
        assert item["metadata"]["namespace"] == "gitlab-runner-jobs"
        # A namespace named by value gives no implicit dependency.
        assert item["depends_on"] == ["kubernetes_namespace_v1.Ns"]
    assert quota["spec"] == {"hard": QUOTA}
    assert limits["spec"] == {
        "limit": [
            {
                "type": "Container",
                "default_request": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "1Gi"},
                "default": {"cpu": "1", "memory": "1Gi"},
                "max": {"cpu": "8", "memory": "16Gi"},
            }
        ]
    }
    assert _address(doc, "kubernetes_limit_range_v1", limits).startswith(
        "kubernetes_limit_range_v1.Budget_LimitRange"
    )
    assert budget.resource_quota.friendly_unique_id.startswith("Budget_ResourceQuota")


def test_budget_without_max_has_no_maximum_and_takes_a_namespace_reference():
    stack = _stack()
    namespace = SecureNamespace(stack, "Jobs", SecureNamespaceProps(name="gitlab-runner-jobs"))
    NamespaceBudget(
        stack,
        "Budget",
        _budget_props(
            namespace=namespace.name,
            quota={"limits.cpu": "4"},
            default_request={"cpu": "1"},
            default_limit={"cpu": "1"},
            max={},
            name="jobs",
        ),
    )
    limits = _one(_doc(stack), "kubernetes_limit_range_v1")
    assert "max" not in limits["spec"]["limit"][0]
    assert limits["metadata"]["name"] == "jobs"
    assert limits["metadata"]["namespace"] == "${kubernetes_namespace_v1.Jobs.metadata[0].name}"


def test_budget_defaults_may_equal_their_bounds():
    stack = _stack()
    same = {"cpu": "500m", "memory": "512Mi"}
    equal = {"cpu": "0.5", "memory": "0.5Gi"}  # the same amounts, spelled differently
    NamespaceBudget(
        stack,
        "Budget",
        _budget_props(
            quota={"requests.cpu": "4"}, default_request=same, default_limit=equal, max=same
        ),
    )
    assert _one(_doc(stack), "kubernetes_limit_range_v1")["spec"]["limit"][0]["max"] == same


def test_budget_compares_default_request_with_max_when_no_default_limit():
    with pytest.raises(PropsError) as info:
        NamespaceBudget(
            _stack(),
            "Budget",
            _budget_props(
                quota={"requests.cpu": "4"},
                default_request={"cpu": "3"},
                default_limit={},
                max={"cpu": "2"},
            ),
        )
    assert info.value.problems == ["cpu: default_request '3' is above max '2'"]


def test_budget_reports_every_problem_at_once():
    with pytest.raises(PropsError) as info:
        NamespaceBudget(
            _stack(),
            "Budget",
            _budget_props(
                namespace="Jobs",
                quota={
                    "limits.gpu": "1",
                    "requests.cpu": "1GB",
                    "limits.memory": "64Gi",
                    "limits.ephemeral-storage": "10Gi",
                    "pods": "1.5",
                    "secrets": "1e3",
                },
                default_request={
                    "cpu": "2",
                    "memory": "2Gi",
                    "gpu": "1",
                    "ephemeral-storage": "-1",
                },
                default_limit={"cpu": "1", "memory": "4Gi"},
                max={"cpu": "4", "memory": "3Gi"},
            ),
        )
    assert info.value.construct == "NamespaceBudget"
    problems = info.value.problems
    expected = [
        "namespace: 'Jobs' is not a valid Kubernetes name",
        "quota: unknown key 'limits.gpu'",
        "quota[requests.cpu]: '1GB': not a quantity",
        "quota[pods]: '1.5' is not a whole number",
        "quota[secrets]: '1e3': exponents are not accepted",
        "default_request: unknown resource 'gpu'",
        "default_request[ephemeral-storage]: '-1': signed quantities are not accepted",
        "cpu: default_request '2' is above default_limit '1'",
        "memory: default_limit '4Gi' is above max '3Gi'",
        "quota[limits.ephemeral-storage]: set default_limit[ephemeral-storage], or the API "
        "server rejects every pod with a container that states no ephemeral-storage limits",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), problems


@pytest.mark.parametrize(
    ("quota", "defaults", "missing"),
    [
        # Kubernetes copies max into a missing default limit, that into a missing default request.
        ({"limits.memory": "8Gi"}, {"max": {"memory": "1Gi"}}, None),
        ({"requests.memory": "8Gi"}, {"max": {"memory": "1Gi"}}, None),
        ({"requests.cpu": "8"}, {"default_limit": {"cpu": "1"}}, None),
        ({"limits.cpu": "8"}, {"default_request": {"cpu": "1"}}, "default_limit[cpu]"),
        ({"requests.memory": "8Gi"}, {}, "default_request[memory]"),
    ],
)
def test_budget_needs_a_default_for_each_counted_resource(quota, defaults, missing):
    props = {"default_request": {}, "default_limit": {}, "max": {}, **defaults}
    if missing is None:
        NamespaceBudget(_stack(), "Budget", _budget_props(quota=quota, **props))
        return
    with pytest.raises(PropsError) as info:
        NamespaceBudget(_stack(), "Budget", _budget_props(quota=quota, **props))
    [problem] = info.value.problems
    assert f"set {missing}, or the API server rejects every pod" in problem


def test_budget_needs_a_quota():
    with pytest.raises(PropsError, match="quota: at least one entry is needed"):
        NamespaceBudget(_stack(), "Budget", _budget_props(quota={}))


# --------------------------------------------------------------------------------------------
# RunnerPriorityClasses


def test_managers_preempt_and_jobs_never_do():
    stack = _stack()
    classes = RunnerPriorityClasses(
        stack, "Priorities", RunnerPriorityClassesProps(prefix="gitlab-runners")
    )
    doc = _doc(stack)
    by_name = {
        item["metadata"]["name"]: item
        for item in resources(doc, "kubernetes_priority_class_v1").values()
    }
    assert set(by_name) == {"gitlab-runners-manager", "gitlab-runners-job"}
    assert (classes.manager_name, classes.job_name) == (
        "gitlab-runners-manager",
        "gitlab-runners-job",
    )
    manager, job = by_name[classes.manager_name], by_name[classes.job_name]
    # Unclassified pods have priority 0: managers above them, jobs below.
    assert manager["value"] == 100_000
    assert job["value"] == -1
    assert manager["preemption_policy"] == "PreemptLowerPriority"
    assert job["preemption_policy"] == "Never"
    for item in (manager, job):
        assert item["global_default"] is False
        assert item["description"]
        assert "namespace" not in item["metadata"]  # cluster-scoped
    assert len(classes.resources) == 2


def test_priority_values_can_be_chosen_within_range():
    stack = _stack()
    RunnerPriorityClasses(
        stack,
        "Priorities",
        RunnerPriorityClassesProps(prefix="ci", manager_value=1_000_000_000, job_value=-10),
    )
    values = {
        item["metadata"]["name"]: item["value"]
        for item in resources(_doc(stack), "kubernetes_priority_class_v1").values()
    }
    assert values == {"ci-manager": 1_000_000_000, "ci-job": -10}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"manager_value": 1_000_000_001}, "manager_value: 1000000001 is outside"),
        ({"job_value": -11}, "job_value: -11 is below cluster-autoscaler's expendable cutoff"),
        ({"job_value": -(2**31) - 1}, "job_value: -2147483649 is outside"),
        ({"manager_value": 5, "job_value": 5}, "manager_value 5 must be above job_value 5"),
        ({"manager_value": -5, "job_value": -1}, "manager_value -5 must be above job_value -1"),
        ({"prefix": "system-ci"}, "prefix: 'system-ci': names starting with 'system-'"),
        ({"prefix": "CI_runners"}, "prefix: 'CI_runners' is not a valid Kubernetes name"),
    ],
)
def test_priority_classes_reject_bad_props(overrides: dict[str, Any], problem: str):
    props = {"prefix": "ci", **overrides}
    with pytest.raises(PropsError) as info:
        RunnerPriorityClasses(_stack(), "Priorities", RunnerPriorityClassesProps(**props))
    assert info.value.construct == "RunnerPriorityClasses"
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


# --------------------------------------------------------------------------------------------
# AgentCiAccess

RUNNERS, JOBS = "gitlab-runners", "gitlab-runner-jobs"
GRANTS = [
    AgentGrant(project_id="42", namespaces=[RUNNERS], access="operate"),
    AgentGrant(group_id="7", namespaces=[RUNNERS, JOBS]),
    AgentGrant(project_id="150", namespaces=[RUNNERS], access="read"),
]
READ = [
    {"api_groups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
    {"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {
        "api_groups": ["apps"],
        "resources": ["deployments", "replicasets"],
        "verbs": ["get", "list", "watch"],
    },
    {"api_groups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
    {
        "api_groups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "api_groups": ["policy"],
        "resources": ["poddisruptionbudgets"],
        "verbs": ["get", "list", "watch"],
    },
]
OPERATE = [
    *READ,
    {"api_groups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]},
]


def _access(
    grants: list[AgentGrant] = GRANTS, **overrides: Any
) -> tuple[AgentCiAccess, dict[str, Any]]:
    stack = _stack()
    access = AgentCiAccess(stack, "AgentAccess", AgentCiAccessProps(grants=grants, **overrides))
    return access, _doc(stack)


def _by_place(doc: dict[str, Any], rtype: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (item["metadata"]["namespace"], item["metadata"]["name"]): item
        for item in resources(doc, rtype).values()
    }


def test_kas_group_names_follow_gitlab():
    # GitLab's docs example: project 150 in groups 23 and 25 impersonates gitlab:project:150,
    # gitlab:group:23 and gitlab:group:25 (with gitlab:ci_job and the environment groups).
    assert AgentGrant(project_id="150", namespaces=[JOBS]).subject == "gitlab:project:150"
    assert AgentGrant(group_id="23", namespaces=[JOBS]).subject == "gitlab:group:23"


def test_one_role_and_binding_per_namespace_and_access_level():
    access, doc = _access()
    roles = _by_place(doc, "kubernetes_role_v1")
    bindings = _by_place(doc, "kubernetes_role_binding_v1")
    places = {(RUNNERS, "gitlab-ci-operate"), (RUNNERS, "gitlab-ci-read"), (JOBS, "gitlab-ci-read")}
    assert set(roles) == set(bindings) == places
    assert roles[(RUNNERS, "gitlab-ci-read")]["rule"] == READ
    assert roles[(JOBS, "gitlab-ci-read")]["rule"] == READ
    assert roles[(RUNNERS, "gitlab-ci-operate")]["rule"] == OPERATE

    def subjects(place: tuple[str, str]) -> list[str]:
        binding = bindings[place]
        for subject in binding["subject"]:
            assert subject["kind"] == "Group"
            assert subject["api_group"] == RBAC
            assert "namespace" not in subject
        assert binding["role_ref"] == {"api_group": RBAC, "kind": "Role", "name": place[1]}
        role_address = _address(doc, "kubernetes_role_v1", roles[place])
        assert binding["depends_on"] == [role_address]
        return [subject["name"] for subject in binding["subject"]]

    assert subjects((RUNNERS, "gitlab-ci-read")) == ["gitlab:group:7", "gitlab:project:150"]
    assert subjects((RUNNERS, "gitlab-ci-operate")) == ["gitlab:project:42"]
    assert subjects((JOBS, "gitlab-ci-read")) == ["gitlab:group:7"]
    assert access.subjects == {
        (RUNNERS, "operate"): ["gitlab:project:42"],
        (RUNNERS, "read"): ["gitlab:group:7", "gitlab:project:150"],
        (JOBS, "read"): ["gitlab:group:7"],
    }


def test_no_rule_grants_secrets_wildcards_or_a_shell():
    _, doc = _access()
    writes = set()
    for role in resources(doc, "kubernetes_role_v1").values():
        for rule in role["rule"]:
            for key in ("api_groups", "resources", "verbs"):
                assert "*" not in rule[key], rule
            assert "resource_names" not in rule
            forbidden = {"secrets", "configmaps", "pods/exec", "pods/attach", "pods/portforward"}
            assert not forbidden & set(rule["resources"]), rule
            assert set(rule["verbs"]) <= {"get", "list", "watch", "delete", "patch"}, rule
            writes |= {
                (resource, verb)
                for resource in rule["resources"]
                for verb in rule["verbs"]
                if verb in ("delete", "patch")
            }
    assert writes == {("pods", "delete"), ("deployments", "patch")}
    # The exported rules are what was synthesized.
    assert [dict(rule) for rule in READ_RULES] == READ


def test_operate_patches_are_limited_to_restarts():
    access, doc = _access()
    manifests = [item["manifest"] for item in resources(doc, "kubernetes_manifest").values()]
    policy = next(m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy")
    binding = next(m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding")
    assert len(manifests) == 2
    assert policy == access.admission_policy_manifest
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["UPDATE"],
            "resources": ["deployments"],
        }
    ]
    # Only CI job identities, only where operate is granted (read-only namespaces need none).
    assert [c["expression"] for c in spec["matchConditions"]] == [
        "request.userInfo.username.startsWith('gitlab:ci_job:')",
        f"request.namespace in ['{RUNNERS}']",
    ]
    assert [v["expression"] for v in spec["validations"]] == [
        "object.spec.template.spec == oldObject.spec.template.spec",
        "object.spec.template.metadata.labels == oldObject.spec.template.metadata.labels",
        "object.spec.replicas == oldObject.spec.replicas",
    ]
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }


def test_read_only_grants_need_no_admission_policy():
    access, doc = _access([AgentGrant(group_id="7", namespaces=[RUNNERS, JOBS])])
    assert resources(doc, "kubernetes_manifest") == {}
    assert access.admission_policy_manifest is None
    _, doc = _access(GRANTS, admission_policy=False)
    assert resources(doc, "kubernetes_manifest") == {}


def test_roles_wait_for_the_namespaces():
    stack = _stack()
    namespace = NamespaceV1(stack, "Ns", metadata={"name": RUNNERS})
    AgentCiAccess(
        stack,
        "AgentAccess",
        AgentCiAccessProps(
            grants=[AgentGrant(project_id="42", namespaces=[RUNNERS])], depends_on=[namespace]
        ),
    )
    role = _one(_doc(stack), "kubernetes_role_v1")
    assert role["depends_on"] == ["kubernetes_namespace_v1.Ns"]


def test_agent_access_reports_every_problem_at_once():
    with pytest.raises(PropsError) as info:
        _access(
            [
                AgentGrant(project_id="42", group_id="7", namespaces=[RUNNERS]),
                AgentGrant(namespaces=[RUNNERS]),
                AgentGrant(project_id="group/project", namespaces=[RUNNERS]),
                AgentGrant(group_id="0", namespaces=[RUNNERS]),
                AgentGrant(project_id="9", namespaces=[]),
                AgentGrant(project_id="10", namespaces=["Runners"]),
                AgentGrant(project_id="11", namespaces=[RUNNERS], access="admin"),  # type: ignore[arg-type]
                AgentGrant(project_id="12", namespaces=[RUNNERS, JOBS]),
                AgentGrant(project_id="12", namespaces=[JOBS], access="operate"),
            ],
            name="GitLab",
        )
    assert info.value.construct == "AgentCiAccess"
    problems = info.value.problems
    expected = [
        "name: 'GitLab' is not a valid Kubernetes name",
        "grants[0]: set exactly one of project_id and group_id",
        "grants[1]: set exactly one of project_id and group_id",
        "grants[2].project_id: 'group/project' is not a numeric GitLab id",
        "grants[3].group_id: '0' is not a numeric GitLab id",
        "grants[4].namespaces: at least one namespace is needed",
        "grants[5].namespaces: 'Runners' is not a valid Kubernetes name",
        "grants[6].access: 'admin' is not one of read, operate",
        "grants[8]: gitlab:project:12 is granted gitlab-runner-jobs twice",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), problems


def test_agent_access_needs_a_grant():
    with pytest.raises(PropsError, match="grants: at least one grant is needed"):
        _access([])
