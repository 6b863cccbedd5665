"""Kubernetes objects as the API server returns them (the fields the dashboard reads and
their neighbours), for the fake API's state: tests and the demo build their fleet with these."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def timestamp(when: datetime) -> str:
    """Kubernetes' time format: RFC 3339 in UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(namespace: str, name: str, labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels or {})}


def pod(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    node: str | None = "node-1",
    started_at: datetime | None = None,
    image: str = "registry.gitlab.com/gitlab-org/gitlab-runner:v18.6.1",
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True" if node else "False"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ],
    }
    if started_at is not None:
        status["startTime"] = timestamp(started_at)
        status["containerStatuses"] = [
            {"name": "main", "ready": ready, "restartCount": 0, "image": image}
        ]
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": image}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": _meta(namespace, name, labels), "spec": spec, "status": status}


def deployment(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    pod_labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    image: str = "example",
    replicas: int = 1,
    ready: int = 1,
    available: int | None = None,
    updated: int | None = None,
) -> dict[str, Any]:
    """A Deployment; the API leaves out status counts that are 0, and so does this."""
    counts = {
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready if available is None else available,
        "updatedReplicas": replicas if updated is None else updated,
    }
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}
    status["observedGeneration"] = 1
    selector = {"app": name}
    return {
        "metadata": {
            **_meta(namespace, name, labels),
            "generation": 1,
            **({"annotations": dict(annotations)} if annotations else {}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **dict(pod_labels or {})}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
        "status": status,
    }


def replicaset(
    namespace: str, name: str, *, deployment_name: str, replicas: int, ready: int
) -> dict[str, Any]:
    meta = _meta(namespace, name, {"app": deployment_name})
    meta["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name}
    ]
    status = {"replicas": replicas, **({"readyReplicas": ready} if ready else {})}
    return {"metadata": meta, "spec": {"replicas": replicas}, "status": status}


def hpa(
    namespace: str,
    name: str,
    *,
    target: str,
    minimum: int,
    maximum: int,
    current: int,
    desired: int,
    cpu_utilization: int = 70,
) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler scaling Deployment ``target`` on CPU."""
    return {
        "metadata": _meta(namespace, name, None),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_utilization},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": current,
            "desiredReplicas": desired,
            "conditions": [
                {
                    "type": "ScalingLimited",
                    "status": "True" if desired >= maximum else "False",
                }
            ],
        },
    }


def event(
    namespace: str,
    name: str,
    *,
    kind: str,
    object_name: str,
    reason: str,
    message: str,
    last_seen: datetime,
    count: int = 1,
    type_: str = "Warning",
) -> dict[str, Any]:
    """A core/v1 Event about ``kind``/``object_name``."""
    return {
        "metadata": _meta(namespace, name, None),
        "involvedObject": {"kind": kind, "name": object_name, "namespace": namespace},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": timestamp(last_seen),
        "lastTimestamp": timestamp(last_seen),
        "source": {"component": "kubelet"},
        "reportingComponent": "kubelet",
        "eventTime": None,
    }


def configmap(
    namespace: str,
    name: str,
    data: Mapping[str, str],
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {"metadata": _meta(namespace, name, labels), "data": dict(data)}
