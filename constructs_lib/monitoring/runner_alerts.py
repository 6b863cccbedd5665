"""Prometheus rules for the GitLab runner fleet: managers down, failing or idle, saturated
slots, job namespaces near their quota, job pods nobody deleted.

The runner signals come from each manager's ``/metrics`` (port ``metrics``, 9252), scraped by
a :class:`~constructs_lib.monitoring.pod_monitor.PodMonitor` that copies the manager pods'
``attic-iac/runner-type`` label to the target label ``runner_type``; every runner series then
also carries ``job``, ``namespace``, ``pod``, ``container``, ``endpoint`` and ``instance``.
The runner's own labels differ between metrics, so each rule joins only on labels both sides
have (gitlab-runner ``commands/builds_helper.go``, ``commands/multi.go``,
``helpers/prometheus/failures_collector.go``):

- ``gitlab_runner_jobs``: ``runner``, ``runner_name``, ``system_id``, ``state``, ``stage``,
  ``executor_stage``; one series per job state, plus an ``idle`` series of 0 per ``[[runners]]``
  entry, so the sum is every job the process holds, each holding one ``concurrent`` slot;
- ``gitlab_runner_jobs_total``: ``runner``, ``runner_name``, ``system_id``; created at the
  first job, so a fresh manager has none;
- ``gitlab_runner_failed_jobs_total``: ``runner``, ``runner_name``, ``failure_reason``,
  ``mode``; no ``system_id``;
- ``gitlab_runner_concurrent``: no label of its own (one per process);
- ``gitlab_runner_limit``: ``runner``, ``runner_name``, ``system_id`` per ``[[runners]]`` entry,
  0 = no limit. Its ``system_id`` is the config field, not the computed one the job metrics
  use, so the per-runner join is on ``runner`` (the short token), never ``system_id``.

Kubernetes signals come from kube-state-metrics (docs/metrics/policy/resourcequota-metrics.md,
docs/metrics/workload/pod-metrics.md). ``kube_pod_labels`` carries a pod label only if
kube-state-metrics allows it: run it with
``--metric-labels-allowlist=pods=[app.kubernetes.io/part-of,app.kubernetes.io/component]``
(see :data:`KSM_POD_LABELS`); ``GitLabRunnerPodLabelsNotExported`` fires while they are missing,
since the leaked-pod alert cannot see anything without them.

:func:`runner_rule_groups` returns the groups as plain data; :class:`RunnerAlerts` wraps them
in a :class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule`.

Long because each rule's PromQL sits beside the metric sources it relies on and the props document
every threshold (public API); the rules form one PrometheusRule, so splitting them would only
scatter one document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.monitoring.prometheus_rule import (
    PrometheusRule,
    PrometheusRuleProps,
    alert_rule as _alert,
    is_duration,
    promql_number as _num,
    short_duration as _human,
)
from constructs_lib.runners.labels import (
    JOB_POD_LABELS,
    MANAGER_LABELS,
    RUNNER_TYPE_LABEL,
    RUNNER_TYPES,
)
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "CONCURRENT_SATURATION",
    "KSM_POD_LABELS",
    "LIMIT_SATURATION",
    "METRICS",
    "RUNNER_TARGET_LABELS",
    "RUNNER_TYPE_TARGET",
    "RunnerAlerts",
    "RunnerAlertsProps",
    "runner_rule_groups",
]

RUNNER_TYPE_TARGET = "runner_type"
"""The target label holding a manager's runner type."""
RUNNER_TARGET_LABELS: Mapping[str, str] = {RUNNER_TYPE_LABEL: RUNNER_TYPE_TARGET}
"""``PodMonitorProps.relabel_pod_labels`` that give runner series the label these rules group by."""
KSM_POD_LABELS: tuple[str, ...] = tuple(sorted(JOB_POD_LABELS))
"""Pod labels kube-state-metrics must export in ``kube_pod_labels`` for the job-pod rules."""

CONCURRENT_SATURATION = "gitlab_runner:concurrent_saturation:ratio"
"""Recording: jobs a manager holds / its ``concurrent``."""
LIMIT_SATURATION = "gitlab_runner:limit_saturation:ratio"
"""Recording: jobs a ``[[runners]]`` entry holds / its ``limit``."""

_RUNNER_SRC = "gitlab-runner commands/builds_helper.go"
_KSM = "kube-state-metrics docs/metrics/"
METRICS: Mapping[str, str] = {
    "up": "Prometheus scrape health of each manager pod",
    "gitlab_runner_jobs": f"gauge, jobs held per state/stage; {_RUNNER_SRC}",
    "gitlab_runner_jobs_total": f"counter, jobs received; {_RUNNER_SRC}",
    "gitlab_runner_failed_jobs_total": "counter by failure_reason; gitlab-runner "
    "helpers/prometheus/failures_collector.go",
    "gitlab_runner_concurrent": "gauge, global concurrent; gitlab-runner commands/multi.go",
    "gitlab_runner_limit": "gauge, [[runners]] limit (0 = none); gitlab-runner commands/multi.go",
    "kube_resourcequota": f"labels resourcequota, resource, type=hard|used; {_KSM}policy/"
    "resourcequota-metrics.md",
    "kube_pod_created": f"unix time; {_KSM}workload/pod-metrics.md",
    "kube_pod_labels": f"label_<sanitized key> per allowed label; {_KSM}workload/pod-metrics.md",
    "kube_pod_status_phase": f"label phase; {_KSM}workload/pod-metrics.md",
}
"""Every metric the runner rules read -> its type and where it is defined."""

_FAILURE_REASON = re.compile(r"^[a-z][a-z_]*$")
_SCRAPE_JOB = re.compile(r"^[A-Za-z0-9_.:/-]+$")
_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")


def ksm_label(pod_label: str) -> str:
    """The ``kube_pod_labels`` label holding ``pod_label``: kube-state-metrics prefixes
    ``label_`` and turns every character outside ``[a-zA-Z0-9_]`` into ``_``."""
    return "label_" + _SANITIZE.sub("_", pod_label)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunnerAlertsProps:
    """What :func:`runner_rule_groups` watches and :class:`RunnerAlerts` applies.

    Attributes:
        name: PrometheusRule name (a DNS label).
        namespace: its namespace; the Prometheus CR's ``ruleNamespaceSelector`` must cover it.
        scrape_job: the ``job`` label of the managers' series: ``<namespace>/<PodMonitor
            name>``, i.e. :attr:`PodMonitor.job <constructs_lib.monitoring.pod_monitor.
            PodMonitor.job>`.
        leaked_pod_age_seconds: a job pod older than this is leaked: set it above the job-pod
            cleanup's age limit (and so above every job timeout), so the alert means the
            cleanup is not working.
        manager_namespace: where the manager pods run. Default ``"gitlab-runners"``.
        job_namespaces: where job pods run (quota and leaked-pod rules). Default
            ``("gitlab-runner-jobs", "gitlab-runner-dind")``.
        runner_types: the enabled runner types; each gets a "down" rule and a "no jobs"
            check. Default - every type in ``RUNNER_TYPES``.
        saturation_threshold: alert when the jobs a manager holds reach this share of its
            ``concurrent`` (or of a runner's ``limit``). Default ``0.9``.
        failure_ratio: alert when more than this share of a type's jobs fail. Default
            ``0.1``.
        failure_window: window of the failure ratio. Default ``"30m"``.
        failure_min_jobs: the failure alert needs at least this many jobs in the window, so
            one failure out of two jobs does not alert. Default ``10``.
        ignored_failure_reasons: ``failure_reason`` values that are not the fleet's fault:
            a failing script, a canceled job. Default ``("script_failure", "job_canceled")``.
        no_jobs_window: a type that received no job over this window gets an ``info`` alert.
            Default ``"24h"`` (shorter windows fire every night and weekend).
        quota_threshold: alert when a ResourceQuota's used/hard of any resource reaches this.
            Default ``0.9``.
        labels: metadata labels, e.g. the ``release`` label a kube-prometheus-stack
            ``ruleSelector`` picks rules up by. Default - none.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    scrape_job: str
    leaked_pod_age_seconds: int
    manager_namespace: str = "gitlab-runners"
    job_namespaces: Sequence[str] = ("gitlab-runner-jobs", "gitlab-runner-dind")
    runner_types: Sequence[str] = RUNNER_TYPES
    saturation_threshold: float = 0.9
    failure_ratio: float = 0.1
    failure_window: str = "30m"
    failure_min_jobs: int = 10
    ignored_failure_reasons: Sequence[str] = ("script_failure", "job_canceled")
    no_jobs_window: str = "24h"
    quota_threshold: float = 0.9
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


class RunnerAlerts(Construct):
    """The runner fleet's rules as one validated PrometheusRule.

    Creates a :class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule` (child id
    ``Rule``) with the groups of :func:`runner_rule_groups`.

    Attributes:
        rule: the :class:`PrometheusRule` holding them.

    Example:
        ```python
        from constructs_lib.monitoring.runner_alerts import RunnerAlerts, RunnerAlertsProps

        RunnerAlerts(
            stack,
            "RunnerAlerts",
            RunnerAlertsProps(
                name="gitlab-runners",
                namespace="gitlab-runners",
                scrape_job="gitlab-runners/gitlab-runner",
                leaked_pod_age_seconds=4 * 3600,
                runner_types=("docker", "nix"),
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: RunnerAlertsProps) -> None:
        super().__init__(scope, construct_id)
        self.rule = PrometheusRule(
            self,
            "Rule",
            PrometheusRuleProps(
                name=props.name,
                namespace=props.namespace,
                groups=runner_rule_groups(props),
                labels=props.labels,
                depends_on=props.depends_on,
            ),
        )


def runner_rule_groups(props: RunnerAlertsProps) -> list[dict[str, Any]]:
    """The runner rule groups: saturation recordings, runner alerts, Kubernetes alerts.

    Raises:
        PropsError: listing every invalid prop.
    """
    raise_if_problems("RunnerAlerts", _problems(props))
    return [
        {"name": "gitlab-runner-saturation", "rules": _saturation_records(props)},
        {"name": "gitlab-runner-managers", "rules": _manager_alerts(props)},
        {"name": "gitlab-runner-job-pods", "rules": _job_pod_alerts(props)},
    ]


# --- validation ---------------------------------------------------------------------------


def _problems(props: RunnerAlertsProps) -> list[str]:
    types = list(props.runner_types)
    problems = [
        check_dns_label("name", props.name),
        check_dns_label("namespace", props.namespace),
        check_dns_label("manager_namespace", props.manager_namespace),
        ""
        if _SCRAPE_JOB.match(props.scrape_job)
        else f"scrape_job: {props.scrape_job!r} is not a job label (e.g. gitlab-runners/"
        "gitlab-runner)",
        "" if props.job_namespaces else "job_namespaces: at least one namespace is required",
        *(check_dns_label("job_namespaces", ns) for ns in props.job_namespaces),
        "" if types else "runner_types: at least one type is required",
        *(
            f"runner_types: {t!r} is not a runner type (allowed: {', '.join(RUNNER_TYPES)})"
            for t in types
            if t not in RUNNER_TYPES
        ),
        "" if len(set(types)) == len(types) else f"runner_types: {types} lists a type twice",
        *_share("saturation_threshold", props.saturation_threshold, upper_inclusive=True),
        *_share("failure_ratio", props.failure_ratio, upper_inclusive=False),
        *_share("quota_threshold", props.quota_threshold, upper_inclusive=True),
        *_window("failure_window", props.failure_window),
        *_window("no_jobs_window", props.no_jobs_window),
        ""
        if props.failure_min_jobs >= 1
        else f"failure_min_jobs: {props.failure_min_jobs} must be at least 1",
        ""
        if props.leaked_pod_age_seconds > 0
        else f"leaked_pod_age_seconds: {props.leaked_pod_age_seconds} must be greater than 0",
    ]
    problems += [
        f"ignored_failure_reasons: {reason!r} is not a failure reason (e.g. script_failure)"
        for reason in props.ignored_failure_reasons
        if not _FAILURE_REASON.match(reason)
    ]
    return problems


def _share(prop: str, value: float, *, upper_inclusive: bool) -> list[str]:
    within = 0 < value <= 1 if upper_inclusive else 0 < value < 1
    upper = "<= 1" if upper_inclusive else "< 1"
    return [] if within else [f"{prop}: {value} must be > 0 and {upper}"]


def _window(prop: str, value: str) -> list[str]:
    if is_duration(value) and re.search(r"[1-9]", value):
        return []
    return [f"{prop}: {value!r} is not a non-zero Prometheus duration (e.g. 30m, 24h)"]


# --- selectors ------------------------------------------------------------------------------


def _selector(metric: str, *matchers: str) -> str:
    return f"{metric}{{{', '.join(m for m in matchers if m)}}}"


def _one_of(label: str, values: Sequence[str]) -> str:
    """``label="v"`` for one value, ``label=~"v1|v2"`` for several (values are DNS labels or
    runner types: no regex metacharacters)."""
    if len(values) == 1:
        return f'{label}="{values[0]}"'
    return f'{label}=~"{"|".join(values)}"'


def _runner(props: RunnerAlertsProps, metric: str, *matchers: str) -> str:
    """A manager metric as this fleet's PodMonitor scrapes it."""
    return _selector(
        metric, f'job="{props.scrape_job}"', f'namespace="{props.manager_namespace}"', *matchers
    )


def _types(props: RunnerAlertsProps) -> str:
    return _one_of(RUNNER_TYPE_TARGET, list(props.runner_types))


def _job_pods(props: RunnerAlertsProps, metric: str, *matchers: str) -> str:
    return _selector(metric, _one_of("namespace", list(props.job_namespaces)), *matchers)


# --- saturation recordings ------------------------------------------------------------------

_POD = "namespace, pod, runner_type"
_POD_RUNNER = "namespace, pod, runner_type, runner"


def _saturation_records(props: RunnerAlertsProps) -> list[dict[str, Any]]:
    jobs = _runner(props, "gitlab_runner_jobs")
    return [
        {
            "record": CONCURRENT_SATURATION,
            "expr": f"sum by ({_POD}) ({jobs})\n/ on ({_POD})\n"
            f"max by ({_POD}) ({_runner(props, 'gitlab_runner_concurrent')} > 0)",
        },
        {
            "record": LIMIT_SATURATION,
            "expr": f"sum by ({_POD_RUNNER}) ({jobs})\n/ on ({_POD_RUNNER})\n"
            f"max by ({_POD_RUNNER}) ({_runner(props, 'gitlab_runner_limit')} > 0)",
        },
    ]


# --- manager alerts -------------------------------------------------------------------------


def _manager_alerts(props: RunnerAlertsProps) -> list[dict[str, Any]]:
    ns = props.manager_namespace
    rules = [_down_alert(props, runner_type) for runner_type in props.runner_types]
    rules += [
        _failure_alert(props),
        _no_jobs_alert(props),
        _alert(
            "GitLabRunnerSaturated",
            f'{CONCURRENT_SATURATION}{{namespace="{ns}"}} >= {_num(props.saturation_threshold)}',
            for_="15m",
            severity="warning",
            summary="GitLab runner manager {{ $labels.pod }} ({{ $labels.runner_type }}) uses "
            "{{ $value | humanizePercentage }} of its concurrent job slots.",
            description="Manager pod {{ $labels.namespace }}/{{ $labels.pod }} holds jobs "
            f"(gitlab_runner_jobs, all states) in at least {_pct(props.saturation_threshold)} "
            "of its concurrent slots (gitlab_runner_concurrent), recorded as "
            f"{CONCURRENT_SATURATION}. New jobs of this type wait in GitLab's queue until a "
            "slot frees up.",
            runbook=f"kubectl -n {ns} top pod {{{{ $labels.pod }}}}; if the job namespace has "
            "quota left, raise the type's concurrent or its replicas; otherwise raise the "
            "quota first (see GitLabRunnerQuotaNearlyExhausted).",
        ),
        _alert(
            "GitLabRunnerLimitSaturated",
            f'{LIMIT_SATURATION}{{namespace="{ns}"}} >= {_num(props.saturation_threshold)}',
            for_="15m",
            severity="warning",
            summary="GitLab runner {{ $labels.runner }} on {{ $labels.pod }} uses "
            "{{ $value | humanizePercentage }} of its limit.",
            description="The jobs of [[runners]] entry {{ $labels.runner }} (short token) in "
            "manager pod {{ $labels.namespace }}/{{ $labels.pod }} are at least "
            f"{_pct(props.saturation_threshold)} of its limit (gitlab_runner_limit; entries "
            f"without a limit are left out), recorded as {LIMIT_SATURATION}.",
            runbook="Raise the runner's limit in its config.toml, or its concurrent if the "
            "limit is not the bottleneck.",
        ),
    ]
    return rules


def _down_alert(props: RunnerAlertsProps, runner_type: str) -> dict[str, Any]:
    # "or vector(0)" makes a type without any target count as down: absent() would lose
    # labels for an expression, and a missing series never fires.
    up = _runner(props, "up", f'{RUNNER_TYPE_TARGET}="{runner_type}"')
    ns = props.manager_namespace
    return _alert(
        "GitLabRunnerDown",
        f"(sum({up}) or vector(0)) == 0",
        for_="10m",
        severity="critical",
        labels={RUNNER_TYPE_TARGET: runner_type, "namespace": ns},
        summary=f"No GitLab runner manager of type {runner_type} is up.",
        description=f"No manager pod with {RUNNER_TYPE_LABEL}={runner_type} in {ns} answers "
        f"scrapes of job {props.scrape_job} (up == 0, or no such pod at all). Jobs tagged "
        f"for {runner_type} stay pending.",
        runbook=f"kubectl -n {ns} get pods -l {RUNNER_TYPE_LABEL}={runner_type}; kubectl -n "
        f"{ns} logs -l {RUNNER_TYPE_LABEL}={runner_type} --tail=100. 'token is not valid' or "
        "'runner is removed' means the runner token was revoked.",
    )


def _failure_alert(props: RunnerAlertsProps) -> dict[str, Any]:
    window = props.failure_window
    by = "sum by (namespace, runner_type)"
    reasons = (
        f'failure_reason!~"{"|".join(props.ignored_failure_reasons)}"'
        if props.ignored_failure_reasons
        else ""
    )
    failed = _runner(props, "gitlab_runner_failed_jobs_total", reasons)
    total = f"{by} (increase({_runner(props, 'gitlab_runner_jobs_total')}[{window}]))"
    ignored = ", ".join(props.ignored_failure_reasons) or "none"
    return _alert(
        "GitLabRunnerJobFailureRate",
        f"(\n  {by} (increase({failed}[{window}]))\n  /\n  {total}\n)\n"
        f"> {_num(props.failure_ratio)}\n"
        f"and on (namespace, runner_type)\n{total} >= {props.failure_min_jobs}",
        for_="15m",
        severity="warning",
        summary="{{ $value | humanizePercentage }} of {{ $labels.runner_type }} jobs failed "
        f"over {window}.",
        description="More than "
        f"{_pct(props.failure_ratio)} of the jobs {{{{ $labels.runner_type }}}} managers "
        f"received over the last {window} failed for reasons other than {ignored} "
        "(gitlab_runner_failed_jobs_total / gitlab_runner_jobs_total; alerts only with at "
        f"least {props.failure_min_jobs} jobs in the window).",
        runbook="sum by (failure_reason) (increase(gitlab_runner_failed_jobs_total"
        f'{{runner_type="{{{{ $labels.runner_type }}}}"}}[{window}])) shows why. '
        "runner_system_failure: read the manager logs and the job namespace events "
        "(image pulls, quota, scheduling).",
    )


def _no_jobs_alert(props: RunnerAlertsProps) -> dict[str, Any]:
    # gitlab_runner_jobs_total appears only at a manager's first job; gitlab_runner_concurrent
    # is always there, so "or" gives a type with managers but no job series a 0.
    window = props.no_jobs_window
    by = "sum by (namespace, runner_type)"
    total = _runner(props, "gitlab_runner_jobs_total", _types(props))
    concurrent = _runner(props, "gitlab_runner_concurrent", _types(props))
    return _alert(
        "GitLabRunnerNoJobsProcessed",
        f"(\n  {by} (increase({total}[{window}]))\n  or on (namespace, runner_type)\n"
        f"  0 * {by} ({concurrent})\n) == 0",
        for_="30m",
        # info: an idle type is often just an idle team (nights, weekends, rarely used
        # images); the signal is worth a look, not a page.
        severity="info",
        summary=f"GitLab runners of type {{{{ $labels.runner_type }}}} received no job in "
        f"{window}.",
        description="Managers of type {{ $labels.runner_type }} are up but received no job "
        f"over the last {window} (gitlab_runner_jobs_total). Either nobody ran jobs with "
        "its tags, or GitLab no longer gives it jobs: the runner was paused or deleted in "
        "GitLab, its tags changed, or job requests fail.",
        runbook="Check the runner in GitLab (paused? tags?) and the manager log for "
        "'request_job' errors: gitlab_runner_api_request_statuses_total{endpoint="
        '"request_job"} by status.',
    )


# --- job pods and quotas --------------------------------------------------------------------


def _job_pod_alerts(props: RunnerAlertsProps) -> list[dict[str, Any]]:
    used = _job_pods(props, "kube_resourcequota", 'type="used"')
    hard = _job_pods(props, "kube_resourcequota", 'type="hard"')
    quota_on = "namespace, resourcequota, resource"
    job_pod_matchers = [f'{ksm_label(k)}="{v}"' for k, v in sorted(JOB_POD_LABELS.items())]
    labels = _job_pods(props, "kube_pod_labels", *job_pod_matchers)
    created = _job_pods(props, "kube_pod_created")
    phase = _job_pods(props, "kube_pod_status_phase")
    age = props.leaked_pod_age_seconds
    manager_labels = _selector(
        "kube_pod_labels",
        f'namespace="{props.manager_namespace}"',
        *(f'{ksm_label(k)}="{v}"' for k, v in sorted(MANAGER_LABELS.items())),
    )
    allowlist = ",".join(KSM_POD_LABELS)
    return [
        _alert(
            "GitLabRunnerQuotaNearlyExhausted",
            f"{used}\n/ on ({quota_on})\n({hard} > 0)\n>= {_num(props.quota_threshold)}",
            for_="15m",
            severity="warning",
            summary="ResourceQuota {{ $labels.namespace }}/{{ $labels.resourcequota }} has "
            "{{ $value | humanizePercentage }} of {{ $labels.resource }} in use.",
            description="Job pods in {{ $labels.namespace }} use at least "
            f"{_pct(props.quota_threshold)} of the quota's {{{{ $labels.resource }}}} "
            "(kube_resourcequota used/hard, kube-state-metrics). At 100 % new job pods are "
            "rejected and their jobs fail.",
            runbook="kubectl -n {{ $labels.namespace }} describe resourcequota "
            "{{ $labels.resourcequota }}; look for leaked job pods, then raise the quota or "
            "lower the types' concurrent.",
        ),
        _alert(
            "GitLabRunnerLeakedJobPods",
            f"count by (namespace, phase) (\n  (time() - {created} > {age})\n"
            f"  * on (namespace, pod) group_left ()\n  {labels}\n"
            f"  * on (namespace, pod) group_left (phase)\n  ({phase} == 1)\n)",
            for_="15m",
            severity="warning",
            summary="{{ $value }} GitLab job pods in {{ $labels.namespace }} ({{ $labels.phase "
            f"}}}}) are older than {_human(age)}.",
            description="Pods with the job-pod labels in {{ $labels.namespace }} were created "
            f"more than {_human(age)} ago (kube_pod_created joined with kube_pod_labels and "
            "kube_pod_status_phase, kube-state-metrics). No job runs that long, so the runner "
            "or the cleanup CronJob failed to delete them; they hold quota.",
            runbook="kubectl -n {{ $labels.namespace }} get pods -l "
            f"{','.join(f'{k}={v}' for k, v in sorted(JOB_POD_LABELS.items()))} "
            "--sort-by=.metadata.creationTimestamp; check the cleanup CronJob's last runs.",
        ),
        _alert(
            "GitLabRunnerPodLabelsNotExported",
            f"absent({manager_labels})",
            for_="30m",
            severity="warning",
            summary="kube-state-metrics does not export the runner pod labels.",
            description=f"No kube_pod_labels series for the manager pods in "
            f"{props.manager_namespace} carries {', '.join(KSM_POD_LABELS)}: "
            "kube-state-metrics exports no pod label unless allowed, so "
            "GitLabRunnerLeakedJobPods cannot see any job pod (or no manager pod exists).",
            runbook=f"Run kube-state-metrics with --metric-labels-allowlist=pods=[{allowlist}] "
            "(kube-prometheus-stack: kube-state-metrics.metricLabelsAllowlist).",
        ),
    ]


# --- helpers --------------------------------------------------------------------------------


def _pct(share: float) -> str:
    return f"{_num(share * 100)} %"
