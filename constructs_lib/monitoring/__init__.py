"""Prometheus Operator rules: a validated ``PrometheusRule`` construct and the Attic SLO rules.

:mod:`~constructs_lib.monitoring.prometheus_rule` holds the construct;
:mod:`~constructs_lib.monitoring.attic_slo` builds the Attic rule groups as plain data.
"""

__all__ = ["attic_slo", "attic_slo_props", "pod_monitor", "prometheus_rule", "runner_alerts"]
