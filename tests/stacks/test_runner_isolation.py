"""Who can write the cache every consumer trusts, and where privileged jobs run, computed the
way GitLab, gitlab-runner, atticd and the scheduler decide it from what the stacks emit.

- GitLab gives a runner with access level ``ref_protected`` only jobs of protected branches
  and tags; any other runner takes jobs of every ref that carry its tags
  (``app/services/ci/queue/build_queue_service.rb``: ``builds_for_protected_runner`` is
  ``relation.ref_protected``, applied only for protected runners).
- atticd grants a token's permissions for a cache from the exact pattern, else the first
  matching wildcard (``upstream_formats.attic_tokens.resolve_permissions``, checked against
  attic's own test vectors).
- gitlab-runner turns ``node_tolerations`` ``"k=v" = effect`` into a toleration with operator
  Equal and ``"k" = effect`` into Exists (``common/config.go`` ``GetNodeTolerations``); the
  scheduler lets a pod onto a node only if a toleration matches each NoSchedule taint.
"""

from __future__ import annotations

from typing import Any

from config_model.attic import token_secret
from config_model.loader import EXAMPLE_CONFIG, ResolvedEnvironment, load_config
from config_model.runners import DIND_POOL, DIND_POOL_KEY
from tests.conftest import DATA
from tests.support.synth_output import (
    SynthOutput,
    resources,
    runner_configs,
    runner_stacks,
)
from upstream_formats.attic_tokens import NAMESPACE, build_claims, resolve_permissions

DIND_TAINT = {"key": DIND_POOL_KEY, "value": DIND_POOL, "effect": "NoSchedule"}


def _environments() -> dict[str, ResolvedEnvironment]:
    return {
        name: env
        for path in (EXAMPLE_CONFIG, DATA / "variants.yaml")
        for name, env in load_config(path).environments.items()
    }


def _access_levels(doc: dict[str, Any]) -> dict[str, str]:
    """Runner-token Secret resource -> the GitLab access level of the runner it belongs to."""
    levels = {}
    for name, secret in resources(doc, "kubernetes_secret_v1").items():
        token = secret.get("data", {}).get("runner-token", "")
        if token.startswith("${gitlab_user_runner."):
            runner = token.removeprefix("${gitlab_user_runner.").split(".")[0]
            levels[name] = resources(doc, "gitlab_user_runner")[runner]["access_level"]
    return levels


def _can_push(env: ResolvedEnvironment, secret_name: str, cache: str) -> bool:
    attic = env.config.attic
    (token,) = [t for t in attic.tokens if token_secret(attic, t)[1] == secret_name]
    claims = build_claims(sub="x", validity=1, now=0, grants=token.permissions.model_dump())
    granted, _ = resolve_permissions(claims[NAMESPACE]["caches"], cache)
    return bool(granted["push"])


def test_only_jobs_of_protected_refs_can_push_to_the_cache(all_synths: list[SynthOutput]):
    envs = _environments()
    checked = pushers = 0
    for synth in all_synths:
        for stack, doc in runner_stacks(synth):
            env = envs[stack.split("-", 1)[1]]
            levels = _access_levels(doc)
            for kind, (values, entry) in runner_configs(doc).items():
                variables = dict(item.split("=", 1) for item in entry.get("environment", []))
                mounted = entry.get("kubernetes", {}).get("volumes", {}).get("secret", [])
                if "ATTIC_CACHES" not in variables or not mounted:
                    continue
                (token,) = [volume["name"] for volume in mounted]
                writable = [
                    cache
                    for cache in variables["ATTIC_CACHES"].split()
                    if _can_push(env, token, cache)
                ]
                secret = values["runners"]["secret"]
                level = levels.get(secret.removeprefix("${kubernetes_secret_v1.").split(".")[0])
                checked += 1
                if "ATTIC_PUSH_CACHE" in variables:
                    pushers += 1
                    assert variables["ATTIC_PUSH_CACHE"] in writable, (stack, kind)
                if env.config.runners.attic.unprotected_push:
                    continue  # the documented opt-out; synth warns about it
                # A runner GitLab gives unprotected jobs to must hold a token atticd refuses
                # every push with; the one that pushes takes protected refs only.
                if writable:
                    assert kind == "nix_protected", (stack, kind, token, writable)
                    assert level in ("ref_protected", None), (stack, kind, level)
                if level == "not_protected":
                    assert writable == [], (stack, kind, token, writable)
    assert checked >= 8
    assert pushers >= 4


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' rule: same effect (or none), and the key matches with Exists, or the key
    and value match with Equal; an empty key with Exists tolerates every taint."""
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", taint["effect"]):
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if toleration.get("key") in (None, "", taint["key"]):
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value") == taint["value"]:
            return True
    return False


def _runner_tolerations(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """gitlab-runner's node_tolerations table as the Kubernetes tolerations it creates."""
    out = []
    for key, effect in entry.get("kubernetes", {}).get("node_tolerations", {}).items():
        if "=" in key:
            name, value = key.split("=", 1)
            out.append({"key": name, "operator": "Equal", "value": value, "effect": effect})
        else:
            out.append({"key": key, "operator": "Exists", "effect": effect})
    return out


def _tolerations_in(value: Any) -> list[dict[str, Any]]:
    """Every toleration anywhere in a resource: pod templates of Deployments, Jobs, CronJobs
    (``toleration`` blocks) and custom resources such as CNPG's Cluster (``tolerations``)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("toleration", "tolerations") and isinstance(item, list):
                found += item
            else:
                found += _tolerations_in(item)
    elif isinstance(value, list):
        for item in value:
            found += _tolerations_in(item)
    return found


def test_dind_job_pods_run_alone_on_their_tainted_nodes(all_synths: list[SynthOutput]):
    envs = _environments()
    dedicated = 0
    for synth in all_synths:
        for stack, doc in synth.stacks():
            env = envs[stack.split("-", 1)[1]]
            placement = env.config.runners.types.dind.jobs
            if stack.startswith("runners-"):
                for kind, (_, entry) in runner_configs(doc).items():
                    tolerates = _tolerates(_runner_tolerations(entry), DIND_TAINT)
                    selector = entry.get("kubernetes", {}).get("node_selector", {})
                    if kind == "dind" and placement.node_selector:
                        dedicated += 1
                        assert selector.get(DIND_POOL_KEY) == DIND_POOL, stack
                        assert tolerates, stack
                    elif kind != "dind":
                        assert not tolerates, (stack, kind)
            for rtype, items in doc.get("resource", {}).items():
                if rtype == "helm_release":
                    continue  # the runner managers and operators; their job pods are above
                for name, item in items.items():
                    assert not _tolerates(_tolerations_in(item), DIND_TAINT), (stack, name)
    assert dedicated >= 5


def test_dind_placement_is_the_default_and_can_be_given_up_explicitly():
    envs = _environments()
    assert dict(envs["prod"].config.runners.types.dind.jobs.node_selector) == {
        DIND_POOL_KEY: DIND_POOL
    }
    assert envs["external"].config.runners.types.dind.jobs.node_selector == {}
