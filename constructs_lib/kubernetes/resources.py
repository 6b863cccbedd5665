"""Requests and limits as a value object, so every workload states both."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ComputeResources"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ComputeResources:
    """Container requests and limits in Kubernetes quantity syntax.

    Attributes:
        cpu_request: guaranteed CPU, e.g. ``"100m"``.
        memory_request: guaranteed memory, e.g. ``"128Mi"``.
        cpu_limit: CPU ceiling.
        memory_limit: memory ceiling; the container is OOM-killed above it.
    """

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def to_values(self) -> dict[str, dict[str, str]]:
        """The ``resources`` block as Helm charts and pod specs spell it."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }
