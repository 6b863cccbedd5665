"""What the nix runner's ``[[runners]]`` entry needs so that jobs pull from and push to Attic.

Pull: a static ``NIX_CONFIG`` puts the Attic caches before cache.nixos.org (a lower substituter
priority), and ``pre_build_script`` sources ``setup.sh`` in the job's own shell, which fetches
each cache's public key from atticd and adds it, with a netrc for the token, to ``NIX_CONFIG``.
Keys are read at job start, so a regenerated keypair or a new cache needs no redeploy.
Push: the token Secret is mounted read-only and jobs run ``flywheel.sh start``/``stop`` around
the build (watch-store in the background, a final push, never failing the build).

The token Secret is written by attic-<env>, which applies after runners-<env>, so its volume is
optional: until the Secret exists a nix job starts anyway, pulls public caches anonymously and
pushes nothing (setup.sh says so). gitlab-runner 19.3 has no ``optional`` key for secret volumes
(``common/config.go`` ``KubernetesSecret``), so a strategic-merge ``pod_spec`` patch adds it
(``executors/kubernetes/kubernetes.go`` ``applyPodSpecMerge``, behind
FF_USE_ADVANCED_POD_SPEC_CONFIGURATION; a feature flag set in the runner's TOML wins over job
variables).

The volume keys are gitlab-runner's ``KubernetesConfigMap``/``KubernetesSecret`` TOML tags
(``name``, ``mount_path``, ``sub_path``, ``read_only``, ``items``); ``name`` is both the
volume's name and the ConfigMap's or Secret's, so it must be a DNS label and the two differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from constructs_lib.runners.runner_toml import POD_SPEC_FLAG
from constructs_lib.validation import check_dns_label, raise_if_problems
from upstream_formats.attic_names import NAME_RULE, is_cache_name

__all__ = [
    "FLYWHEEL_DIR",
    "FLYWHEEL_SCRIPT",
    "SETUP_SCRIPT",
    "TOKEN_DIR",
    "TOKEN_KEY",
    "FlywheelJobSettings",
    "flywheel_job_settings",
]

FLYWHEEL_DIR = "/opt/attic-flywheel"
"""Where job pods mount the scripts' ConfigMap."""
TOKEN_DIR = "/run/attic-token"
"""Where job pods mount the Attic token Secret."""
TOKEN_KEY = "token"
"""The token Secret's data key."""
SETUP_SCRIPT = "setup.sh"
"""The script ``pre_build_script`` sources."""
FLYWHEEL_SCRIPT = "flywheel.sh"
"""The script jobs run around their build (``start``, ``stop``)."""
# cache.nixos.org's priority; Nix asks substituters in ascending priority order.
NIXOS_CACHE_PRIORITY = 40


@dataclass(frozen=True, kw_only=True, slots=True)
class FlywheelJobSettings:
    """Settings to merge into the nix runner's ``[[runners]]`` entry.

    Attributes:
        environment: ``KEY=value`` entries for ``environment``.
        pre_build_script: the ``pre_build_script`` line (sources ``setup.sh``).
        volumes: ``[runners.kubernetes.volumes]`` entries by kind (``config_map``, and
            ``secret`` when there is a token), each a tuple of TOML tables.
        feature_flags: ``[runners.feature_flags]`` entries the settings need. Default - none.
        pod_spec: ``[[runners.kubernetes.pod_spec]]`` tables (the optional token volume).
            Default - none.
    """

    environment: tuple[str, ...]
    pre_build_script: str
    volumes: Mapping[str, tuple[dict[str, Any], ...]]
    feature_flags: Mapping[str, bool] = field(default_factory=dict)
    pod_spec: tuple[dict[str, str], ...] = ()


def flywheel_job_settings(
    *,
    endpoint: str,
    caches: Sequence[str],
    push_cache: str | None,
    token_secret: str | None,
    config_map: str,
    priority: int = 30,
) -> FlywheelJobSettings:
    """Runner settings for Nix jobs that use the Attic caches.

    Args:
        endpoint: atticd's API base URL ending in ``/``; the substituter of a cache is
            ``<endpoint><cache>``.
        caches: caches to pull from, most preferred first.
        push_cache: the cache jobs push to (one of ``caches``), or None for pull only.
        token_secret: Secret in the job namespace with key ``token`` (pull, and push when
            ``push_cache`` is set), or None for public caches only.
        config_map: the ConfigMap holding the scripts (:class:`AtticFlywheelScripts`).
        priority: substituter priority of the caches, below cache.nixos.org's 40 so Attic is
            asked first. Default 30.

    Example:
        ```python
        from constructs_lib.kubernetes.resources import ComputeResources
        from constructs_lib.runners.attic_flywheel import flywheel_job_settings
        from constructs_lib.runners.runner_toml import RunnerTomlProps, render_runner_config

        flywheel = flywheel_job_settings(
            endpoint="https://cache.example.com/",
            caches=["main"],
            push_cache="main",
            token_secret="attic-ci-token",
            config_map="attic-flywheel",
        )
        small = ComputeResources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
        )
        toml = render_runner_config(
            RunnerTomlProps(
                name="nix",
                runner_type="nix",
                job_namespace="ci-nix",
                image="docker.io/nixos/nix:2.34.8",
                limit=4,
                build=small,
                helper=small,
                service=small,
                environment=flywheel.environment,
                pre_build_script=flywheel.pre_build_script,
                volumes=flywheel.volumes,
                pod_spec=flywheel.pod_spec,
                feature_flags=flywheel.feature_flags,
            )
        )
        ```
    """
    raise_if_problems(
        "flywheel_job_settings",
        _problems(
            endpoint=endpoint,
            caches=caches,
            push_cache=push_cache,
            token_secret=token_secret,
            config_map=config_map,
            priority=priority,
        ),
    )
    token_file = f"{TOKEN_DIR}/{TOKEN_KEY}"
    substituters = " ".join(f"{endpoint}{cache}?priority={priority}" for cache in caches)
    nix_config = "\n".join(
        [
            "extra-experimental-features = nix-command flakes",
            f"extra-substituters = {substituters}",
            # An unreachable or broken cache must not fail a build: build it instead.
            "fallback = true",
            "connect-timeout = 5",
        ]
    )
    environment = [f"ATTIC_ENDPOINT={endpoint}", f"ATTIC_CACHES={' '.join(caches)}"]
    if push_cache is not None:
        environment.append(f"ATTIC_PUSH_CACHE={push_cache}")
    if token_secret is not None:
        environment.append(f"ATTIC_TOKEN_FILE={token_file}")
    environment.append(f"NIX_CONFIG={nix_config}")
    setup = f"{FLYWHEEL_DIR}/{SETUP_SCRIPT}"
    volumes: dict[str, tuple[dict[str, Any], ...]] = {
        "config_map": ({"name": config_map, "mount_path": FLYWHEEL_DIR, "read_only": True},)
    }
    flags: dict[str, bool] = {}
    pod_spec: tuple[dict[str, str], ...] = ()
    if token_secret is not None:
        volumes["secret"] = (
            {
                "name": token_secret,
                "mount_path": TOKEN_DIR,
                "read_only": True,
                "items": {TOKEN_KEY: TOKEN_KEY},
            },
        )
        # The runner names the volume after its Secret; the patch merges into it by name.
        optional = {"name": token_secret, "secret": {"secretName": token_secret, "optional": True}}
        flags[POD_SPEC_FLAG] = True
        pod_spec = (
            {
                "name": "attic-token-optional",
                "patch_type": "strategic",
                "patch": json.dumps({"volumes": [optional]}),
            },
        )
    return FlywheelJobSettings(
        environment=tuple(environment),
        # A missing script must not end the job's shell (`.` of a missing file would).
        pre_build_script=f"if [ -r {setup} ]; then . {setup}; fi",
        volumes=volumes,
        feature_flags=flags,
        pod_spec=pod_spec,
    )


def _problems(
    *,
    endpoint: str,
    caches: Sequence[str],
    push_cache: str | None,
    token_secret: str | None,
    config_map: str,
    priority: int,
) -> list[str]:
    problems = [
        ""
        if endpoint.startswith(("http://", "https://"))
        and endpoint.endswith("/")
        and not any(c.isspace() for c in endpoint)
        else f"endpoint: {endpoint!r} must be an http(s) URL ending in '/'",
        "" if caches else "caches: at least one cache is needed",
        "caches: must be a list of names, not one string" if isinstance(caches, str) else "",
        *(
            f"caches: {c!r} is not a cache name ({NAME_RULE})"
            for c in caches
            if not is_cache_name(c)
        ),
        *(f"caches: {c!r} is listed twice" for c in sorted(set(caches)) if caches.count(c) > 1),
        check_dns_label("config_map", config_map),
        ""
        if 0 < priority < NIXOS_CACHE_PRIORITY
        else f"priority: {priority} must be 1-{NIXOS_CACHE_PRIORITY - 1}, below cache.nixos.org's "
        f"{NIXOS_CACHE_PRIORITY}, so that Attic is asked first",
    ]
    if token_secret is not None:
        problems.append(check_dns_label("token_secret", token_secret))
        if token_secret == config_map:
            problems.append(
                f"token_secret: {token_secret!r} is also config_map; gitlab-runner names each "
                "volume after its object, so the two must differ"
            )
    if push_cache is not None:
        if push_cache not in caches:
            problems.append(f"push_cache: {push_cache!r} is not one of caches {list(caches)}")
        if token_secret is None:
            problems.append(f"push_cache: pushing to {push_cache!r} needs a token_secret")
    return problems
