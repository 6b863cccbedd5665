"""The ``[[runners]]`` entry of one runner type, built as data and rendered with tomli-w.

The chart passes ``runners.config`` through Helm's ``tpl`` and merges it into the config that
``gitlab-runner register`` writes, so it holds everything but the URL and the token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import tomli_w

from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.runners.labels import JOB_POD_LABELS, RUNNER_TYPE_LABEL, RUNNER_TYPES
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "FEATURE_FLAGS",
    "POD_SPEC_FLAG",
    "Effect",
    "JobToleration",
    "RunnerTomlProps",
    "S3Cache",
    "render_runner_config",
    "runner_config",
]

FEATURE_FLAGS = {
    "FF_USE_POD_ACTIVE_DEADLINE_SECONDS": True,
    "FF_PRINT_POD_EVENTS": True,
}
"""Feature flags every runner gets: job pods are deleted when their job times out
(``activeDeadlineSeconds``), even if the manager that started them is gone; events of a pod
that will not start land in the job log.
"""
_CEILINGS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")
_PATCH_TYPES = ("strategic", "merge", "json")
POD_SPEC_FLAG = "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"
"""``pod_spec`` patches apply only with this flag (executors/kubernetes/kubernetes.go)."""
Effect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""]
"""A taint effect a :class:`JobToleration` tolerates; ``""`` is every effect."""


@dataclass(frozen=True, kw_only=True, slots=True)
class JobToleration:
    """A toleration for job pods (gitlab-runner's ``node_tolerations`` table).

    Attributes:
        key: taint key.
        value: taint value; ``None`` tolerates any value (operator Exists). Default ``None``.
        effect: taint effect; ``""`` tolerates every effect. Default ``"NoSchedule"``.
    """

    key: str
    value: str | None = None
    effect: Effect = "NoSchedule"


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Cache:
    """``[runners.cache]`` on an S3-compatible bucket; credentials come from the chart's
    ``runners.cache.secretName`` (environment) or the manager's workload identity.

    Attributes:
        server_address: ``host[:port]``, no scheme.
        bucket: bucket name.
        bucket_location: region. Default ``"us-east-1"``.
        insecure: plain http. Default ``False``.
        path: key prefix. Default ``"gitlab-runner"``.
        shared: one cache for every manager of the runner. Default ``True``.
        authentication: ``"access-key"`` (keys from the Secret) or ``"iam"`` (workload
            identity). Default ``"access-key"``.
    """

    server_address: str
    bucket: str
    bucket_location: str = "us-east-1"
    insecure: bool = False
    path: str = "gitlab-runner"
    shared: bool = True
    authentication: Literal["access-key", "iam"] = "access-key"


@dataclass(frozen=True, kw_only=True, slots=True)
class RunnerTomlProps:
    """Props of :func:`runner_config`.

    Attributes:
        name: runner name shown in GitLab.
        runner_type: one of :data:`RUNNER_TYPES`; labels the job pods.
        job_namespace: namespace of the job pods.
        image: default job image (pinned).
        limit: jobs this runner runs at once (the manager's ``concurrent``).
        build: build container requests/limits.
        helper: helper container requests/limits.
        service: requests/limits of each service container.
        ceilings: how far jobs may raise ``cpu_request``, ``memory_request``, ``cpu_limit``,
            ``memory_limit`` with KUBERNETES_* variables; a missing key forbids it.
            Default - no overrides.
        privileged_services: run service containers privileged (dind's daemon); build and
            helper containers never are. Default ``False``.
        services: service containers every job gets, as ``{"name", "alias", ...}`` tables.
            Default - none.
        poll_timeout: seconds a job waits for its pod to run. Default 600.
        node_selector: job pod node selector. Default - none.
        tolerations: job pod tolerations. Default - none.
        priority_class: job pod PriorityClass. Default ``None``.
        allowed_images: images jobs may use; empty allows any. Default - any.
        namespace_per_job: one namespace per job. Default ``False``.
        environment: ``KEY=value`` entries for every job. Default - none.
        pre_build_script: shell run before each job's script, in the same shell.
            Default ``None``.
        volumes: ``[runners.kubernetes.volumes]`` tables by kind. Default - none.
        pod_spec: ``[[runners.kubernetes.pod_spec]]`` patches (``name``, ``patch``,
            ``patch_type``); they apply only with FF_USE_ADVANCED_POD_SPEC_CONFIGURATION in
            ``feature_flags``. Default - none.
        feature_flags: flags set on top of :data:`FEATURE_FLAGS`. Default - none.
        cache: the distributed cache. Default ``None`` (no cache).
    """

    name: str
    runner_type: str
    job_namespace: str
    image: str
    limit: int
    build: ComputeResources
    helper: ComputeResources
    service: ComputeResources
    ceilings: Mapping[str, str] = field(default_factory=dict)
    privileged_services: bool = False
    services: Sequence[Mapping[str, Any]] = ()
    poll_timeout: int = 600
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[JobToleration] = ()
    priority_class: str | None = None
    allowed_images: Sequence[str] = ()
    namespace_per_job: bool = False
    environment: Sequence[str] = ()
    pre_build_script: str | None = None
    volumes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    pod_spec: Sequence[Mapping[str, str]] = ()
    feature_flags: Mapping[str, bool] = field(default_factory=dict)
    cache: S3Cache | None = None


def runner_config(props: RunnerTomlProps) -> dict[str, Any]:
    """The ``[[runners]]`` table (validated)."""
    raise_if_problems("RunnerToml", _problems(props))
    kubernetes: dict[str, Any] = {
        "namespace": props.job_namespace,
        "namespace_per_job": props.namespace_per_job,
        "image": props.image,
        "pull_policy": ["if-not-present"],
        "privileged": False,
        "allow_privilege_escalation": False,
        "automount_service_account_token": False,
        "poll_interval": 3,
        "poll_timeout": props.poll_timeout,
        **_container("", props.build),
        **_container("helper_", props.helper),
        **_container("service_", props.service),
        **{
            f"{key}_overwrite_max_allowed": props.ceilings[key]
            for key in _CEILINGS
            if key in props.ceilings
        },
        "pod_labels": {**JOB_POD_LABELS, RUNNER_TYPE_LABEL: props.runner_type},
        "pod_security_context": {"seccomp_profile": {"type": "RuntimeDefault"}},
        # Jobs run arbitrary images, often as root: Pod Security baseline, no escalation,
        # and no raw sockets. Every container's context is complete: the runner fills each
        # field a context leaves unset from the global flags above, and the API server
        # rejects privileged with allowPrivilegeEscalation false.
        "init_permissions_container_security_context": _container_security(privileged=False),
        "build_container_security_context": _container_security(privileged=False),
        "helper_container_security_context": _container_security(privileged=False),
        "service_container_security_context": _container_security(
            privileged=props.privileged_services
        ),
    }
    if props.priority_class:
        kubernetes["priority_class_name"] = props.priority_class
    if props.allowed_images:
        kubernetes["allowed_images"] = list(props.allowed_images)
    if props.node_selector:
        kubernetes["node_selector"] = dict(props.node_selector)
    if props.tolerations:
        kubernetes["node_tolerations"] = {
            (t.key if t.value is None else f"{t.key}={t.value}"): t.effect
            for t in props.tolerations
        }
    if props.services:
        kubernetes["services"] = [dict(service) for service in props.services]
    if props.volumes:
        kubernetes["volumes"] = {
            kind: [dict(volume) for volume in volumes]
            for kind, volumes in props.volumes.items()
            if volumes
        }
    if props.pod_spec:
        kubernetes["pod_spec"] = [dict(patch) for patch in props.pod_spec]
    runner: dict[str, Any] = {
        "name": props.name,
        "executor": "kubernetes",
        "limit": props.limit,
    }
    if props.environment:
        runner["environment"] = list(props.environment)
    if props.pre_build_script:
        runner["pre_build_script"] = props.pre_build_script
    runner["feature_flags"] = {**FEATURE_FLAGS, **props.feature_flags}
    if props.cache:
        runner["cache"] = _cache(props.cache)
    runner["kubernetes"] = kubernetes
    return runner


def render_runner_config(props: RunnerTomlProps) -> str:
    """``runners.config`` for the chart: one ``[[runners]]`` entry as TOML."""
    text = tomli_w.dumps({"runners": [runner_config(props)]})
    if "{{" in text:
        # Helm renders runners.config as a template; a literal '{{' would be executed.
        raise ValueError("runner config must not contain '{{' (Helm evaluates it)")
    return text


def _container(prefix: str, resources: ComputeResources) -> dict[str, str]:
    return {
        f"{prefix}cpu_request": resources.cpu_request,
        f"{prefix}memory_request": resources.memory_request,
        f"{prefix}cpu_limit": resources.cpu_limit,
        f"{prefix}memory_limit": resources.memory_limit,
    }


def _container_security(*, privileged: bool) -> dict[str, Any]:
    """A container's security context with both flags set, so that neither falls back to
    the global ``privileged``/``allow_privilege_escalation`` (runner 19.3
    ``GetContainerSecurityContext``, common/config.go)."""
    if privileged:
        # A privileged container can escalate anyway; Kubernetes refuses the pair
        # privileged: true / allowPrivilegeEscalation: false (ValidateSecurityContext).
        return {"privileged": True, "allow_privilege_escalation": True}
    return {
        "privileged": False,
        "allow_privilege_escalation": False,
        "capabilities": {"drop": ["NET_RAW"]},
    }


def _cache(cache: S3Cache) -> dict[str, Any]:
    return {
        "Type": "s3",
        "Path": cache.path,
        "Shared": cache.shared,
        "s3": {
            "ServerAddress": cache.server_address,
            "BucketName": cache.bucket,
            "BucketLocation": cache.bucket_location,
            "Insecure": cache.insecure,
            "AuthenticationType": cache.authentication,
        },
    }


def _problems(props: RunnerTomlProps) -> list[str]:
    return [
        ""
        if props.runner_type in RUNNER_TYPES
        else f"runner_type: {props.runner_type!r} is not one of {', '.join(RUNNER_TYPES)}",
        check_dns_label("job_namespace", props.job_namespace),
        "" if props.name.strip() else "name: must not be empty",
        "" if props.image else "image: must not be empty",
        "" if props.limit >= 1 else f"limit: must be at least 1 (got {props.limit})",
        "" if props.poll_timeout >= 1 else f"poll_timeout: must be positive ({props.poll_timeout})",
        *(
            f"ceilings: {key!r} is not one of {', '.join(_CEILINGS)}"
            for key in props.ceilings
            if key not in _CEILINGS
        ),
        ""
        if not props.privileged_services or props.runner_type == "dind"
        else f"privileged_services: only the dind type may (got type {props.runner_type})",
        *(
            f"pod_spec[{i}]: needs name and patch, patch_type one of {', '.join(_PATCH_TYPES)} "
            f"(got {dict(patch)})"
            for i, patch in enumerate(props.pod_spec)
            if set(patch) != {"name", "patch", "patch_type"}
            or patch["patch_type"] not in _PATCH_TYPES
        ),
        ""
        if not props.pod_spec or props.feature_flags.get(POD_SPEC_FLAG)
        else f"pod_spec: the runner ignores it unless feature_flags sets {POD_SPEC_FLAG}",
    ]
