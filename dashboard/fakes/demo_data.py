"""A plausible fleet for one environment of a config, loaded into the three fakes: used by
``attic-iac dashboard --demo`` and the tests, never otherwise.

Every enabled runner type gets a runner registered under the description the stacks use, a
manager Deployment and pods, and jobs; the rocky8 runner (or the last type) is offline with
its manager crash-looping, the dind runner (or the first type) paused. Attic has its HPA and
traffic; Prometheus answers the dashboard's queries with series that move over time.

Long because it is the whole demo fleet across GitLab, Kubernetes and Prometheus, built in
one place so the three sources tell the same story.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from config_model.organization import OrganizationConfig
from config_model.runners import enabled_types, job_namespace_of, runner_slug
from config_model.wiring import (
    dashboard_namespaces,
    runner_description,
    runner_release_name,
    runner_tags,
)
from dashboard.drift import ATTIC_API_NAME, DESIRED_ANNOTATION
from dashboard.fakes import k8s_objects as k8s
from dashboard.fakes.gitlab import FakeGitLab
from dashboard.fakes.kubernetes import FakeKubernetes
from dashboard.fakes.prometheus import FakePrometheus
from dashboard.sources.k8s_objects import (
    COMPONENT_LABEL,
    JOB_POD_LABELS,
    MANAGER_LABELS,
    RUNNER_TYPE_LABEL,
)
from dashboard.sources.prometheus import RUNNER_TYPE_TARGET, queries

CONFIG_FILE = "config/organization.yaml"
# The Attic API's Deployment and HPA: the name drift compares (pinned to the library there).
HPA_NAME = ATTIC_API_NAME
# Jobs running now, per type (capped by the type's capacity).
RUNNING = {"docker": 7, "dind": 2, "nix": 3, "nix_protected": 1, "rocky8": 0, "rocky9": 1}
# Typical queue wait per type, seconds.
WAIT = {"docker": 4.0, "dind": 25.0, "nix": 9.0, "nix_protected": 2.0, "rocky8": 60.0}
PROJECTS = ("web", "api", "nixos-config", "tools")
# What the demo's managers run (and say they were declared with).
DEMO_CHART = "gitlab-runner-0.92.0"
DEMO_RUNNER_IMAGE = "docker.io/gitlab/gitlab-runner:alpine-v19.3.1"


@dataclass(frozen=True, kw_only=True)
class Demo:
    """The fakes and the identifiers an app needs to use them."""

    gitlab: FakeGitLab
    kubernetes: FakeKubernetes
    prometheus: FakePrometheus
    group: str
    config_project: str
    config_file: str
    client_id: str
    client_secret: str
    redirect_uri: str
    read_token: str
    kube_token: str
    users: dict[str, int]
    runners: dict[str, int] = field(default_factory=dict)


def _offline_and_paused(types: list[str]) -> tuple[str, str]:
    offline = "rocky8" if "rocky8" in types else types[-1]
    paused = "dind" if "dind" in types else types[0]
    return offline, paused


def build_demo(
    config: OrganizationConfig,
    environment: str,
    *,
    public_url: str,
    config_text: str,
    now: float,
) -> Demo:
    """The demo fleet of ``environment`` (``config`` is its resolved config); the OAuth app
    redirects to ``public_url``/auth/callback and the config project holds ``config_text``."""
    gitlab = FakeGitLab(url=str(config.gitlab.url).rstrip("/"))
    redirect_uri = public_url.rstrip("/") + "/auth/callback"
    client_id, client_secret = "demo-dashboard", secrets.token_urlsafe(24)
    gitlab.add_application(client_id, client_secret, redirect_uri)
    users = {
        "ada": gitlab.add_user("ada", name="Ada Lovelace"),
        "grace": gitlab.add_user("grace", name="Grace Hopper"),
        "mallory": gitlab.add_user("mallory", name="Mallory Outsider"),
        "reader": gitlab.add_user("dashboard-reader", name="Dashboard reader (bot)"),
    }
    org = config.organization.name
    group_id = int(config.runners.gitlab_api.group_id or 1234)
    gitlab.add_group(org, group_id=group_id)
    project_path = f"{org}/attic-iac"
    project_id = gitlab.add_project(project_path, files={CONFIG_FILE: config_text})
    for user, group_level, project_level in (
        ("ada", 50, 40),
        ("grace", 20, 30),
        ("reader", 40, 20),  # Reporter on the config project: drift reads organization.yaml
    ):
        gitlab.set_member_access(group_id, users[user], group_level)
        if project_level is not None:
            gitlab.set_member_access(project_id, users[user], project_level)
    gitlab.sign_in_as(users["ada"])
    job_projects = [
        gitlab.add_project(f"{org}/{name}", files={"README.md": name}) for name in PROJECTS
    ]
    kube_token = secrets.token_urlsafe(24)
    kubernetes = FakeKubernetes(token=kube_token, rbac=_rbac(config), bookmark_interval=30)
    demo = Demo(
        gitlab=gitlab,
        kubernetes=kubernetes,
        prometheus=FakePrometheus(),
        group=str(group_id),
        config_project=project_path,
        config_file=CONFIG_FILE,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        read_token=gitlab.personal_token(users["reader"], "read_api"),
        kube_token=kube_token,
        users=users,
    )
    types = [name for name, _ in enabled_types(config.runners)]
    start = datetime.fromtimestamp(now, UTC)
    for name in types:
        demo.runners[name] = _runner(
            demo, config, environment, name, types=types, projects=job_projects, start=start
        )
    gitlab.add_runner(group_id, f"{org} legacy shell runner", status="stale", tags=["shell"])
    _kubernetes(demo, config, types, start)
    _prometheus(demo, config, types, now)
    return demo


def _rbac(config: OrganizationConfig) -> dict[str, list[str]]:
    """What the dashboard's service account may read: the stack's Roles."""
    kinds = ("pods", "events", "deployments", "horizontalpodautoscalers")
    return dict.fromkeys(kinds, dashboard_namespaces(config))


def _runner(
    demo: Demo,
    config: OrganizationConfig,
    environment: str,
    name: str,
    *,
    types: list[str],
    projects: list[int],
    start: datetime,
) -> int:
    offline, paused = _offline_and_paused(types)
    gitlab = demo.gitlab
    runner_id = gitlab.add_runner(
        int(demo.group),
        runner_description(config, environment, name),
        status="offline" if name == offline else "online",
        paused=name == paused,
        tags=runner_tags(config, name),
        ip_address=f"10.42.{types.index(name)}.17",
        access_level=getattr(config.runners.types, name).gitlab.access_level,
    )
    if name == offline:
        gitlab.runners[runner_id].contacted_at = start - timedelta(hours=3)
    wait = WAIT.get(name, 5.0)
    for i in range(12):
        created = start - timedelta(minutes=15 + 9 * i)
        gitlab.add_job(
            runner_id,
            projects[i % len(projects)],
            name=("build", "test", "lint", "deploy")[i % 4],
            status="failed" if i % 7 == 3 else "success",
            queued_duration=round(wait * (0.3 + (i * 37 % 17) / 8), 2),
            created_at=created,
            duration=60.0 + 23 * i,
        )
    spec = getattr(config.runners.types, name)
    for i in range(0 if name == offline else min(RUNNING.get(name, 1), spec.concurrent)):
        gitlab.add_job(
            runner_id,
            projects[i % len(projects)],
            name=("build", "test", "nix-build")[i % 3],
            status="running",
            queued_duration=round(wait * (0.5 + i / 3), 2),
            created_at=start - timedelta(minutes=2 + 3 * i),
        )
    return runner_id


def _kubernetes(demo: Demo, config: OrganizationConfig, types: list[str], start: datetime) -> None:
    kube, runners = demo.kubernetes, config.runners
    offline, _ = _offline_and_paused(types)
    for name in types:
        spec, slug = getattr(runners.types, name), runner_slug(name)
        release = runner_release_name(name)
        labels = {**MANAGER_LABELS, RUNNER_TYPE_LABEL: name}
        healthy = name != offline
        kube.put(
            "deployments",
            k8s.deployment(
                runners.namespace,
                release,
                labels={"app": release, "release": release, "chart": DEMO_CHART},
                pod_labels=labels,
                annotations={DESIRED_ANNOTATION: _stamp(config, name)},
                image=DEMO_RUNNER_IMAGE,
                replicas=spec.replicas,
                ready=spec.replicas if healthy else 0,
            ),
        )
        for replica in range(spec.replicas):
            kube.put(
                "pods",
                k8s.pod(
                    runners.namespace,
                    f"{release}-7d9f8c6b5-{replica}x{slug[:3]}",
                    labels={**labels, "app": release},
                    ready=healthy,
                    started_at=start - timedelta(days=2),
                    node=f"node-{replica + 1}",
                ),
            )
        kube.put(
            "configmaps",
            k8s.configmap(
                runners.namespace,
                release,
                {
                    "config.toml": f"concurrent = {spec.concurrent}\ncheck_interval = 3\n"
                    'log_level = "info"\nlog_format = "json"\nlisten_address = ":9252"\n'
                },
                labels={"app": release},
            ),
        )
        namespace = job_namespace_of(runners, name)
        running = [j for j in demo.gitlab.jobs.values() if j.status == "running"]
        for job in [j for j in running if j.runner_id == demo.runners[name]]:
            kube.put(
                "pods",
                k8s.pod(
                    namespace,
                    f"runner-{slug}-project-{job.project_id}-concurrent-{job.id % 10}-{job.id}",
                    labels={**JOB_POD_LABELS, RUNNER_TYPE_LABEL: name},
                    phase="Pending" if name == "dind" and job.id % 2 else "Running",
                    ready=not (name == "dind" and job.id % 2),
                    node=None if name == "dind" and job.id % 2 else "node-2",
                    started_at=job.started_at,
                    image="nixos/nix:2.28.3" if "nix" in name else "alpine:3.22",
                ),
            )
    _attic(demo, config, start)
    _events(demo, config, types, start)


def _stamp(config: OrganizationConfig, name: str) -> str:
    """The stacks' annotation on a manager (constructs_lib's ``desired_stamp``): the docker
    manager was applied before its ``concurrent`` was raised, so the drift page shows it."""
    spec = getattr(config.runners.types, name)
    applied = spec.concurrent - 2 if name == "docker" and spec.concurrent > 2 else spec.concurrent
    stamp = {
        "chart": DEMO_CHART,
        "concurrent": applied,
        "image": DEMO_RUNNER_IMAGE,
        "job_namespace": job_namespace_of(config.runners, name),
        "runner_type": name,
    }
    return json.dumps(stamp, sort_keys=True)


def _attic(demo: Demo, config: OrganizationConfig, start: datetime) -> None:
    namespace = config.attic.namespace
    demo.kubernetes.put(
        "deployments", k8s.deployment(namespace, HPA_NAME, replicas=4, ready=3, updated=4)
    )
    for i in range(4):
        demo.kubernetes.put(
            "pods",
            k8s.pod(
                namespace,
                f"{HPA_NAME}-5c7b9d4f8-{i}q2w",
                labels={"app.kubernetes.io/name": "attic", COMPONENT_LABEL: "api"},
                ready=i < 3,
                started_at=start - timedelta(hours=6 - i),
                image="ghcr.io/zhaofengli/attic:4dbdbee",
            ),
        )
    demo.kubernetes.put(
        "horizontalpodautoscalers",
        k8s.hpa(namespace, HPA_NAME, target=HPA_NAME, minimum=2, maximum=6, current=4, desired=4),
    )


def _events(demo: Demo, config: OrganizationConfig, types: list[str], start: datetime) -> None:
    runners = config.runners
    offline, _ = _offline_and_paused(types)
    pod = next(
        p["metadata"]["name"]
        for p in demo.kubernetes.objects[("pods", runners.namespace)].values()
        if p["metadata"]["labels"].get(RUNNER_TYPE_LABEL) == offline
    )
    demo.kubernetes.put(
        "events",
        k8s.event(
            runners.namespace,
            f"{pod}.18a2b3c4d5e6f7a8",
            kind="Pod",
            object_name=pod,
            reason="BackOff",
            message="Back-off restarting failed container gitlab-runner in pod "
            f"{pod}_{runners.namespace}",
            count=37,
            last_seen=start - timedelta(minutes=1),
        ),
    )
    demo.kubernetes.put(
        "events",
        k8s.event(
            runners.dind_namespace,
            "dind-scheduling.18a2b3c4d5e6f7b9",
            kind="Pod",
            object_name="runner-dind-project-12-concurrent-1",
            reason="FailedScheduling",
            message="0/5 nodes are available: 5 node(s) didn't match Pod's node "
            "affinity/selector. preemption: 0/5 nodes are available.",
            count=4,
            last_seen=start - timedelta(minutes=4),
        ),
    )


def _wave(base: float, amplitude: float, period: float, now: float) -> Callable[[float], float]:
    """``base`` at ``now``, swinging by ``amplitude`` over ``period`` seconds, never below 0."""
    return lambda t: max(0.0, base + amplitude * math.sin(2 * math.pi * (t - now) / period))


def _prometheus(demo: Demo, config: OrganizationConfig, types: list[str], now: float) -> None:
    q, prom = queries(config), demo.prometheus
    offline, _ = _offline_and_paused(types)
    running, capacity, saturation, p50, p95 = [], [], [], [], []
    for name in types:
        spec = getattr(config.runners.types, name)
        label = {RUNNER_TYPE_TARGET: name}
        slots = spec.concurrent * spec.replicas
        busy = 0 if name == offline else min(RUNNING.get(name, 1), spec.concurrent)
        wave = _wave(busy, slots / 3, 5400, now)
        running.append((label, lambda t, w=wave, s=slots: float(min(s, round(w(t))))))
        if name != offline:
            capacity.append((label, float(slots)))
            saturation.append((label, lambda t, w=wave, s=slots: min(1.0, round(w(t)) / s)))
        wait = WAIT.get(name, 5.0)
        p50.append((label, _wave(wait * 0.6, wait * 0.2, 3600, now)))
        p95.append((label, _wave(wait * 2.5, wait, 3600, now)))
    prom.set(q.running, running)
    prom.set(q.capacity, capacity)
    prom.set(q.saturation, saturation)
    prom.set(q.queue_p50, p50)
    prom.set(q.queue_p95, p95)
    prom.set(
        q.failures,
        [
            ({RUNNER_TYPE_TARGET: types[0], "failure_reason": "script_failure"}, 4.0),
            ({RUNNER_TYPE_TARGET: types[0], "failure_reason": "runner_system_failure"}, 1.0),
            ({RUNNER_TYPE_TARGET: types[-1], "failure_reason": "stuck_or_timeout_failure"}, 2.0),
        ],
    )
    hpa = {"namespace": config.attic.namespace, "horizontalpodautoscaler": HPA_NAME}
    replicas = _wave(4, 2.4, 4 * 3600, now)
    prom.set(q.hpa_current, [(hpa, lambda t: float(min(6, max(2, round(replicas(t - 120))))))])
    prom.set(q.hpa_desired, [(hpa, lambda t: float(min(6, max(2, round(replicas(t))))))])
    prom.set(q.hpa_max, [(hpa, 6.0)])
    prom.set(q.cache_requests, [({}, _wave(42.0, 18.0, 3 * 3600, now))])
    prom.set(q.cache_p99, [({}, _wave(0.21, 0.09, 2 * 3600, now))])
    prom.set(q.cache_errors, [({}, _wave(0.0004, 0.0003, 5 * 3600, now))])
