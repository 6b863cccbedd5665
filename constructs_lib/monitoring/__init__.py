"""Prometheus Operator rules: a validated ``PrometheusRule`` construct, the Attic SLO rules and
the alerts of the runner fleet and the runner dashboard.

:mod:`~constructs_lib.monitoring.prometheus_rule` holds the construct;
:mod:`~constructs_lib.monitoring.attic_slo` builds the Attic rule groups as plain data;
:mod:`~constructs_lib.monitoring.runner_alerts` and
:mod:`~constructs_lib.monitoring.dashboard_alerts` apply the runners' and the dashboard's.
"""

__all__ = [
    "attic_slo",
    "attic_slo_props",
    "dashboard_alerts",
    "pod_monitor",
    "prometheus_rule",
    "runner_alerts",
]
