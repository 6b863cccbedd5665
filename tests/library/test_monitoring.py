"""The PrometheusRule construct and the Attic SLO rules: PromQL, metric names, CRD, thresholds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.monitoring.attic_slo import BUDGET_REMAINING, METRICS, attic_rule_groups
from constructs_lib.monitoring.attic_slo_props import (
    AtticRouteServices,
    AtticSloProps,
    GcCronJob,
    GcDeployment,
)
from constructs_lib.monitoring.prometheus_rule import PrometheusRule, PrometheusRuleProps
from constructs_lib.validation import PropsError
from tests.support.conformance import crd_errors, crd_validator
from tests.support.synth_output import strings_in

# Every metric name a rule may read, with where it is documented. Written out here instead of
# imported, so a misspelt name in the library fails rather than being copied into the list.
DOCUMENTED_METRICS = {
    # https://doc.traefik.io/traefik/reference/install-configuration/observability/metrics/
    # (traefik/traefik docs/content/reference/install-configuration/observability/metrics.md)
    "traefik_service_requests_total",
    "traefik_service_request_duration_seconds_bucket",
    # kubernetes/ingress-nginx internal/ingress/metric/collectors/socket.go
    "nginx_ingress_controller_requests",
    "nginx_ingress_controller_request_duration_seconds_bucket",
    # kubernetes/kube-state-metrics docs/metrics/workload/{deployment,cronjob,job}-metrics.md
    "kube_deployment_status_replicas_available",
    "kube_deployment_spec_replicas",
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_created",
    "kube_job_failed",
    "kube_job_owner",
    "kube_job_status_start_time",
    # cloudnative-pg/cloudnative-pg config/manager/default-monitoring.yaml; docs "Monitoring"
    "cnpg_pg_replication_lag",
    "cnpg_collector_up",
    # cloudnative-pg/plugin-barman-cloud web/docs (Observability, migration.md)
    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
    "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp",
    # Prometheus itself
    "up",
}

# Google SRE Workbook, "Alerting on SLOs", Table 5-8, plus the 1d/2h ticket row Sloth adds.
WORKBOOK = {
    ("1h", "5m"): (14.4, "critical"),
    ("6h", "30m"): (6.0, "critical"),
    ("1d", "2h"): (3.0, "warning"),
    ("3d", "6h"): (1.0, "warning"),
}

SERVICES = AtticRouteServices(
    api_service="attic", binary_cache_service="attic-cache", cache_info_service="attic-info"
)


def _props(**overrides: Any) -> AtticSloProps:
    base = AtticSloProps(
        namespace="attic",
        ingress_controller="traefik",
        host="cache.example.com",
        services=SERVICES,
        api_deployment="attic",
        gc=GcCronJob(name="attic-gc", max_age_seconds=2 * 86400),
        pg_cluster="attic-pg",
        backup_max_age_seconds=2 * 86400,
        cronjobs_max_age={"attic-token-rotation": 3 * 3600},
        failed_jobs_cronjobs=("attic-cache-warm",),
    )
    return replace(base, **overrides)


VARIANT_OVERRIDES: list[dict[str, Any]] = [
    {"ingress_controller": controller, "backup_max_age_seconds": backups}
    for controller in ("traefik", "nginx")
    for backups in (2 * 86400, None)
]
VARIANTS = [
    pytest.param(
        o,
        id=o["ingress_controller"] + ("-backups" if o["backup_max_age_seconds"] else "-no-backups"),
    )
    for o in VARIANT_OVERRIDES
]


def _rules(groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for group in groups:
        yield from group["rules"]


def _alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in _rules(groups) if "alert" in r}


def _records(groups: list[dict[str, Any]]) -> set[str]:
    return {r["record"] for r in _rules(groups) if "record" in r}


def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def _parse(expr: str) -> Any:
    """The AST, typed loosely: the stubs type nodes as ``Expr`` without their fields."""
    return promql_parser.parse(expr)


def _stack() -> TerraformStack:
    return TerraformStack(CdktfTesting.app(), "test")


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_expression_parses(overrides):
    for rule in _rules(attic_rule_groups(_props(**overrides))):
        name = rule.get("alert") or rule.get("record")
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as error:
            pytest.fail(f"{name}: {error}\n{rule['expr']}")


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_metric_read_is_documented_or_recorded(overrides):
    groups = attic_rule_groups(_props(**overrides))
    records = _records(groups)
    for rule in _rules(groups):
        unknown = _metric_names(rule["expr"]) - DOCUMENTED_METRICS - records
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_the_library_documents_exactly_the_metrics_it_reads():
    assert set(METRICS) == DOCUMENTED_METRICS
    used: set[str] = set()
    for overrides in VARIANT_OVERRIDES:
        for rule in _rules(attic_rule_groups(_props(**overrides))):
            used |= _metric_names(rule["expr"])
    assert used >= DOCUMENTED_METRICS, f"never read: {DOCUMENTED_METRICS - used}"


def test_each_controller_reads_only_its_own_metrics():
    for controller, other in (("traefik", "nginx_"), ("nginx", "traefik_")):
        exprs = [
            r["expr"] for r in _rules(attic_rule_groups(_props(ingress_controller=controller)))
        ]
        assert not [e for e in exprs if other in e], controller


@pytest.mark.parametrize("overrides", VARIANTS)
def test_the_manifest_matches_the_prometheusrule_crd(refdata: Path, overrides):
    rule = PrometheusRule(
        _stack(),
        "Rules",
        PrometheusRuleProps(
            name="attic-slo",
            namespace="attic",
            groups=attic_rule_groups(_props(**overrides)),
            labels={"release": "kube-prometheus-stack"},
        ),
    )
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_prometheusrules.yaml", "v1")
    assert crd_errors(validator, rule.manifest) == []


def test_the_crd_check_catches_a_misspelt_rule_key(refdata: Path):
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_prometheusrules.yaml", "v1")
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x", "namespace": "attic"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "fro": "5m"}]}]},
    }
    assert any("fro" in e for e in crd_errors(validator, manifest))


@pytest.mark.parametrize("target", [0.999, 0.995])
def test_burn_rate_thresholds_are_the_workbook_factors_times_the_budget(target):
    alerts = _alerts(attic_rule_groups(_props(availability_target=target)))
    seen = set()
    for name, alert in alerts.items():
        expr = _parse(alert["expr"])
        if "ratio_rate" not in alert["expr"]:
            continue
        assert str(expr.op) == "and", name
        windows, thresholds = [], []
        for side in (expr.lhs, expr.rhs):
            assert str(side.op) == ">", name
            match = re.fullmatch(r"attic:http_request_errors:ratio_rate(\w+)", side.lhs.name)
            assert match, name
            windows.append(match.group(1))
            thresholds.append(side.rhs.val)
        factor, severity = WORKBOOK[(windows[0], windows[1])]
        assert thresholds == [pytest.approx(factor * (1 - target))] * 2, name
        assert alert["labels"]["severity"] == severity, name
        seen.add((windows[0], windows[1]))
    assert seen == set(WORKBOOK)


def test_every_window_an_alert_reads_is_recorded():
    groups = attic_rule_groups(_props(slo_window="28d"))
    records = _records(groups)
    for rule in _rules(groups):
        recorded = {n for n in _metric_names(rule["expr"]) if ":" in n}
        assert recorded <= records, recorded - records
    assert "attic:http_request_errors:ratio_rate28d" in records


def test_error_budget_alerts_fire_at_25_and_10_percent_left():
    alerts = _alerts(attic_rule_groups(_props()))
    budget = {
        alert["labels"]["severity"]: _parse(alert["expr"])
        for alert in alerts.values()
        if BUDGET_REMAINING in alert["expr"]
    }
    assert set(budget) == {"warning", "critical"}
    assert str(budget["warning"].op) == "<"
    assert budget["warning"].rhs.val == pytest.approx(0.25)
    assert budget["critical"].rhs.val == pytest.approx(0.10)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_alert_and_record_names_are_unique(overrides):
    groups = attic_rule_groups(_props(**overrides))
    names = [r.get("alert") or r.get("record") for r in _rules(groups)]
    assert len(names) == len(set(names))
    group_names = [g["name"] for g in groups]
    assert len(group_names) == len(set(group_names))


@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_alert_says_how_long_how_bad_what_and_where_from(overrides):
    groups = attic_rule_groups(_props(**overrides))
    records = _records(groups)
    for name, alert in _alerts(groups).items():
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)
        assert alert["for"], name
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert annotations["summary"], name
        assert annotations["runbook"], name
        sources = DOCUMENTED_METRICS | records
        assert any(m in annotations["description"] for m in sources), name


@pytest.mark.parametrize("overrides", VARIANTS)
def test_no_string_looks_like_a_terraform_template(overrides):
    # cdktf writes strings into Terraform JSON, where ${...} and %{...} are interpolated.
    for text in strings_in(attic_rule_groups(_props(**overrides))):
        assert "${" not in text, text
        assert "%{" not in text, text


def test_backup_alerts_exist_only_when_backups_are_on():
    with_backups = _alerts(attic_rule_groups(_props()))
    without = _alerts(attic_rule_groups(_props(backup_max_age_seconds=None)))
    assert {"AtticBackupTooOld", "AtticBackupFailed"} <= set(with_backups)
    assert not [n for n in without if "Backup" in n]
    assert "> 172800" in with_backups["AtticBackupTooOld"]["expr"]


def test_gc_alert_follows_how_gc_runs():
    cron = _alerts(attic_rule_groups(_props()))
    deployment = _alerts(attic_rule_groups(_props(gc=GcDeployment(name="attic-gc"))))
    none = _alerts(attic_rule_groups(_props(gc=None)))
    assert 'cronjob="attic-gc"' in cron["AtticGarbageCollectionStale"]["expr"]
    assert "> 172800" in cron["AtticGarbageCollectionStale"]["expr"]
    assert 'deployment="attic-gc"' in deployment["AtticGarbageCollectorDown"]["expr"]
    assert not [n for n in none if "Garbage" in n]


def test_cronjob_alerts_use_each_cronjobs_own_limit():
    alerts = _alerts(
        attic_rule_groups(
            _props(cronjobs_max_age={"attic-token-rotation": 3 * 3600, "attic-warm": 86400})
        )
    )
    expr = alerts["AtticCronJobNotSucceeding"]["expr"]
    assert re.search(r'cronjob="attic-token-rotation"\} > 10800\)', expr)
    assert re.search(r'cronjob="attic-warm"\} > 86400\)', expr)
    failed = alerts["AtticJobFailed"]["expr"]
    assert 'owner_kind="CronJob", owner_name=~"attic-cache-warm"' in failed
    empty = _alerts(attic_rule_groups(_props(cronjobs_max_age={}, failed_jobs_cronjobs=())))
    assert "AtticCronJobNotSucceeding" not in empty
    assert "AtticJobFailed" not in empty


def test_traefik_service_matcher_ignores_the_port_but_not_the_service():
    groups = attic_rule_groups(_props())
    expr = next(r["expr"] for r in _rules(groups) if r["record"] == "attic:http_requests:rate5m")
    pattern = re.search(r'service=~"([^"]+)"', expr)
    assert pattern
    regex = re.compile(pattern.group(1))  # a PromQL regex is anchored at both ends
    for label in (
        "attic-attic-80@kubernetes",
        "attic-attic-cache-http@kubernetes",
        "attic-attic-info-80@kubernetes",
    ):
        assert regex.fullmatch(label), label
    for label in (
        "attic-attic-other-80@kubernetes",  # another Service whose name starts with "attic"
        "other-attic-80@kubernetes",
        "attic-attic-80@kubernetescrd",
    ):
        assert not regex.fullmatch(label), label


def test_latency_alerts_read_successful_gets_of_their_own_service():
    alerts = _alerts(attic_rule_groups(_props(ingress_controller="nginx")))
    hit = alerts["AtticCacheHitLatencyHigh"]["expr"]
    info = alerts["AtticCacheInfoLatencyHigh"]["expr"]
    assert 'service=~"attic-cache"' in hit
    assert 'method="GET", status=~"2.."' in hit
    assert hit.rstrip().endswith("> 0.5")
    assert 'service=~"attic-info"' in info
    assert info.rstrip().endswith("> 0.2")


def test_nginx_namespace_label_follows_the_scrape_config():
    default = json.dumps(attic_rule_groups(_props(ingress_controller="nginx")))
    honored = json.dumps(
        attic_rule_groups(_props(ingress_controller="nginx", nginx_namespace_label="namespace"))
    )
    assert 'nginx_ingress_controller_requests{exported_namespace=\\"attic\\"' in default
    assert 'nginx_ingress_controller_requests{namespace=\\"attic\\"' in honored


def test_postgres_rules_select_the_clusters_pods():
    alerts = _alerts(attic_rule_groups(_props(pg_namespace="db")))
    lag = alerts["AtticPostgresReplicationLag"]["expr"]
    assert lag == 'cnpg_pg_replication_lag{namespace="db", pod=~"attic-pg-[0-9]+"} > 30'


def test_slo_props_report_every_problem_at_once():
    bad = _props(
        namespace="Attic",
        ingress_controller="haproxy",
        services=AtticRouteServices(
            api_service="attic", binary_cache_service="attic", cache_info_service="x_y"
        ),
        availability_target=99.9,
        slo_window="30 days",
        budget_warning_remaining=0.1,
        budget_critical_remaining=0.25,
        gc=GcCronJob(name="attic-gc", max_age_seconds=0),
        cronjobs_max_age={"Rotate": 3600},
    )
    with pytest.raises(PropsError) as info:
        attic_rule_groups(bad)
    problems = info.value.problems
    for expected in (
        "namespace:",
        "ingress_controller:",
        "services.cache_info_service:",
        "services: the three Services must differ",
        "availability_target:",
        "slo_window:",
        "budget_critical_remaining/budget_warning_remaining:",
        "gc.max_age_seconds:",
        "cronjobs_max_age:",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_prometheus_rule_reports_every_problem_at_once():
    groups: list[dict[str, Any]] = [
        {
            "name": "a",
            "rules": [
                {"alert": "lower_case", "expr": "up == 0", "for": "5 minutes"},
                {"alert": "Both", "record": "both", "expr": "up"},
                {"expr": "up"},
                {"record": "bad-name", "expr": "up", "for": "5m"},
                {"alert": "NoExpr", "labels": {"severity": 1}},
            ],
        },
        {"name": "a", "rules": [{"record": "r", "expr": "up"}]},
        {"name": "b", "interval": "1 minute", "rules": []},
    ]
    with pytest.raises(PropsError) as info:
        PrometheusRule(
            _stack(),
            "Rules",
            PrometheusRuleProps(name="Bad_Name", namespace="attic", groups=groups),
        )
    problems = info.value.problems
    for expected in (
        "name: 'Bad_Name' is not a valid Kubernetes name",
        "groups[a].rules[0](lower_case).alert: 'lower_case' must be CamelCase",
        "groups[a].rules[0](lower_case).for: '5 minutes' is not a Prometheus duration",
        "groups[a].rules[1]: needs exactly one of 'alert' and 'record'",
        "groups[a].rules[2]: needs exactly one of 'alert' and 'record'",
        "groups[a].rules[3](bad-name).record: 'bad-name' is not a metric name",
        "groups[a].rules[3](bad-name).for: only alerting rules take it",
        "groups[a].rules[4](NoExpr).expr: required",
        "groups[a].rules[4](NoExpr).labels.severity: values are strings",
        "groups[1].name: 'a' is used by another group",
        "groups[b].interval: '1 minute' is not a Prometheus duration",
        "groups[b].rules: at least one rule is required",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 12


def test_prometheus_rule_needs_a_group():
    with pytest.raises(PropsError, match="groups: at least one rule group is required"):
        PrometheusRule(
            _stack(), "Rules", PrometheusRuleProps(name="x", namespace="attic", groups=[])
        )


def test_the_construct_synthesizes_a_valid_kubernetes_manifest(refdata: Path):
    stack = _stack()
    rule = PrometheusRule(
        stack,
        "AtticRules",
        PrometheusRuleProps(
            name="attic-slo",
            namespace="attic",
            groups=attic_rule_groups(_props()),
            labels={"release": "kube-prometheus-stack"},
        ),
    )
    doc = json.loads(CdktfTesting.synth(stack))
    manifests = [r["manifest"] for r in doc["resource"]["kubernetes_manifest"].values()]
    assert manifests == [rule.manifest]
    assert rule.manifest["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    validator = crd_validator(refdata / "crds/monitoring.coreos.com_prometheusrules.yaml", "v1")
    assert crd_errors(validator, manifests[0]) == []
