"""Kubernetes building blocks with secure defaults."""

__all__ = [
    "custom_resource",
    "ingress_allow_policy",
    "namespace_budget",
    "rate_limit",
    "resources",
    "secure_namespace",
    "traffic_policy",
    "web_ingress",
]
