"""Runner fleet monitoring: the PodMonitor and the runner rules: PromQL, metric names and
labels, thresholds, CRDs, validation."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.monitoring.pod_monitor import PodMonitor, PodMonitorProps
from constructs_lib.monitoring.runner_alerts import (
    CONCURRENT_SATURATION,
    LIMIT_SATURATION,
    METRICS,
    RUNNER_TARGET_LABELS,
    RunnerAlerts,
    RunnerAlertsProps,
    runner_rule_groups,
)
from constructs_lib.runners.labels import MANAGER_LABELS, RUNNER_TYPES
from constructs_lib.validation import PropsError
from tests.support.conformance import crd_errors, crd_validator
from tests.support.promql_rules import (
    alert_named,
    alerts_named,
    label_problems,
    matchers_of,
    parse,
    rules_of,
    selectors,
    thresholds,
)
from tests.support.synth_output import strings_in

# Labels every series scraped through the runner PodMonitor carries: the operator's target
# labels (prometheus-operator pkg/prometheus/promcfg.go generatePodMonitorConfig: namespace,
# container, pod, job, endpoint; instance from Prometheus) plus runner_type from our
# relabeling of the pod label attic-iac/runner-type.
RUNNER_TARGET = {"job", "instance", "namespace", "pod", "container", "endpoint", "runner_type"}
# kube-state-metrics is scraped with honorLabels, so its own namespace/pod win.
KSM_TARGET = {"job", "instance"}

# Every metric a rule may read, with the labels it really has. Written out here instead of
# imported, so a misspelt metric or label in the library fails rather than being copied.
METRIC_LABELS: dict[str, set[str]] = {
    # Prometheus: one per scrape target.
    "up": RUNNER_TARGET,
    # gitlab-runner commands/builds_helper.go (numBuildsDesc, newBuildsHelper); runner 17+
    # adds runner_name. The "idle" series per [[runners]] entry has state/stage "idle".
    "gitlab_runner_jobs": RUNNER_TARGET
    | {"runner", "runner_name", "system_id", "state", "stage", "executor_stage"},
    "gitlab_runner_jobs_total": RUNNER_TARGET | {"runner", "runner_name", "system_id"},
    # gitlab-runner helpers/prometheus/failures_collector.go: no system_id.
    "gitlab_runner_failed_jobs_total": RUNNER_TARGET
    | {"runner", "runner_name", "failure_reason", "mode"},
    # gitlab-runner commands/multi.go: concurrentDesc has no labels; limitDesc per runner.
    "gitlab_runner_concurrent": RUNNER_TARGET,
    "gitlab_runner_limit": RUNNER_TARGET | {"runner", "runner_name", "system_id"},
    # kubernetes/kube-state-metrics docs/metrics/policy/resourcequota-metrics.md
    "kube_resourcequota": KSM_TARGET | {"namespace", "resourcequota", "resource", "type"},
    # kubernetes/kube-state-metrics docs/metrics/workload/pod-metrics.md; kube_pod_labels gets
    # label_<key with [^a-zA-Z0-9_] as _> for each key in --metric-labels-allowlist.
    "kube_pod_created": KSM_TARGET | {"namespace", "pod", "uid"},
    "kube_pod_status_phase": KSM_TARGET | {"namespace", "pod", "uid", "phase"},
    "kube_pod_labels": KSM_TARGET
    | {
        "namespace",
        "pod",
        "uid",
        "label_app_kubernetes_io_part_of",
        "label_app_kubernetes_io_component",
    },
}

JOB = "gitlab-runners/gitlab-runner"


def _props(**overrides: Any) -> RunnerAlertsProps:
    base = RunnerAlertsProps(
        name="gitlab-runner-alerts",
        namespace="gitlab-runners",
        scrape_job=JOB,
        leaked_pod_age_seconds=5 * 3600,
    )
    return replace(base, **overrides)


VARIANTS = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {"runner_types": ("nix",), "job_namespaces": ("ci",), "ignored_failure_reasons": ()},
        id="one-type-one-namespace",
    ),
]


def _check_labels(groups: list[dict[str, Any]]) -> list[str]:
    return label_problems(groups, METRIC_LABELS)


def _stack() -> TerraformStack:
    return TerraformStack(CdktfTesting.app(), "test")


def _pod_monitor_props(**overrides: Any) -> PodMonitorProps:
    base = PodMonitorProps(
        name="gitlab-runner",
        namespace="gitlab-runners",
        pod_labels=MANAGER_LABELS,
        relabel_pod_labels=RUNNER_TARGET_LABELS,
        labels={"release": "kube-prometheus-stack"},
    )
    return replace(base, **overrides)


# --- PromQL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_expression_parses(overrides):
    for rule in rules_of(runner_rule_groups(_props(**overrides))):
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as error:
            pytest.fail(f"{rule.get('alert') or rule.get('record')}: {error}\n{rule['expr']}")


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_metric_read_is_known_or_recorded(overrides):
    groups = runner_rule_groups(_props(**overrides))
    records = {r["record"] for r in rules_of(groups) if "record" in r}
    for rule in rules_of(groups):
        names = {s.name for s in selectors(rule["expr"])}
        assert names <= set(METRIC_LABELS) | records, names - set(METRIC_LABELS) - records


def test_the_library_documents_exactly_the_metrics_it_reads():
    assert set(METRICS) == set(METRIC_LABELS)
    used = {s.name for r in rules_of(runner_rule_groups(_props())) for s in selectors(r["expr"])}
    assert used - {CONCURRENT_SATURATION, LIMIT_SATURATION} == set(METRIC_LABELS)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_label_a_rule_uses_is_one_its_series_have(overrides):
    assert _check_labels(runner_rule_groups(_props(**overrides))) == []


def test_the_label_check_catches_a_label_the_metric_lacks():
    groups = runner_rule_groups(_props())
    # gitlab_runner_failed_jobs_total has no system_id: grouping by it must be reported.
    groups[1]["rules"] = [
        {
            "alert": "Bad",
            "expr": "sum by (system_id) (gitlab_runner_failed_jobs_total) / on (system_id) "
            "sum by (system_id) (gitlab_runner_jobs_total)",
            "labels": {},
            "annotations": {"summary": "{{ $labels.pod }}"},
        }
    ]
    problems = _check_labels(groups)
    assert any("by ['system_id']" in p for p in problems), problems
    assert any("annotation label pod" in p for p in problems), problems


@pytest.mark.parametrize("overrides", VARIANTS)
def test_runner_series_are_selected_by_job_and_manager_namespace(overrides):
    groups = runner_rule_groups(_props(**overrides))
    runner_metrics = {m for m in METRIC_LABELS if m == "up" or m.startswith("gitlab_runner_")}
    for rule in rules_of(groups):
        for selector in selectors(rule["expr"]):
            if selector.name in runner_metrics:
                matchers = {m.name: m.value for m in selector.matchers.matchers}
                assert matchers["job"] == JOB, rule
                assert matchers["namespace"] == "gitlab-runners", rule


@pytest.mark.parametrize("overrides", VARIANTS)
def test_no_string_looks_like_a_terraform_template(overrides):
    for text in strings_in(runner_rule_groups(_props(**overrides))):
        assert "${" not in text, text
        assert "%{" not in text, text


# --- alerts per config ----------------------------------------------------------------------


def test_each_enabled_type_gets_a_down_rule_that_fires_without_targets():
    groups = runner_rule_groups(_props(runner_types=("docker", "nix")))
    down = alerts_named(groups, "GitLabRunnerDown")
    assert sorted(r["labels"]["runner_type"] for r in down) == ["docker", "nix"]
    for rule in down:
        expr = parse(rule["expr"])
        # (sum(up{...}) or vector(0)) == 0: the "or vector(0)" covers a type with no pod.
        assert str(expr.op) == "=="
        assert expr.rhs.val == 0
        inner = expr.lhs.expr
        assert str(inner.op) == "or"
        assert inner.rhs.func.name == "vector"
        (up,) = matchers_of(rule["expr"], "up")
        assert up["runner_type"] == ("Equal", rule["labels"]["runner_type"])
        assert rule["labels"]["severity"] == "critical"
    default = alerts_named(runner_rule_groups(_props()), "GitLabRunnerDown")
    assert {r["labels"]["runner_type"] for r in default} == set(RUNNER_TYPES)


def test_no_jobs_alert_watches_only_enabled_types_and_is_info():
    rule = alert_named(
        runner_rule_groups(_props(runner_types=("docker", "rocky9"))), "GitLabRunnerNoJobsProcessed"
    )
    assert rule["labels"]["severity"] == "info"
    for metric in ("gitlab_runner_jobs_total", "gitlab_runner_concurrent"):
        (matchers,) = matchers_of(rule["expr"], metric)
        assert matchers["runner_type"] == ("Re", "docker|rocky9")
    assert "[24h]" in rule["expr"]
    assert (
        "[3h]"
        in alert_named(
            runner_rule_groups(_props(no_jobs_window="3h")), "GitLabRunnerNoJobsProcessed"
        )["expr"]
    )


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_alert_says_how_long_how_bad_what_and_where_from(overrides):
    groups = runner_rule_groups(_props(**overrides))
    names = set()
    for rule in rules_of(groups):
        if "record" in rule:
            continue
        names.add(rule["alert"])
        assert rule["for"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"]
        sources = set(METRIC_LABELS) | {CONCURRENT_SATURATION, LIMIT_SATURATION}
        description = rule["annotations"]["description"]
        assert any(m in description for m in sources if m != "up") or "up ==" in description
    assert names == {
        "GitLabRunnerDown",
        "GitLabRunnerJobFailureRate",
        "GitLabRunnerNoJobsProcessed",
        "GitLabRunnerSaturated",
        "GitLabRunnerLimitSaturated",
        "GitLabRunnerQuotaNearlyExhausted",
        "GitLabRunnerLeakedJobPods",
        "GitLabRunnerPodLabelsNotExported",
    }


# --- thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.9, 0.75])
def test_saturation_alerts_compare_the_recorded_ratios_with_the_threshold(threshold):
    groups = runner_rule_groups(_props(saturation_threshold=threshold))
    for alert, record in (
        ("GitLabRunnerSaturated", CONCURRENT_SATURATION),
        ("GitLabRunnerLimitSaturated", LIMIT_SATURATION),
    ):
        expr = parse(alert_named(groups, alert)["expr"])
        assert str(expr.op) == ">="
        assert expr.lhs.name == record
        assert expr.rhs.val == pytest.approx(threshold)


def test_concurrent_saturation_divides_all_held_jobs_by_concurrent_per_pod():
    groups = runner_rule_groups(_props())
    record = next(r for r in rules_of(groups) if r.get("record") == CONCURRENT_SATURATION)
    expr = parse(record["expr"])
    assert str(expr.op) == "/"
    assert set(expr.modifier.matching.labels) == {"namespace", "pod", "runner_type"}
    assert expr.lhs.expr.name == "gitlab_runner_jobs"
    # All states count: every job the process holds takes a concurrent slot.
    assert "state" not in matchers_of(record["expr"], "gitlab_runner_jobs")[0]
    assert "gitlab_runner_concurrent" in str(expr.rhs.expr)
    limit = next(r for r in rules_of(groups) if r.get("record") == LIMIT_SATURATION)
    # gitlab_runner_limit's system_id is the config field, not the jobs' one: join on runner.
    assert set(parse(limit["expr"]).modifier.matching.labels) == {
        "namespace",
        "pod",
        "runner_type",
        "runner",
    }


def test_failure_rate_uses_ratio_window_and_traffic_guard_from_props():
    rule = alert_named(
        runner_rule_groups(_props(failure_ratio=0.25, failure_window="1h", failure_min_jobs=20)),
        "GitLabRunnerJobFailureRate",
    )
    expr = parse(rule["expr"])
    assert str(expr.op) == "and"
    ratio, guard = expr.lhs, expr.rhs
    assert str(ratio.op) == ">"
    assert ratio.rhs.val == pytest.approx(0.25)
    assert str(guard.op) == ">="
    assert guard.rhs.val == 20
    assert set(expr.modifier.matching.labels) == {"namespace", "runner_type"}
    assert re.findall(r"\[(\w+)\]", rule["expr"]) == ["1h", "1h", "1h"]
    (failed,) = matchers_of(rule["expr"], "gitlab_runner_failed_jobs_total")
    assert failed["failure_reason"] == ("NotRe", "script_failure|job_canceled")


def test_quota_alert_reads_used_over_hard_in_the_job_namespaces():
    rule = alert_named(
        runner_rule_groups(_props(quota_threshold=0.8, job_namespaces=("a", "b"))),
        "GitLabRunnerQuotaNearlyExhausted",
    )
    expr = parse(rule["expr"])
    assert str(expr.op) == ">="
    assert expr.rhs.val == pytest.approx(0.8)
    used, hard = matchers_of(rule["expr"], "kube_resourcequota")
    assert used == {"namespace": ("Re", "a|b"), "type": ("Equal", "used")}
    assert hard == {"namespace": ("Re", "a|b"), "type": ("Equal", "hard")}
    assert set(expr.lhs.modifier.matching.labels) == {"namespace", "resourcequota", "resource"}


def test_leaked_pod_alert_joins_age_with_the_job_pod_labels():
    rule = alert_named(
        runner_rule_groups(_props(leaked_pod_age_seconds=4 * 3600)), "GitLabRunnerLeakedJobPods"
    )
    assert 14400.0 in thresholds(parse(rule["expr"]))
    (labels,) = matchers_of(rule["expr"], "kube_pod_labels")
    # constructs_lib/runners/labels.py JOB_POD_LABELS, as kube-state-metrics names them.
    assert labels["label_app_kubernetes_io_part_of"] == ("Equal", "gitlab-runners")
    assert labels["label_app_kubernetes_io_component"] == ("Equal", "ci-job")
    assert labels["namespace"] == ("Re", "gitlab-runner-jobs|gitlab-runner-dind")
    (phase,) = matchers_of(rule["expr"], "kube_pod_status_phase")
    assert phase["namespace"] == labels["namespace"]
    assert str(parse(rule["expr"]).op) == "count"
    assert "4h" in rule["annotations"]["summary"]


def test_pod_labels_sentinel_looks_for_the_manager_pods_labels():
    rule = alert_named(runner_rule_groups(_props()), "GitLabRunnerPodLabelsNotExported")
    (labels,) = matchers_of(rule["expr"], "kube_pod_labels")
    assert labels == {
        "namespace": ("Equal", "gitlab-runners"),
        "label_app_kubernetes_io_component": ("Equal", "runner-manager"),
        "label_app_kubernetes_io_part_of": ("Equal", "gitlab-runners"),
    }
    allowlist = "pods=[app.kubernetes.io/component,app.kubernetes.io/part-of]"
    assert allowlist in rule["annotations"]["runbook"]


# --- constructs and CRDs --------------------------------------------------------------------


def test_the_pod_monitor_matches_its_crd_and_copies_the_runner_type(refdata: Path):
    monitor = PodMonitor(
        _stack(), "Monitor", _pod_monitor_props(extra_target_labels={"fleet": "ci"})
    )
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_podmonitors.yaml", "v1")
    assert crd_errors(validator, monitor.manifest) == []
    spec = monitor.manifest["spec"]
    assert spec["selector"] == {"matchLabels": MANAGER_LABELS}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        "metrics",
        "/metrics",
        "30s",
    )
    assert endpoint["relabelings"] == [
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_attic_iac_runner_type"],
            "targetLabel": "runner_type",
        },
        {"action": "replace", "targetLabel": "fleet", "replacement": "ci"},
    ]
    assert monitor.job == "gitlab-runners/gitlab-runner"
    assert monitor.manifest["metadata"]["labels"] == {"release": "kube-prometheus-stack"}


def test_the_crd_check_catches_a_port_number(refdata: Path):
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_podmonitors.yaml", "v1")
    manifest = PodMonitor(_stack(), "Monitor", _pod_monitor_props()).manifest
    manifest["spec"]["podMetricsEndpoints"][0]["port"] = 9252
    assert any("9252" in e for e in crd_errors(validator, manifest))


@pytest.mark.parametrize("overrides", VARIANTS)
def test_the_rules_synthesize_and_match_the_prometheusrule_crd(refdata: Path, overrides):
    stack = _stack()
    monitor = PodMonitor(stack, "Monitor", _pod_monitor_props())
    alerts = RunnerAlerts(
        stack,
        "Alerts",
        replace(_props(**overrides), scrape_job=monitor.job, labels={"release": "kps"}),
    )
    doc = json.loads(CdktfTesting.synth(stack))
    manifests = [r["manifest"] for r in doc["resource"]["kubernetes_manifest"].values()]
    assert alerts.rule.manifest in manifests
    assert monitor.manifest in manifests
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_prometheusrules.yaml", "v1")
    assert crd_errors(validator, alerts.rule.manifest) == []
    assert alerts.rule.manifest["metadata"] == {
        "name": "gitlab-runner-alerts",
        "namespace": "gitlab-runners",
        "labels": {"release": "kps"},
    }


# --- validation -----------------------------------------------------------------------------


def test_pod_monitor_reports_every_problem_at_once():
    bad = _pod_monitor_props(
        name="Runner",
        port="9252",
        path="metrics",
        interval="30 seconds",
        pod_labels={},
        relabel_pod_labels={"attic-iac/runner-type": "job", "bad key!": "__x"},
        extra_target_labels={"fleet": "$1"},
        labels={"release": "not valid!"},
    )
    with pytest.raises(PropsError) as info:
        PodMonitor(_stack(), "Monitor", bad)
    problems = info.value.problems
    for expected in (
        "name: 'Runner' is not a valid Kubernetes name",
        "port: '9252' is a number",
        "path: 'metrics' must start with '/'",
        "interval: '30 seconds' is not a non-zero Prometheus duration",
        "pod_labels: at least one label is required",
        "labels[release]:",
        "target label 'job': the operator sets it",
        "target label '__x': not a Prometheus label name",
        "relabel_pod_labels[bad key!]: not a Kubernetes label key",
        "extra_target_labels[fleet]: '$1' must not contain '$'",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 10


@pytest.mark.parametrize(
    ("port", "interval", "ok"),
    [
        ("metrics", "1m", True),
        ("http-metrics", "15s", True),
        ("a-very-long-port-name", "30s", False),
        ("metrics-", "30s", False),
        ("metrics", "0s", False),
    ],
)
def test_pod_monitor_port_and_interval_rules(port, interval, ok):
    props = _pod_monitor_props(port=port, interval=interval)
    if ok:
        PodMonitor(_stack(), "Monitor", props)
    else:
        with pytest.raises(PropsError):
            PodMonitor(_stack(), "Monitor", props)


def test_runner_alerts_report_every_problem_at_once():
    bad = _props(
        name="Alerts",
        scrape_job='job"x',
        manager_namespace="Runners",
        job_namespaces=(),
        runner_types=("docker", "windows", "docker"),
        saturation_threshold=1.5,
        failure_ratio=1,
        failure_window="30 minutes",
        failure_min_jobs=0,
        ignored_failure_reasons=("Script Failure",),
        no_jobs_window="0",
        quota_threshold=0,
        leaked_pod_age_seconds=0,
    )
    with pytest.raises(PropsError) as info:
        runner_rule_groups(bad)
    problems = info.value.problems
    for expected in (
        "name: 'Alerts' is not a valid Kubernetes name",
        "manager_namespace:",
        "scrape_job:",
        "job_namespaces: at least one namespace",
        "runner_types: 'windows' is not a runner type",
        "runner_types: ['docker', 'windows', 'docker'] lists a type twice",
        "saturation_threshold: 1.5",
        "failure_ratio: 1",
        "quota_threshold: 0",
        "failure_window:",
        "no_jobs_window:",
        "failure_min_jobs: 0",
        "leaked_pod_age_seconds: 0",
        "ignored_failure_reasons: 'Script Failure'",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 14
