"""One gitlab-runner manager (the official chart, pinned) for one runner type.

The manager only polls GitLab and drives job pods through the Kubernetes API; the jobs run
in another namespace, under that namespace's Pod Security level, quota and policies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.helm.pinned_release import PinnedHelmRelease, PinnedHelmReleaseProps
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.runners.labels import (
    DESIRED_ANNOTATION,
    MANAGER_LABELS,
    RUNNER_TYPE_LABEL,
    RUNNER_TYPES,
)
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import GITLAB_RUNNER_CHART, GITLAB_RUNNER_IMAGE, ImagePin

__all__ = [
    "METRICS_PORT",
    "METRICS_PORT_NAME",
    "RUNNER_GID",
    "RUNNER_UID",
    "GitLabRunner",
    "GitLabRunnerProps",
]

METRICS_PORT = 9252
"""The manager's metrics port."""
METRICS_PORT_NAME = "metrics"
"""The metrics port's name, which a PodMonitor names."""
RUNNER_UID = 100
"""The manager's user: the alpine runner image's (the chart's default)."""
RUNNER_GID = 65533
"""The manager's group: the alpine runner image's (the chart's default)."""

# What the Kubernetes executor needs in the job namespace (runner docs, "Configure runner API
# permissions"); the chart grants '*' on the core group when the list is empty.
_JOB_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "delete", "get", "list", "watch"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods/attach", "pods/exec"],
        "verbs": ["create", "delete", "get", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "get", "update"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
)
_NAMESPACE_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "delete"]}


@dataclass(frozen=True, kw_only=True, slots=True)
class GitLabRunnerProps:
    """Props of :class:`GitLabRunner`.

    Attributes:
        name: Helm release name (also the Deployment's name).
        namespace: the managers' namespace (it must exist).
        runner_type: one of :data:`RUNNER_TYPES`; labels the manager pods.
        job_namespace: where job pods run; the chart's Role is created there.
        gitlab_url: GitLab base URL.
        token_secret: Secret with key ``runner-token`` (a ``glrt-`` token).
        runner_config: ``runners.config`` TOML (see :mod:`runner_toml`).
        concurrent: jobs one manager runs at once.
        check_interval: seconds between polls of GitLab. Default 3.
        replicas: manager pods; more than one adds a PodDisruptionBudget. Default 1.
        resources: manager requests/limits. Default 100m/128Mi, 1/512Mi.
        node_selector: manager node selector. Default - none.
        tolerations: manager tolerations, as Kubernetes spells them. Default - none.
        priority_class: manager PriorityClass. Default ``None``.
        namespace_per_job: jobs get their own namespaces: the manager then needs to create
            and delete namespaces cluster-wide. Default ``False``.
        cache_secret: Secret with ``accesskey``/``secretkey`` for the S3 cache.
            Default ``None``.
        service_account_annotations: e.g. a workload-identity role. Default - none.
        image: manager image. Default the pinned ``GITLAB_RUNNER_IMAGE``.
        depends_on: resources that must exist first (Secrets, namespaces). Default - none.
    """

    name: str
    namespace: str
    runner_type: str
    job_namespace: str
    gitlab_url: str
    token_secret: str
    runner_config: str
    concurrent: int
    check_interval: int = 3
    replicas: int = 1
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
        )
    )
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    priority_class: str | None = None
    namespace_per_job: bool = False
    cache_secret: str | None = None
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    image: ImagePin = GITLAB_RUNNER_IMAGE
    depends_on: Sequence[ITerraformDependable] = ()


class GitLabRunner(Construct):
    """A hardened gitlab-runner manager with least-privilege RBAC and metrics on.

    Creates the gitlab-runner chart's release (child id ``Release``) in ``namespace``: a
    non-root, read-only manager Deployment with metrics on :data:`METRICS_PORT`, and the chart's
    Role in ``job_namespace`` limited to what the Kubernetes executor needs (plus creating and
    deleting namespaces with ``namespace_per_job``). The Deployment carries
    :data:`~constructs_lib.runners.labels.DESIRED_ANNOTATION`: JSON of the chart, image,
    ``concurrent``, job namespace and runner type it was declared with. The token Secret must
    exist; make it with :class:`~constructs_lib.runners.runner_token.GitLabRunnerToken` or
    yourself.

    Attributes:
        pod_labels: labels of the manager pods (for NetworkPolicies and the PodMonitor).
        release: the ``helm_release`` resource.

    Example:
        ```python
        from constructs_lib.kubernetes.resources import ComputeResources
        from constructs_lib.runners.gitlab_runner import GitLabRunner, GitLabRunnerProps
        from constructs_lib.runners.runner_toml import RunnerTomlProps, render_runner_config

        small = ComputeResources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
        )
        GitLabRunner(
            stack,
            "DockerRunner",
            GitLabRunnerProps(
                name="runner-docker",
                namespace="gitlab-runners",
                runner_type="docker",
                job_namespace="ci-docker",
                gitlab_url="https://gitlab.example.com",
                token_secret="runner-docker-token",
                runner_config=render_runner_config(
                    RunnerTomlProps(
                        name="docker",
                        runner_type="docker",
                        job_namespace="ci-docker",
                        image="docker.io/library/alpine:3.23",
                        limit=8,
                        build=small,
                        helper=small,
                        service=small,
                    )
                ),
                concurrent=8,
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: GitLabRunnerProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "GitLabRunner",
            [
                check_dns_label("name", props.name),
                check_dns_label("namespace", props.namespace),
                check_dns_label("job_namespace", props.job_namespace),
                check_dns_label("token_secret", props.token_secret),
                ""
                if props.runner_type in RUNNER_TYPES
                else f"runner_type: {props.runner_type!r} is not one of {', '.join(RUNNER_TYPES)}",
                ""
                if props.gitlab_url.startswith("https://")
                else f"gitlab_url: must be https:// (got {props.gitlab_url!r})",
                "" if props.concurrent >= 1 else f"concurrent: at least 1 ({props.concurrent})",
                "" if props.replicas >= 1 else f"replicas: at least 1 ({props.replicas})",
                "" if "[[runners]]" in props.runner_config else "runner_config: no [[runners]]",
            ],
        )
        self.pod_labels = {**MANAGER_LABELS, RUNNER_TYPE_LABEL: props.runner_type}
        self.release = PinnedHelmRelease(
            self,
            "Release",
            PinnedHelmReleaseProps(
                name=props.name,
                namespace=props.namespace,
                chart=GITLAB_RUNNER_CHART,
                values=runner_values(props, self.pod_labels),
                depends_on=props.depends_on,
            ),
        ).release


def desired_stamp(props: GitLabRunnerProps) -> str:
    """What this manager is declared with, as JSON for :data:`DESIRED_ANNOTATION`: ``chart``
    in the form of the chart's own ``chart`` label, so the dashboard compares them as text."""
    chart = f"{GITLAB_RUNNER_CHART.chart}-{GITLAB_RUNNER_CHART.version}"
    return json.dumps(
        {
            "chart": chart,
            "concurrent": props.concurrent,
            "image": props.image.ref,
            "job_namespace": props.job_namespace,
            "runner_type": props.runner_type,
        },
        sort_keys=True,
    )


def runner_values(props: GitLabRunnerProps, pod_labels: Mapping[str, str]) -> dict[str, Any]:
    """Helm values of the chart; no secret among them (the token is in ``runners.secret``)."""
    rules = [*_JOB_RULES, *([_NAMESPACE_RULE] if props.namespace_per_job else [])]
    runners: dict[str, Any] = {
        "config": props.runner_config,
        "executor": "kubernetes",
        "jobNamespace": props.job_namespace,
        "secret": props.token_secret,
    }
    if props.cache_secret:
        runners["cache"] = {"secretName": props.cache_secret}
    values: dict[str, Any] = {
        "image": {
            "registry": props.image.repository.split("/", 1)[0],
            "image": props.image.repository.split("/", 1)[1],
            "tag": props.image.tag_ref,
        },
        "imagePullPolicy": "IfNotPresent",
        "gitlabUrl": props.gitlab_url.rstrip("/") + "/",
        "unregisterRunners": True,
        "concurrent": props.concurrent,
        "checkInterval": props.check_interval,
        "logFormat": "json",
        "logLevel": "info",
        # A stopping manager waits for its running jobs, up to the grace period.
        "terminationGracePeriodSeconds": 3600,
        "replicas": props.replicas,
        "deploymentAnnotations": {DESIRED_ANNOTATION: desired_stamp(props)},
        "rbac": {
            "create": True,
            "clusterWideAccess": props.namespace_per_job,
            "rules": rules,
        },
        "serviceAccount": {
            "create": True,
            "annotations": dict(props.service_account_annotations),
        },
        "metrics": {"enabled": True, "port": METRICS_PORT, "portName": METRICS_PORT_NAME},
        "podLabels": dict(pod_labels),
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_GID,
            "fsGroup": RUNNER_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        # The chart keeps config and secrets in its own emptyDirs; /tmp is the only other
        # path the manager writes.
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": props.resources.to_values(),
        "runners": runners,
    }
    if props.replicas > 1:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
    if props.node_selector:
        values["nodeSelector"] = dict(props.node_selector)
    if props.tolerations:
        values["tolerations"] = [dict(t) for t in props.tolerations]
    if props.priority_class:
        values["priorityClassName"] = props.priority_class
    return values
