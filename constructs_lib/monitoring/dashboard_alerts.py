"""Prometheus rules for the runner dashboard: no pod answers scrapes, a data source has failed
for ten minutes, drift between the config and the fleet has stayed too long.

The series come from the app's second listener (``/metrics`` on 9090), scraped by a
:class:`~constructs_lib.monitoring.pod_monitor.PodMonitor`; each carries the target labels
``job``, ``namespace`` and ``pod``. The app's own metrics (its settings contract):

- ``attic_iac_dashboard_source_up{source}``: 1 while the source (gitlab, kubernetes,
  prometheus) answers, 0 while it fails;
- ``attic_iac_dashboard_drift_items{environment, kind}``: differences the drift check found.

:func:`dashboard_rule_groups` returns the groups as data; :class:`DashboardAlerts` applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.monitoring.prometheus_rule import (
    PrometheusRule,
    PrometheusRuleProps,
    alert_rule,
    is_duration,
)
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "DRIFT_ITEMS",
    "METRICS",
    "SOURCE_UP",
    "DashboardAlerts",
    "DashboardAlertsProps",
    "dashboard_rule_groups",
]

SOURCE_UP = "attic_iac_dashboard_source_up"
"""The app's gauge per data source: 1 while it answers, 0 while it fails."""
DRIFT_ITEMS = "attic_iac_dashboard_drift_items"
"""The app's gauge of the differences its drift check found, per environment and kind."""
METRICS: Mapping[str, str] = {
    "up": "Prometheus scrape health of each dashboard pod",
    SOURCE_UP: "gauge {source}: 1 answering, 0 failing (the dashboard's /metrics)",
    DRIFT_ITEMS: "gauge {environment, kind}: drift found by the dashboard's check",
}
"""Every series the rules read, with what it means."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DashboardAlertsProps:
    """What :func:`dashboard_rule_groups` watches and :class:`DashboardAlerts` applies.

    Attributes:
        name: PrometheusRule name (a DNS label).
        namespace: its namespace (the dashboard's).
        scrape_job: the ``job`` label of the dashboard's series (``<namespace>/<PodMonitor>``).
        drift_for: how long drift may persist before it alerts (Prometheus duration).
            Default ``"2h"``.
        source_failing_for: how long a data source may fail before it alerts. Default
            ``"10m"``.
        down_for: how long no pod may answer scrapes. Default ``"5m"``.
        labels: metadata labels (the Prometheus' ``ruleSelector``). Default - none.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    scrape_job: str
    drift_for: str = "2h"
    source_failing_for: str = "10m"
    down_for: str = "5m"
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


def dashboard_rule_groups(props: DashboardAlertsProps) -> list[dict[str, Any]]:
    """The dashboard's rule group (``runner-dashboard``), as plain data; the props are not
    validated here (:class:`DashboardAlerts` validates them)."""
    job = f'job="{props.scrape_job}"'
    ns = props.namespace
    return [
        {
            "name": "runner-dashboard",
            "rules": [
                alert_rule(
                    "RunnerDashboardDown",
                    # "or vector(0)": no target at all (no pod, a broken PodMonitor) is down too.
                    f"(sum(up{{{job}}}) or vector(0)) == 0",
                    for_=props.down_for,
                    severity="warning",
                    labels={"namespace": ns},
                    summary="The runner dashboard is down.",
                    description=f"No dashboard pod in {ns} answers scrapes of job "
                    f"{props.scrape_job} (up == 0, or no such pod). CI keeps running; only "
                    "the view of it is gone.",
                    runbook=f"kubectl -n {ns} get pods,events; kubectl -n {ns} describe "
                    f"deployments; kubectl -n {ns} logs <pod> --previous --tail=100",
                ),
                alert_rule(
                    "RunnerDashboardSourceFailing",
                    f"{SOURCE_UP}{{{job}}} == 0",
                    for_=props.source_failing_for,
                    severity="warning",
                    summary="The runner dashboard cannot read {{ $labels.source }}.",
                    description="Dashboard pod {{ $labels.pod }} has failed to read "
                    f"{{{{ $labels.source }}}} for {props.source_failing_for} ({SOURCE_UP}). "
                    "Its panels show the last good data, marked stale.",
                    runbook=f"kubectl -n {ns} logs {{{{ $labels.pod }}}} | grep "
                    "{{ $labels.source }}: gitlab (read token expired or revoked?), kubernetes "
                    "(RBAC, the API server egress), prometheus (URL, egress).",
                ),
                alert_rule(
                    "RunnerDashboardDriftPersists",
                    f"max by (environment, kind) ({DRIFT_ITEMS}{{{job}}}) > 0",
                    for_=props.drift_for,
                    severity="warning",
                    summary="{{ $value }} {{ $labels.kind }} items of {{ $labels.environment }} "
                    f"differ from the config for more than {props.drift_for}.",
                    description="The dashboard's drift check has found differences between "
                    "organization.yaml and the running fleet of {{ $labels.environment }} "
                    f"({DRIFT_ITEMS}) for {props.drift_for}: an apply failed or did not run, "
                    "or someone changed the fleet by hand.",
                    runbook="Open the dashboard's drift page for the environment; re-run the "
                    "environment's plan and apply jobs, or bring the config in line.",
                ),
            ],
        }
    ]


class DashboardAlerts(Construct):
    """The dashboard's PrometheusRule.

    Creates a :class:`~constructs_lib.monitoring.prometheus_rule.PrometheusRule` (child id
    ``Rule``) with the group of :func:`dashboard_rule_groups`: ``RunnerDashboardDown``,
    ``RunnerDashboardSourceFailing`` and ``RunnerDashboardDriftPersists``, all ``warning``.

    Attributes:
        groups: the rule groups applied.

    Example:
        ```python
        from constructs_lib.monitoring.dashboard_alerts import (
            DashboardAlerts,
            DashboardAlertsProps,
        )

        DashboardAlerts(
            stack,
            "DashboardAlerts",
            DashboardAlertsProps(
                name="runner-dashboard",
                namespace="runner-dashboard",
                scrape_job="runner-dashboard/runner-dashboard",
                drift_for="4h",
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: DashboardAlertsProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "DashboardAlerts",
            [
                check_dns_label("name", props.name),
                *(
                    f"{key}: {value!r} is not a Prometheus duration (e.g. 10m, 2h)"
                    for key, value in (
                        ("drift_for", props.drift_for),
                        ("source_failing_for", props.source_failing_for),
                        ("down_for", props.down_for),
                    )
                    if not is_duration(value)
                ),
                "" if props.scrape_job else "scrape_job: required",
            ],
        )
        self.groups = dashboard_rule_groups(props)
        PrometheusRule(
            self,
            "Rule",
            PrometheusRuleProps(
                name=props.name,
                namespace=props.namespace,
                groups=self.groups,
                labels=props.labels,
                depends_on=props.depends_on,
            ),
        )
