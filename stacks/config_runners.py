"""The ``runners:`` section: GitLab runner managers per type, their job namespaces, tokens,
budgets, cleanup and the nix runner's Attic wiring.

Kept apart from :mod:`stacks.config` only for size; the same rules hold (no cdktf imports,
every default here, ``extra="forbid"``).
"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from constructs_lib.attic.humantime import parse_duration
from constructs_lib.kubernetes.quantity import parse_quantity
from stacks.config_base import (
    CacheName,
    Duration,
    ImageOverride,
    K8sName,
    Quantity,
    Resources,
    StrictModel,
    deep_merge,
    digits,
    resources_field,
)

if TYPE_CHECKING:
    from stacks.config import OrganizationConfig

RunnerTypeName = Literal["docker", "dind", "nix", "rocky8", "rocky9"]
NumericId = Annotated[str, BeforeValidator(digits), Field(pattern=r"^[1-9][0-9]*$")]
_TAG = r"^[^,\s][^,]{0,254}$"


class Toleration(StrictModel):
    """A Kubernetes toleration."""

    key: str | None = Field(default=None, description="Taint key; empty with Exists = all.")
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Placement(StrictModel):
    """Where pods are scheduled."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class RunnerRegistration(StrictModel):
    """The runner object in GitLab, created by the GitLab provider (token_source gitlab_api).

    gitlab-runner drops tags, locked, run-untagged and access level at registration with
    ``glrt-`` tokens, so they are set here, on the runner itself.
    """

    description: str | None = Field(
        default=None, description="Default: '<organization> <environment> <type>'."
    )
    tags: list[Annotated[str, Field(pattern=_TAG)]] | None = Field(
        default=None,
        description="Job tags this runner picks up. Default: the type's name (docker, dind, "
        "nix, rocky8, rocky9), so a job that names one type never lands on another.",
    )
    run_untagged: bool = Field(default=False, description="Also run jobs without tags.")
    locked: bool = Field(
        default=False, description="Project runners only: cannot be enabled for other projects."
    )
    access_level: Literal["not_protected", "ref_protected"] = Field(
        default="not_protected",
        description="'ref_protected': only jobs on protected branches and tags.",
    )
    maximum_timeout: int = Field(
        default=10800,
        ge=600,
        description="Seconds; caps every job's timeout (and so how long a job pod may live).",
    )
    paused: bool = False


class JobCeilings(StrictModel):
    """How far a job may raise its own requests/limits with KUBERNETES_* CI variables
    (gitlab-runner's ``*_overwrite_max_allowed``). Unset: the job cannot override."""

    cpu_request: Quantity | None = None
    memory_request: Quantity | None = None
    cpu_limit: Quantity | None = None
    memory_limit: Quantity | None = None


class RunnerType(StrictModel):
    """One runner type: a gitlab-runner Helm release and the job pods it starts.

    Defaults that differ per type come from TYPE_DEFAULTS (shown in each description).
    """

    enabled: bool = True
    concurrent: int = Field(
        default=4,
        ge=1,
        le=500,
        description="Jobs one manager runs at once (docker 10, others 4). The real capacity "
        "ceiling: see the README on scaling.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Manager pods; each runs 'concurrent' jobs. More than 1 adds a PDB.",
    )
    privileged: bool = Field(
        default=False,
        description="Privileged job pods: only the dind type may (and must) set this; it is "
        "its default.",
    )
    image: ImageOverride | None = Field(
        default=None, description="Default job image; default: the pinned image of the type."
    )
    job: Resources = Field(description="Build container requests/limits.")
    job_ceilings: JobCeilings = Field(default_factory=JobCeilings)
    helper: Resources = resources_field("50m", "64Mi", "500m", "256Mi")
    service: Resources = resources_field("100m", "128Mi", "1", "1Gi")
    services_per_job: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Service containers counted per job when checking the quota (dind 1).",
    )
    poll_timeout: int = Field(
        default=600,
        ge=60,
        description="Seconds a job waits for its pod to run; raise it for node pools that "
        "scale from zero.",
    )
    allowed_images: list[str] = Field(
        default_factory=list, description="Images jobs may use ('*' globs); empty = any."
    )
    namespace_per_job: bool = Field(
        default=False,
        description="Each job in its own namespace (needs cluster-wide namespace rights; those "
        "namespaces get none of our policies). The cleanup removes leaked ones.",
    )
    manager: Placement = Field(default_factory=Placement, description="Manager pod placement.")
    jobs: Placement = Field(
        default_factory=Placement,
        description="Job pod placement (separate, so a job node pool can scale to zero).",
    )
    manager_resources: Resources = resources_field("100m", "128Mi", "1", "512Mi")
    gitlab: RunnerRegistration = Field(default_factory=RunnerRegistration)
    secret: K8sName | None = Field(
        default=None,
        description="Secret with key runner-token ('glrt-...'). With token_source "
        "existing_secret you create it; default gitlab-runner-<type>-token.",
    )


def _resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> Any:
    return {
        "cpu_request": cpu_request,
        "memory_request": memory_request,
        "cpu_limit": cpu_limit,
        "memory_limit": memory_limit,
    }


# Per-type defaults, deep-merged under what the config says for that type.
TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "docker": {
        "concurrent": 10,
        "job": _resources("100m", "256Mi", "2", "4Gi"),
        "job_ceilings": {"cpu_limit": "4", "memory_limit": "8Gi"},
    },
    "dind": {
        "privileged": True,
        "job": _resources("250m", "512Mi", "2", "4Gi"),
        "job_ceilings": {"cpu_limit": "4", "memory_limit": "8Gi"},
        "service": _resources("500m", "1Gi", "4", "8Gi"),
        "services_per_job": 1,
    },
    "nix": {
        "job": _resources("1", "2Gi", "4", "8Gi"),
        "job_ceilings": {"cpu_limit": "8", "memory_limit": "16Gi"},
    },
    "rocky8": {"job": _resources("250m", "512Mi", "2", "4Gi")},
    "rocky9": {"job": _resources("250m", "512Mi", "2", "4Gi")},
}


class RunnerTypes(StrictModel):
    """The five runner types; each is on unless ``enabled: false``."""

    docker: RunnerType = Field(default_factory=lambda: RunnerType(**TYPE_DEFAULTS["docker"]))
    dind: RunnerType = Field(default_factory=lambda: RunnerType(**TYPE_DEFAULTS["dind"]))
    nix: RunnerType = Field(default_factory=lambda: RunnerType(**TYPE_DEFAULTS["nix"]))
    rocky8: RunnerType = Field(default_factory=lambda: RunnerType(**TYPE_DEFAULTS["rocky8"]))
    rocky9: RunnerType = Field(default_factory=lambda: RunnerType(**TYPE_DEFAULTS["rocky9"]))

    @model_validator(mode="before")
    @classmethod
    def _type_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            name: deep_merge(copy.deepcopy(TYPE_DEFAULTS[name]), value)
            if name in TYPE_DEFAULTS and isinstance(value, dict)
            else value
            for name, value in data.items()
        }

    def items(self) -> list[tuple[str, RunnerType]]:
        """(name, settings) of every type, in a fixed order."""
        return [(name, getattr(self, name)) for name in TYPE_DEFAULTS]


class GitLabApi(StrictModel):
    """Where token_source gitlab_api creates the runners (one per type)."""

    runner_type: Literal["group_type", "instance_type", "project_type"] = Field(
        default="group_type",
        description="group_type needs group_id, project_type project_id; instance_type "
        "needs an administrator's token.",
    )
    group_id: NumericId | None = None
    project_id: NumericId | None = None


ComputeKey = Literal["cpu", "memory"]


def _compute(cpu: str, memory: str) -> dict[ComputeKey, str]:
    return {"cpu": cpu, "memory": memory}


class Budget(StrictModel):
    """ResourceQuota ``hard`` entries and LimitRange container bounds for one namespace."""

    quota: dict[
        Literal[
            "requests.cpu",
            "requests.memory",
            "limits.cpu",
            "limits.memory",
            "pods",
            "requests.ephemeral-storage",
            "limits.ephemeral-storage",
        ],
        Quantity,
    ]
    default_request: dict[ComputeKey, Quantity] = Field(
        default_factory=lambda: _compute("100m", "128Mi"),
        description="Requests of a container that sets none.",
    )
    default_limit: dict[ComputeKey, Quantity] = Field(
        default_factory=lambda: _compute("1", "1Gi"),
        description="Limits of a container that sets none.",
    )
    max: dict[ComputeKey, Quantity] = Field(description="Largest limits one container may have.")


def _budget(quota: dict[str, str], max_: dict[str, str]) -> Any:
    return Field(default_factory=lambda: Budget(quota=quota, max=max_))


class Budgets(StrictModel):
    """Quotas of the three runner namespaces; jobs past the quota fail, so the checks make
    every type's ``concurrent`` jobs fit."""

    managers: Budget = _budget(
        {
            "requests.cpu": "4",
            "requests.memory": "4Gi",
            "limits.cpu": "16",
            "limits.memory": "16Gi",
            "pods": "30",
        },
        {"cpu": "2", "memory": "2Gi"},
    )
    jobs: Budget = _budget(
        {
            "requests.cpu": "48",
            "requests.memory": "96Gi",
            "limits.cpu": "128",
            "limits.memory": "256Gi",
            "pods": "150",
        },
        {"cpu": "8", "memory": "16Gi"},
    )
    dind: Budget = _budget(
        {
            "requests.cpu": "16",
            "requests.memory": "32Gi",
            "limits.cpu": "48",
            "limits.memory": "96Gi",
            "pods": "30",
        },
        {"cpu": "8", "memory": "16Gi"},
    )


class RunnerCache(StrictModel):
    """gitlab-runner's distributed cache (``[runners.cache]``) on S3-compatible storage.

    The manager signs URLs; job pods upload and download with them, so the endpoint must be
    reachable from job pods (and allowed by runners.egress).
    """

    enabled: bool = False
    server_address: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9.-]+(:[0-9]+)?$",
        description="host[:port] without scheme, e.g. s3.amazonaws.com.",
    )
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    bucket_location: str = "us-east-1"
    insecure: bool = Field(default=False, description="http instead of https.")
    path: str = Field(default="gitlab-runner", pattern=r"^[A-Za-z0-9._/-]+$")
    shared: bool = Field(default=True, description="One cache for every manager of a type.")
    credentials: Literal["variables", "existing_secret", "workload_identity"] = Field(
        default="variables",
        description="'variables': TF_VAR_runner_cache_access_key_id / "
        "TF_VAR_runner_cache_secret_access_key into Secret gitlab-runner-cache; "
        "'existing_secret': your Secret (keys accesskey, secretkey); 'workload_identity': "
        "manager service-account annotations.",
    )
    secret_name: K8sName = "gitlab-runner-cache"
    service_account_annotations: dict[str, str] = Field(default_factory=dict)


class RunnerEgress(StrictModel):
    """Where job pods may connect (besides DNS, Attic and in-cluster storage)."""

    internet: bool = Field(
        default=True,
        description="Ports 80/443 (plus 'ports') to public addresses; private ranges, "
        "link-local (cloud metadata) and carrier-grade NAT stay blocked.",
    )
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [22], description="Extra public ports (22: git over SSH)."
    )
    cidrs: list[str] = Field(
        default_factory=list,
        description="Extra destinations on any port: a self-hosted GitLab, a private "
        "registry, object storage on a private network.",
    )


class RunnerCleanup(StrictModel):
    """A CronJob deleting job pods that outlived every job timeout."""

    enabled: bool = True
    schedule: str = Field(default="*/10 * * * *", pattern=r"^\S+( \S+){4}$")
    max_age: Duration = Field(
        default="4 hours",
        description="Delete job pods older than this (longer than any maximum_timeout).",
    )
    finished_after: Duration = Field(
        default="15 minutes", description="Delete Succeeded/Failed job pods after this."
    )


class AgentGrant(StrictModel):
    """GitLab agent ci_access (impersonation): what one project's or group's CI jobs may do."""

    project_id: NumericId | None = None
    group_id: NumericId | None = None
    access: Literal["read", "operate"] = Field(
        default="read", description="'read': get/list/watch; 'operate': also delete pods."
    )
    namespaces: list[K8sName] | None = Field(
        default=None, description="Default: the runner namespaces."
    )


class RunnerAttic(StrictModel):
    """The nix runner's Attic wiring: substituters, public keys and the push token (only
    when attic.caches declares caches)."""

    enabled: bool = True
    caches: list[CacheName] | None = Field(
        default=None, description="Caches used as substituters, in order. Default: all declared."
    )
    push_cache: CacheName | None = Field(
        default=None,
        description="Cache jobs push to. Default: the first cache when a token is set.",
    )
    token: str | None = Field(
        default=None,
        description="attic.tokens entry whose Secret is mounted into nix jobs; it must live in "
        "runners.job_namespace. Unset: pull only (public caches).",
    )
    endpoint: Literal["in_cluster", "public"] = Field(
        default="in_cluster",
        description="'in_cluster': the attic Service (no ingress rate limit, no hairpin); "
        "'public': the ingress URL.",
    )
    priority: int = Field(
        default=30, ge=0, le=39, description="Substituter priority; cache.nixos.org is 40."
    )


class Runners(StrictModel):
    """The GitLab runner fleet (stack runners-<env>)."""

    namespace: K8sName = Field(default="gitlab-runners", description="Managers (restricted).")
    job_namespace: K8sName = Field(
        default="gitlab-runner-jobs", description="Job pods of every type but dind (baseline)."
    )
    dind_namespace: K8sName = Field(
        default="gitlab-runner-dind", description="dind job pods (privileged, isolated)."
    )
    token_source: Literal["gitlab_api", "existing_secret"] = Field(
        default="existing_secret",
        description="'gitlab_api': the GitLab provider creates each runner and its glrt- token "
        "lands in a Secret (provider token: TF_VAR_gitlab_token or GITLAB_TOKEN); "
        "'existing_secret': you created runners and Secrets. Registration tokens are not "
        "supported (deprecated by GitLab).",
    )
    gitlab_api: GitLabApi = Field(default_factory=GitLabApi)
    check_interval: int = Field(default=3, ge=1, le=60, description="Seconds between polls.")
    types: RunnerTypes = Field(default_factory=RunnerTypes)
    budgets: Budgets = Field(default_factory=Budgets)
    cache: RunnerCache = Field(default_factory=RunnerCache)
    egress: RunnerEgress = Field(default_factory=RunnerEgress)
    cleanup: RunnerCleanup = Field(default_factory=RunnerCleanup)
    agent_access: list[AgentGrant] = Field(default_factory=list)
    attic: RunnerAttic = Field(default_factory=RunnerAttic)


Problems = list[tuple[tuple[str, ...], str, Any]]
_RESOURCES = ("cpu", "memory")


def runner_problems(config: OrganizationConfig) -> Problems:
    """Rules that span keys of ``runners`` (and the Attic caches and tokens it uses)."""
    runners = config.runners
    return [
        *_namespace_problems(config),
        *_registration_problems(runners),
        *_type_problems(runners),
        *_budget_problems(runners),
        *_cleanup_problems(runners),
        *_cache_problems(runners.cache),
        *_agent_problems(runners),
        *_attic_wiring_problems(config),
    ]


def job_namespace_of(runners: Runners, name: str) -> str:
    """Where a type's job pods run: dind alone in its privileged namespace."""
    return runners.dind_namespace if name == "dind" else runners.job_namespace


def enabled_types(runners: Runners) -> list[tuple[str, RunnerType]]:
    return [(name, spec) for name, spec in runners.types.items() if spec.enabled]


def _namespace_problems(config: OrganizationConfig) -> Problems:
    runners = config.runners
    own = {
        "namespace": runners.namespace,
        "job_namespace": runners.job_namespace,
        "dind_namespace": runners.dind_namespace,
    }
    problems: Problems = []
    seen: dict[str, str] = {}
    others = {config.attic.namespace: "attic.namespace"}
    if config.attic.storage.backend != "s3":
        backend = config.attic.storage.backend
        others[getattr(config.attic.storage, backend).namespace] = f"attic.storage.{backend}"
    for key, value in own.items():
        if value in seen:
            problems.append((("runners", key), f"must differ from runners.{seen[value]}", value))
        elif value in others:
            problems.append((("runners", key), f"is already used by {others[value]}", value))
        seen.setdefault(value, key)
    return problems


def _registration_problems(runners: Runners) -> Problems:
    problems: Problems = []
    if runners.token_source == "existing_secret":
        problems += [
            (
                ("runners", "types", name, "gitlab"),
                "has no effect with token_source existing_secret: tags, locked, run_untagged "
                "and access level live on the runner you created in GitLab",
                "set",
            )
            for name, spec in enabled_types(runners)
            if "gitlab" in spec.model_fields_set
        ]
        return problems
    api = runners.gitlab_api
    need = {"group_type": "group_id", "project_type": "project_id"}.get(api.runner_type)
    for key in ("group_id", "project_id"):
        value = getattr(api, key)
        if key == need and value is None:
            problems.append(
                (
                    ("runners", "gitlab_api", key),
                    f"is required with runner_type {api.runner_type}",
                    None,
                )
            )
        elif key != need and value is not None:
            problems.append(
                (
                    ("runners", "gitlab_api", key),
                    f"does not apply to runner_type {api.runner_type}",
                    value,
                )
            )
    return problems


def _type_problems(runners: Runners) -> Problems:
    problems: Problems = []
    secrets: dict[str, str] = {}
    for name, spec in enabled_types(runners):
        path = ("runners", "types", name)
        if spec.privileged and name != "dind":
            problems.append(
                (
                    (*path, "privileged"),
                    "only the dind type runs privileged job pods (its own namespace allows "
                    "it); allowed: false",
                    True,
                )
            )
        if name == "dind" and not spec.privileged:
            problems.append(
                ((*path, "privileged"), "dind needs privileged job pods; allowed: true", False)
            )
        secret = spec.secret or f"gitlab-runner-{name}-token"
        if secret in secrets:
            problems.append(
                ((*path, "secret"), f"runners.types.{secrets[secret]} uses it too", secret)
            )
        secrets[secret] = name
        if spec.namespace_per_job and name == "dind":
            problems.append(
                (
                    (*path, "namespace_per_job"),
                    "per-job namespaces would carry no Pod Security label that allows "
                    "privileged pods; allowed: false",
                    True,
                )
            )
    return problems


def _q(text: str) -> Fraction:
    return parse_quantity(text)


def _budget_problems(runners: Runners) -> Problems:
    problems: Problems = []
    budgets = {
        runners.job_namespace: ("jobs", runners.budgets.jobs),
        runners.dind_namespace: ("dind", runners.budgets.dind),
    }
    totals: dict[str, dict[str, Fraction]] = {ns: {} for ns in budgets}
    for name, spec in enabled_types(runners):
        namespace = job_namespace_of(runners, name)
        key, budget = budgets[namespace]
        path = ("runners", "types", name)
        problems += _container_max_problems(path, spec, budget, key)
        slots = spec.concurrent * spec.replicas
        per_job = _pod_totals(spec)
        total = totals[namespace]
        for item, amount in per_job.items():
            total[item] = total.get(item, Fraction(0)) + slots * amount
        total["pods"] = total.get("pods", Fraction(0)) + slots
    for namespace, total in totals.items():
        key, budget = budgets[namespace]
        users = [n for n, _ in enabled_types(runners) if job_namespace_of(runners, n) == namespace]
        for item, amount in sorted(total.items()):
            hard = budget.quota.get(item)  # type: ignore[call-overload]
            if hard is not None and amount > _q(hard):
                problems.append(
                    (
                        ("runners", "budgets", key, "quota", item),
                        f"is below what {', '.join(users)} need at full concurrency "
                        f"({_show(amount)} = concurrent x replicas x per-job {item}); jobs past "
                        "the quota fail instead of waiting. Raise it or lower concurrent",
                        hard,
                    )
                )
    return problems


def _pod_totals(spec: RunnerType) -> dict[str, Fraction]:
    """Requests and limits of one job pod: build + helper + counted services."""
    out: dict[str, Fraction] = {}
    for kind in ("request", "limit"):
        for resource in _RESOURCES:
            field = f"{resource}_{kind}"
            amount = _q(getattr(spec.job, field)) + _q(getattr(spec.helper, field))
            amount += spec.services_per_job * _q(getattr(spec.service, field))
            out[f"{kind}s.{resource}"] = amount
    return out


def _container_max_problems(
    path: tuple[str, ...], spec: RunnerType, budget: Budget, key: str
) -> Problems:
    problems: Problems = []
    for resource in _RESOURCES:
        ceiling = budget.max.get(resource)  # type: ignore[call-overload]
        containers = {
            "job": spec.job,
            "helper": spec.helper,
            **({"service": spec.service} if spec.services_per_job else {}),
        }
        for part, res in containers.items():
            request = getattr(res, f"{resource}_request")
            limit = getattr(res, f"{resource}_limit")
            if _q(request) > _q(limit):
                problems.append(
                    (
                        (*path, part, f"{resource}_request"),
                        f"exceeds {part}.{resource}_limit ({limit})",
                        request,
                    )
                )
            if ceiling is not None and _q(limit) > _q(ceiling):
                problems.append(
                    (
                        (*path, part, f"{resource}_limit"),
                        f"is above runners.budgets.{key}.max.{resource} ({ceiling}), so the "
                        "LimitRange rejects the pod",
                        limit,
                    )
                )
        for kind in ("request", "limit"):
            field = f"{resource}_{kind}"
            value = getattr(spec.job_ceilings, field)
            if value is None:
                continue
            if _q(value) < _q(getattr(spec.job, field)):
                problems.append(
                    (
                        (*path, "job_ceilings", field),
                        f"is below the default job.{field} ({getattr(spec.job, field)})",
                        value,
                    )
                )
            if ceiling is not None and _q(value) > _q(ceiling):
                problems.append(
                    (
                        (*path, "job_ceilings", field),
                        f"is above runners.budgets.{key}.max.{resource} ({ceiling}), so jobs "
                        "asking for it are rejected",
                        value,
                    )
                )
    return problems


def _show(amount: Fraction) -> str:
    return str(int(amount)) if amount.denominator == 1 else f"{float(amount):g}"


def _cleanup_problems(runners: Runners) -> Problems:
    cleanup = runners.cleanup
    if not cleanup.enabled:
        return []
    problems: Problems = []
    max_age = parse_duration(cleanup.max_age)
    for name, spec in enabled_types(runners):
        longest = spec.gitlab.maximum_timeout + spec.poll_timeout
        if runners.token_source == "gitlab_api" and max_age <= longest:
            problems.append(
                (
                    ("runners", "cleanup", "max_age"),
                    f"must exceed runners.types.{name} gitlab.maximum_timeout + poll_timeout "
                    f"({longest} s), or the cleanup deletes running jobs",
                    cleanup.max_age,
                )
            )
    if parse_duration(cleanup.finished_after) >= max_age:
        problems.append(
            (
                ("runners", "cleanup", "finished_after"),
                f"must be shorter than runners.cleanup.max_age ({cleanup.max_age})",
                cleanup.finished_after,
            )
        )
    return problems


def _cache_problems(cache: RunnerCache) -> Problems:
    if not cache.enabled:
        return []
    return [
        (("runners", "cache", key), "is required when the runner cache is enabled", None)
        for key in ("server_address", "bucket")
        if getattr(cache, key) is None
    ]


def _agent_problems(runners: Runners) -> Problems:
    problems: Problems = []
    own = {runners.namespace, runners.job_namespace, runners.dind_namespace}
    for index, grant in enumerate(runners.agent_access):
        path = ("runners", "agent_access", str(index))
        if (grant.project_id is None) == (grant.group_id is None):
            problems.append(
                (path, "give exactly one of project_id or group_id", grant.model_dump())
            )
        for namespace in grant.namespaces or ():
            if namespace not in own:
                problems.append(
                    (
                        (*path, "namespaces"),
                        f"only the runner namespaces ({', '.join(sorted(own))}) are this "
                        "stack's to grant",
                        namespace,
                    )
                )
    return problems


def wiring_caches(config: OrganizationConfig) -> list[str]:
    """Caches nix jobs use: those listed (default: every declared cache; without a token, every
    declared public cache)."""
    wiring, declared = config.runners.attic, config.attic.caches
    if wiring.caches is not None:
        return list(wiring.caches)
    return [c.name for c in declared if c.public or wiring.token is not None]


def attic_wiring_active(config: OrganizationConfig) -> bool:
    """Whether nix jobs get Attic caches: wiring on, nix runner on, some cache to use."""
    runners = config.runners
    return runners.attic.enabled and runners.types.nix.enabled and bool(wiring_caches(config))


def _attic_wiring_problems(config: OrganizationConfig) -> Problems:
    from stacks.config import token_can_push, token_secret

    runners, attic = config.runners, config.attic
    wiring = runners.attic
    if not attic_wiring_active(config):
        return []
    path = ("runners", "attic")
    declared = [cache.name for cache in attic.caches]
    problems: Problems = []
    caches = wiring_caches(config)
    problems += [
        ((*path, "caches"), f"is not declared in attic.caches ({', '.join(declared)})", name)
        for name in caches
        if name not in declared
    ]
    if wiring.endpoint == "public" and not attic.ingress.enabled:
        problems.append(
            ((*path, "endpoint"), "'public' needs attic.ingress.enabled", wiring.endpoint)
        )
    if wiring.token is None:
        if wiring.push_cache is not None:
            problems.append(
                ((*path, "push_cache"), "pushing needs runners.attic.token", wiring.push_cache)
            )
        private = [c.name for c in attic.caches if c.name in caches and not c.public]
        if private:
            problems.append(
                (
                    (*path, "token"),
                    f"caches {', '.join(private)} are private, so nix jobs need a token that "
                    "may pull them",
                    None,
                )
            )
        return problems
    token = next((t for t in attic.tokens if t.name == wiring.token), None)
    if token is None:
        have = ", ".join(t.name for t in attic.tokens) or "none"
        return [
            *problems,
            ((*path, "token"), f"names no attic.tokens entry ({have})", wiring.token),
        ]
    namespace, _ = token_secret(attic, token)
    if namespace != runners.job_namespace:
        problems.append(
            (
                (*path, "token"),
                f"its Secret is delivered to {namespace}, and nix jobs run in "
                f"{runners.job_namespace}; set attic.tokens[{wiring.token}].namespace to it",
                wiring.token,
            )
        )
    push = wiring.push_cache or caches[0]
    if push not in caches:
        problems.append(((*path, "push_cache"), "must be one of runners.attic.caches", push))
    elif not token_can_push(token, push):
        problems.append(
            (
                (*path, "token"),
                f"token '{token.name}' cannot pull and push '{push}' (atticd uses the exact "
                "entry, else the first matching wildcard)",
                wiring.token,
            )
        )
    return problems
