"""Kubernetes API objects to the dashboard's records, and the runner labels they carry.

The labels are copies of ``constructs_lib.runners.labels`` (the dashboard may not import the
construct library); tests/dashboard/test_sources_kubernetes.py holds them equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashboard.model import Deployment, Event, Hpa, Pod
from dashboard.sources.times import parse_time

PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF = "gitlab-runners"
RUNNER_TYPE_LABEL = "attic-iac/runner-type"
MANAGER_LABELS = {PART_OF_LABEL: PART_OF, COMPONENT_LABEL: "runner-manager"}
JOB_POD_LABELS = {PART_OF_LABEL: PART_OF, COMPONENT_LABEL: "ci-job"}
# Only our own annotations are kept (drift reads the stacks' stamp); others, such as kubectl's
# last-applied-configuration, can be large and say nothing the dashboard shows.
OWN_ANNOTATIONS = "attic-iac.io/"


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def pod(obj: Mapping[str, Any]) -> Pod:
    meta, status = obj["metadata"], obj.get("status") or {}
    labels = _labels(obj)
    conditions = status.get("conditions") or []
    return Pod(
        namespace=meta["namespace"],
        name=meta["name"],
        runner_type=labels.get(RUNNER_TYPE_LABEL),
        component=labels.get(COMPONENT_LABEL),
        phase=str(status.get("phase") or "Unknown"),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        node=(obj.get("spec") or {}).get("nodeName"),
        started_at=parse_time(status.get("startTime")),
    )


def deployment(obj: Mapping[str, Any]) -> Deployment:
    """A Deployment; its runner type comes from its own labels or, as the gitlab-runner chart
    puts ``podLabels`` only there, from its pod template's."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    annotations = meta.get("annotations") or {}
    return Deployment(
        namespace=meta["namespace"],
        name=meta["name"],
        runner_type=_labels(obj).get(RUNNER_TYPE_LABEL) or template.get(RUNNER_TYPE_LABEL),
        replicas=_int(spec.get("replicas"), 1),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        updated=_int(status.get("updatedReplicas")),
        labels={str(k): str(v) for k, v in _labels(obj).items()},
        annotations={
            str(k): str(v) for k, v in annotations.items() if str(k).startswith(OWN_ANNOTATIONS)
        },
        images=tuple(str(c["image"]) for c in containers if c.get("image")),
    )


def hpa(obj: Mapping[str, Any]) -> Hpa:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return Hpa(
        namespace=meta["namespace"],
        name=meta["name"],
        current=_int(status.get("currentReplicas")),
        desired=_int(status.get("desiredReplicas")),
        min=_int(spec.get("minReplicas"), 1),
        max=_int(spec.get("maxReplicas")),
        target=f"{ref.get('kind', '')}/{ref.get('name', '')}",
    )


def event(obj: Mapping[str, Any]) -> Event | None:
    """A core/v1 Event (old style with count and lastTimestamp, or new style with series and
    eventTime); None if it says nothing about when."""
    meta, involved = obj["metadata"], obj.get("involvedObject") or {}
    series = obj.get("series") or {}
    last_seen = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or parse_time(obj.get("eventTime"))
        or parse_time(meta.get("creationTimestamp"))
    )
    if last_seen is None:
        return None
    return Event(
        namespace=meta["namespace"],
        kind=str(involved.get("kind", "")),
        name=str(involved.get("name", "")),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or ""),
        count=_int(obj.get("count")) or _int(series.get("count")) or 1,
        last_seen=last_seen,
    )
