"""A Prometheus Operator ``PodMonitor`` (``monitoring.coreos.com/v1``), checked before apply.

The gitlab-runner chart can render its own monitors, but its ServiceMonitor is deprecated and
both render nothing unless ``metrics.enabled`` is set (shared/reference/charts.md §1.4); this
construct scrapes the manager pods' named metrics port directly, and copies chosen pod labels
onto every scraped series, so rules can group by them (e.g. ``attic-iac/runner-type`` becomes
``runner_type``).

What the operator does with a PodMonitor (prometheus-operator ``pkg/prometheus/promcfg.go``,
``generatePodMonitorConfig``): it keeps pods matching ``selector`` whose container port has the
name ``port`` and that are not Succeeded or Failed, sets the target labels ``namespace``,
``pod``, ``container``, ``endpoint`` (the port name) and ``job`` (``<namespace>/<name>`` unless
``jobLabel`` is set), then applies ``relabelings``. A pod label ``a.b/c-d`` is visible to
relabeling as ``__meta_kubernetes_pod_label_a_b_c_d`` (every character outside
``[a-zA-Z0-9_]`` becomes ``_``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.monitoring.prometheus_rule import API_VERSION, LABEL_NAME, is_duration
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["PodMonitor", "PodMonitorProps"]

KIND = "PodMonitor"

# Kubernetes IANA_SVC_NAME (a container port name): at most 15 characters, lowercase letters,
# digits and single dashes, at least one letter.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9])){0,14}$")
# A qualified label key: optional DNS-subdomain prefix and "/", then a name of at most 63.
_LABEL_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_KEY_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_PATH = re.compile(r"^/\S*$")
_META_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

# Target labels the operator sets itself; a relabeling writing one would hide where a series
# came from.
OPERATOR_TARGET_LABELS = frozenset({"namespace", "pod", "container", "endpoint", "job", "instance"})


def meta_label(pod_label: str) -> str:
    """The service-discovery label holding ``pod_label``'s value during relabeling."""
    return "__meta_kubernetes_pod_label_" + _META_LABEL_CHARS.sub("_", pod_label)


@dataclass(frozen=True, kw_only=True, slots=True)
class PodMonitorProps:
    """Props of :class:`PodMonitor`.

    Attributes:
        name: PodMonitor name (a DNS label).
        namespace: its namespace; only pods in this namespace are scraped.
        pod_labels: ``selector.matchLabels`` of the pods to scrape (at least one).
        port: name of the container port serving metrics (a name, not a number: the
            operator matches it against the port's name). Default ``"metrics"`` (the
            gitlab-runner chart's ``metrics.portName``).
        path: HTTP path of the metrics. Default ``"/metrics"``.
        interval: scrape interval (Prometheus duration, not zero). Default ``"30s"``.
        relabel_pod_labels: pod label key -> target label name: each scraped series gets the
            pod's value of that label, e.g. ``{"attic-iac/runner-type": "runner_type"}``.
            Default - none.
        extra_target_labels: fixed target label -> value added to every scraped series.
            Default - none.
        labels: metadata labels, e.g. the ``release`` label a kube-prometheus-stack
            ``podMonitorSelector`` picks monitors up by. Default - none.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    pod_labels: Mapping[str, str]
    port: str = "metrics"
    path: str = "/metrics"
    interval: str = "30s"
    relabel_pod_labels: Mapping[str, str] = field(default_factory=dict)
    extra_target_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()


class PodMonitor(Construct):
    """Scrapes one named port of the selected pods, with chosen pod labels as target labels.

    Creates one ``PodMonitor`` (child id ``Resource``); the Prometheus Operator's CRDs must be
    installed.

    Attributes:
        manifest: the object as applied (``apiVersion``, ``kind``, ``metadata``, ``spec``).
        resource: the :class:`CustomResource` holding it.
        job: the ``job`` label of every scraped series (``<namespace>/<name>``), for rules.

    Example:
        ```python
        from constructs_lib.monitoring.pod_monitor import PodMonitor, PodMonitorProps

        monitor = PodMonitor(
            stack,
            "RunnerMonitor",
            PodMonitorProps(
                name="gitlab-runner",
                namespace="gitlab-runners",
                pod_labels={"app.kubernetes.io/part-of": "gitlab-runners"},
                relabel_pod_labels={"attic-iac/runner-type": "runner_type"},
            ),
        )
        monitor.job  # "gitlab-runners/gitlab-runner", the job label of every series
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: PodMonitorProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("PodMonitor", _problems(props))
        metadata: dict[str, Any] = {"name": props.name, "namespace": props.namespace}
        if props.labels:
            metadata["labels"] = dict(props.labels)
        endpoint: dict[str, Any] = {
            "port": props.port,
            "path": props.path,
            "interval": props.interval,
        }
        relabelings = _relabelings(props)
        if relabelings:
            endpoint["relabelings"] = relabelings
        self.manifest: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {
                "selector": {"matchLabels": dict(props.pod_labels)},
                "podMetricsEndpoints": [endpoint],
            },
        }
        self.job = f"{props.namespace}/{props.name}"
        self.resource = CustomResource(
            self,
            "Resource",
            CustomResourceProps(manifest=self.manifest, depends_on=props.depends_on),
        )


def _relabelings(props: PodMonitorProps) -> list[dict[str, Any]]:
    # The default regex (.*) and replacement ($1) copy the value; an absent pod label gives an
    # empty value, which Prometheus treats as no label.
    copied = [
        {"action": "replace", "sourceLabels": [meta_label(key)], "targetLabel": target}
        for key, target in sorted(props.relabel_pod_labels.items())
    ]
    fixed = [
        {"action": "replace", "targetLabel": target, "replacement": value}
        for target, value in sorted(props.extra_target_labels.items())
    ]
    return copied + fixed


# --- validation ---------------------------------------------------------------------------


def _problems(props: PodMonitorProps) -> list[str]:
    problems = [
        check_dns_label("name", props.name),
        check_dns_label("namespace", props.namespace),
        _port_problem(props.port),
        ""
        if _PATH.match(props.path)
        else f"path: {props.path!r} must start with '/' and contain no spaces",
        ""
        if is_duration(props.interval) and re.search(r"[1-9]", props.interval)
        else f"interval: {props.interval!r} is not a non-zero Prometheus duration (e.g. 30s, 1m)",
        "" if props.pod_labels else "pod_labels: at least one label is required",
        *_k8s_label_problems("pod_labels", props.pod_labels),
        *_k8s_label_problems("labels", props.labels),
        *_target_label_problems(props),
    ]
    problems += [
        f"relabel_pod_labels[{key}]: not a Kubernetes label key"
        for key in props.relabel_pod_labels
        if not _is_label_key(key)
    ]
    problems += [
        f"extra_target_labels[{target}]: {value!r} must not contain '$' (relabeling would "
        "expand it)"
        for target, value in props.extra_target_labels.items()
        if "$" in value
    ]
    return problems


def _port_problem(port: str) -> str:
    if port.isdigit():
        return (
            f"port: {port!r} is a number; give the container port's name (the operator "
            "matches names; the gitlab-runner chart names it 'metrics')"
        )
    if _PORT_NAME.match(port):
        return ""
    return (
        f"port: {port!r} is not a container port name (at most 15 lowercase letters, digits "
        "and single dashes, with at least one letter)"
    )


def _target_label_problems(props: PodMonitorProps) -> Iterable[str]:
    targets = [*props.relabel_pod_labels.values(), *props.extra_target_labels]
    for target in targets:
        if not LABEL_NAME.match(target) or target.startswith("__"):
            yield (
                f"target label {target!r}: not a Prometheus label name (allowed: "
                "[a-zA-Z_][a-zA-Z0-9_]*, not starting with '__')"
            )
        elif target in OPERATOR_TARGET_LABELS:
            yield (
                f"target label {target!r}: the operator sets it "
                f"({', '.join(sorted(OPERATOR_TARGET_LABELS))}); choose another name"
            )
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        yield f"target labels: {duplicates} written more than once"


def _k8s_label_problems(prop: str, labels: Mapping[str, str]) -> Iterable[str]:
    for key, value in labels.items():
        if not _is_label_key(key):
            yield f"{prop}: {key!r} is not a Kubernetes label key"
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            yield f"{prop}[{key}]: {value!r} is not a Kubernetes label value"


def _is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and not _LABEL_KEY_PREFIX.match(prefix):
        return False
    return _LABEL_KEY_NAME.match(name) is not None
