"""Rules of the ``runners:`` section that span several keys (and the Attic caches and tokens nix
jobs use), as ``(path, message, value)`` problems."""

from __future__ import annotations

from fractions import Fraction

from config_model.attic import token_can_push, token_secret
from config_model.base import (
    Problems,
)
from config_model.organization import OrganizationConfig
from config_model.runners import (
    Budget,
    RunnerCache,
    Runners,
    RunnerType,
    default_type,
    enabled_types,
    job_namespace_of,
    token_secret_of,
)
from config_model.wiring import NIX_TYPES, attic_wiring_active, nix_attic, wiring_caches
from upstream_formats.humantime import parse_duration
from upstream_formats.k8s_quantity import parse_quantity

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
            if spec.gitlab != default_type(name).gitlab
        ]
        return problems
    protected = runners.types.nix_protected
    if protected.enabled and protected.gitlab.access_level != "ref_protected":
        problems.append(
            (
                ("runners", "types", "nix_protected", "gitlab", "access_level"),
                "the runner that gets the Attic push token takes only jobs of protected "
                "branches and tags; allowed: ref_protected",
                protected.gitlab.access_level,
            )
        )
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
        secret = token_secret_of(name, spec)
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


def _attic_wiring_problems(config: OrganizationConfig) -> Problems:
    runners, attic = config.runners, config.attic
    wiring = runners.attic
    path = ("runners", "attic")
    if wiring.enabled and wiring.unprotected_push and wiring.token is None:
        return [((*path, "unprotected_push"), "needs runners.attic.token", True)]
    if not attic_wiring_active(config):
        return []
    declared = [cache.name for cache in attic.caches]
    caches = wiring_caches(config)
    problems: Problems = [
        ((*path, "caches"), f"is not declared in attic.caches ({', '.join(declared)})", name)
        for name in caches
        if name not in declared
    ]
    if wiring.endpoint == "public" and not attic.ingress.enabled:
        problems.append(
            ((*path, "endpoint"), "'public' needs attic.ingress.enabled", wiring.endpoint)
        )
    private = [c.name for c in attic.caches if c.name in caches and not c.public]
    if wiring.token is None and private:
        problems.append(
            (
                (*path, "token"),
                f"caches {', '.join(private)} are private, so nix jobs need a token that "
                "may pull them (a read_only token)",
                None,
            )
        )
    pushes = any(nix_attic(config, name).push_cache for name in NIX_TYPES)
    if wiring.push_cache is not None and not pushes:
        problems.append(
            (
                (*path, "push_cache"),
                "pushing needs runners.attic.push_token (or unprotected_push with a token)",
                wiring.push_cache,
            )
        )
    if wiring.push_token is not None and not runners.types.nix_protected.enabled:
        problems.append(
            (
                (*path, "push_token"),
                "is mounted only into nix_protected jobs, and runners.types.nix_protected is "
                "disabled; enable it, or use unprotected_push (jobs of every ref push)",
                wiring.push_token,
            )
        )
    for key, pushing in (("token", wiring.unprotected_push), ("push_token", True)):
        name = getattr(wiring, key)
        if name is not None:
            problems += _wiring_token_problems(config, key, name, pushing=pushing)
    return problems


def _wiring_token_problems(
    config: OrganizationConfig, key: str, name: str, *, pushing: bool
) -> Problems:
    """A token nix jobs mount: declared, delivered to their namespace, able to push the push
    cache when it is a pushing token, and unable to push anything when it is not."""
    runners, attic = config.runners, config.attic
    wiring, path = runners.attic, ("runners", "attic", key)
    token = next((t for t in attic.tokens if t.name == name), None)
    if token is None:
        have = ", ".join(t.name for t in attic.tokens) or "none"
        return [(path, f"names no attic.tokens entry ({have})", name)]
    problems: Problems = []
    namespace, _ = token_secret(attic, token)
    if namespace != runners.job_namespace:
        problems.append(
            (
                path,
                f"its Secret is delivered to {namespace}, and nix jobs run in "
                f"{runners.job_namespace}; set attic.tokens[{name}].namespace to it",
                name,
            )
        )
    caches = wiring_caches(config)
    push = wiring.push_cache or caches[0]
    if pushing and push not in caches:
        problems.append(
            (("runners", "attic", "push_cache"), "must be one of runners.attic.caches", push)
        )
    elif pushing and not token_can_push(token, push):
        problems.append(
            (
                path,
                f"token '{token.name}' cannot pull and push '{push}' (atticd uses the exact "
                "entry, else the first matching wildcard)",
                name,
            )
        )
    if not pushing and runners.types.nix.enabled:
        writable = [cache for cache in caches if token_can_push(token, cache)]
        if writable:
            problems.append(
                (
                    path,
                    f"token '{token.name}' may push {', '.join(writable)}, and every nix job "
                    "mounts it, merge requests and unprotected branches included: anyone "
                    "who can push a branch could poison the cache. Give a read_only token "
                    "here and the pushing one as runners.attic.push_token (mounted only into "
                    "nix_protected jobs), or set runners.attic.unprotected_push: true",
                    name,
                )
            )
    return problems
