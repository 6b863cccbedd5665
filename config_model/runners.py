"""The ``runners:`` section: GitLab runner managers per type, their job namespaces, tokens,
budgets, cleanup and the nix runner's Attic wiring."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from config_model.base import (
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

RunnerTypeName = Literal["docker", "dind", "nix", "nix_protected", "rocky8", "rocky9"]
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
        "nix, nix-protected, rocky8, rocky9), so a job that names one type never lands on "
        "another.",
    )
    run_untagged: bool = Field(default=False, description="Also run jobs without tags.")
    locked: bool = Field(
        default=False, description="Project runners only: cannot be enabled for other projects."
    )
    access_level: Literal["not_protected", "ref_protected"] = Field(
        default="not_protected",
        description="'ref_protected': only jobs on protected branches and tags (the default, "
        "and the only value allowed, for nix_protected).",
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

    Defaults that differ per type come from TYPE_DEFAULTS (shown in each description). A
    ``manager`` or ``jobs`` placement given here replaces the type's default as a whole.
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
        description="Job pod placement (separate, so a job node pool can scale to zero). dind "
        "default: nodes labelled and tainted attic-iac.io/pool=ci-dind (NoSchedule), so "
        "privileged pods never share a node with Postgres, atticd or other jobs; {} runs them "
        "anywhere.",
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


# The node label and taint that keep privileged dind job pods on nodes of their own.
DIND_POOL_KEY = "attic-iac.io/pool"
DIND_POOL = "ci-dind"
_NIX: dict[str, Any] = {
    "job": _resources("1", "2Gi", "4", "8Gi"),
    "job_ceilings": {"cpu_limit": "8", "memory_limit": "16Gi"},
}
# Per-type defaults, deep-merged under what the config says for that type (a placement the
# config gives replaces the default one).
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
        "jobs": {
            "node_selector": {DIND_POOL_KEY: DIND_POOL},
            "tolerations": [
                {"key": DIND_POOL_KEY, "value": DIND_POOL, "effect": "NoSchedule"},
            ],
        },
    },
    "nix": _NIX,
    # Jobs of protected branches and tags only: the one type that gets the Attic push token.
    "nix_protected": {**_NIX, "gitlab": {"access_level": "ref_protected"}},
    "rocky8": {"job": _resources("250m", "512Mi", "2", "4Gi")},
    "rocky9": {"job": _resources("250m", "512Mi", "2", "4Gi")},
}


def default_type(name: str) -> RunnerType:
    """Type ``name`` as it is when the config says nothing about it."""
    return RunnerType(**copy.deepcopy(TYPE_DEFAULTS[name]))


class RunnerTypes(StrictModel):
    """The six runner types; each is on unless ``enabled: false``."""

    docker: RunnerType = Field(default_factory=lambda: default_type("docker"))
    dind: RunnerType = Field(default_factory=lambda: default_type("dind"))
    nix: RunnerType = Field(default_factory=lambda: default_type("nix"))
    nix_protected: RunnerType = Field(
        default_factory=lambda: default_type("nix_protected"),
        description="Nix jobs of protected branches and tags (GitLab access level "
        "ref_protected, tag nix-protected): the only jobs that get runners.attic.push_token.",
    )
    rocky8: RunnerType = Field(default_factory=lambda: default_type("rocky8"))
    rocky9: RunnerType = Field(default_factory=lambda: default_type("rocky9"))

    @model_validator(mode="before")
    @classmethod
    def _type_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            name: _with_defaults(name, value)
            if name in TYPE_DEFAULTS and isinstance(value, dict)
            else value
            for name, value in data.items()
        }

    def items(self) -> list[tuple[str, RunnerType]]:
        """(name, settings) of every type, in a fixed order."""
        return [(name, getattr(self, name)) for name in TYPE_DEFAULTS]


def _with_defaults(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """The type's defaults with ``value`` merged over them; a placement replaces the default
    one, since a node selector merged with ours would ask for both pools."""
    merged = deep_merge(copy.deepcopy(TYPE_DEFAULTS[name]), value)
    for key in ("manager", "jobs"):
        if key in value:
            merged[key] = value[key]
    return merged


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
    """The nix runners' Attic wiring: substituters, public keys and tokens (only when
    attic.caches declares caches).

    Pushes are signed by atticd with the key every consumer trusts, so only jobs of protected
    refs push: ``push_token`` goes to the nix_protected runner alone, and ``token``, which
    every nix job gets (merge requests and feature branches included), may only pull.
    """

    enabled: bool = True
    caches: list[CacheName] | None = Field(
        default=None, description="Caches used as substituters, in order. Default: all declared."
    )
    push_cache: CacheName | None = Field(
        default=None,
        description="Cache jobs push to. Default: the first cache when a push token is set.",
    )
    token: str | None = Field(
        default=None,
        description="attic.tokens entry mounted into every nix job, unprotected refs "
        "included; it may only pull (a read_only token) unless unprotected_push. Its Secret "
        "must live in runners.job_namespace. Unset: public caches only.",
    )
    push_token: str | None = Field(
        default=None,
        description="attic.tokens entry mounted only into nix_protected jobs (protected "
        "branches and tags); it must pull and push push_cache. Unset: nothing pushes.",
    )
    unprotected_push: bool = Field(
        default=False,
        description="Let every nix job push with 'token' (the old behaviour): anyone who can "
        "push a branch or open a merge request can then put store paths into the cache that "
        "every consumer trusts.",
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


def runner_slug(name: str) -> str:
    """A type's name in Kubernetes names and its default tag (``nix_protected`` ->
    ``nix-protected``)."""
    return name.replace("_", "-")


def token_secret_of(name: str, spec: RunnerType) -> str:
    """The Secret holding a type's runner token: the operator's own, else one named after it."""
    return spec.secret or f"gitlab-runner-{runner_slug(name)}-token"


def job_namespace_of(runners: Runners, name: str) -> str:
    """Where a type's job pods run: dind alone in its privileged namespace."""
    return runners.dind_namespace if name == "dind" else runners.job_namespace


def enabled_types(runners: Runners) -> list[tuple[str, RunnerType]]:
    return [(name, spec) for name, spec in runners.types.items() if spec.enabled]
