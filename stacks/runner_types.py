"""What one runner type's manager is configured with: the settings of its runner TOML (image,
resources, tolerations, services, volumes, the S3 cache) and, for the two nix types, the Attic
flywheel wiring. :mod:`stacks.runners` builds a manager per enabled type from them.
"""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from constructs import Construct

from config_model.loader import ResolvedEnvironment
from config_model.runners import RunnerType
from config_model.wiring import NIX_TYPES, attic_wiring_active, nix_attic, wiring_caches
from constructs_lib.attic.attic_server import SERVICE_PORT
from constructs_lib.runners.attic_flywheel import FlywheelJobSettings, flywheel_job_settings
from constructs_lib.runners.flywheel_scripts import AtticFlywheelScripts, AtticFlywheelScriptsProps
from constructs_lib.runners.runner_toml import JobToleration, RunnerTomlProps, S3Cache
from constructs_lib.versions import (
    ALPINE_IMAGE,
    DOCKER_CLI_IMAGE,
    DOCKER_DIND_IMAGE,
    NIX_IMAGE,
    ROCKY8_IMAGE,
    ROCKY9_IMAGE,
    ImagePin,
)
from stacks.attic_endpoints import api_endpoint
from stacks.attic_storage import compute, image_pin

DEFAULT_IMAGES: dict[str, ImagePin] = {
    "docker": ALPINE_IMAGE,
    "dind": DOCKER_CLI_IMAGE,
    "nix": NIX_IMAGE,
    "nix_protected": NIX_IMAGE,
    "rocky8": ROCKY8_IMAGE,
    "rocky9": ROCKY9_IMAGE,
}
DIND_CERTS = "/certs/client"


def attic_flywheel(
    scope: Construct, env: ResolvedEnvironment, job_ns: str
) -> tuple[dict[str, FlywheelJobSettings], ConfigMapV1 | None]:
    """The Attic settings of each enabled nix runner type (the same caches, each type's own
    token and push cache) and the scripts' ConfigMap their jobs mount; ``({}, None)`` when nix
    jobs do not use Attic."""
    runners, attic = env.config.runners, env.config.attic
    wiring = runners.attic
    if not attic_wiring_active(env.config):
        return {}, None
    caches = wiring_caches(env.config)
    scripts = AtticFlywheelScripts(
        scope, "AtticFlywheel", AtticFlywheelScriptsProps(name="attic-flywheel", namespace=job_ns)
    )
    if wiring.endpoint == "in_cluster":
        port = "" if SERVICE_PORT == 80 else f":{SERVICE_PORT}"
        endpoint = f"http://attic.{attic.namespace}.svc.cluster.local{port}/"
    else:
        endpoint = api_endpoint(env)
    from config_model.attic import token_secret

    secrets = {token.name: token_secret(attic, token)[1] for token in attic.tokens}
    settings = {}
    for name in NIX_TYPES:
        if not getattr(runners.types, name).enabled:
            continue
        mounted = nix_attic(env.config, name)
        settings[name] = flywheel_job_settings(
            endpoint=endpoint,
            caches=caches,
            push_cache=mounted.push_cache,
            token_secret=secrets[mounted.token] if mounted.token else None,
            config_map=scripts.name,
            priority=wiring.priority,
        )
    return settings, scripts.config_map


def runner_toml_props(
    env: ResolvedEnvironment,
    name: str,
    *,
    spec: RunnerType,
    job_ns: str,
    priority_class: str,
    flywheel: FlywheelJobSettings | None,
) -> RunnerTomlProps:
    """The runner TOML settings of type ``name``, its jobs running in ``job_ns``."""
    config = env.config
    runners = config.runners
    environment: list[str] = []
    volumes: dict[str, list[dict[str, Any]]] = {}
    services: list[dict[str, Any]] = []
    pre_build = None
    pod_spec: tuple[dict[str, str], ...] = ()
    flags: dict[str, bool] = {}
    if name == "dind":
        # The daemon runs as a service container in the job pod, reached on localhost with
        # TLS; the client certificates are shared through a memory-backed volume.
        environment += [
            "DOCKER_HOST=tcp://docker:2376",
            "DOCKER_TLS_CERTDIR=/certs",
            "DOCKER_TLS_VERIFY=1",
            f"DOCKER_CERT_PATH={DIND_CERTS}",
        ]
        services.append({"name": DOCKER_DIND_IMAGE.ref, "alias": "docker"})
        volumes["empty_dir"] = [
            {
                "name": "docker-certs",
                "mount_path": DIND_CERTS,
                "medium": "Memory",
                "size_limit": "1Mi",
            }
        ]
    if flywheel is not None:
        environment += flywheel.environment
        pre_build = flywheel.pre_build_script
        for kind, entries in flywheel.volumes.items():
            volumes.setdefault(kind, []).extend(entries)
        pod_spec = flywheel.pod_spec
        flags.update(flywheel.feature_flags)
    cache = runners.cache
    return RunnerTomlProps(
        name=f"{config.organization.name}-{env.name}-{name}",
        runner_type=name,
        job_namespace=job_ns,
        image=image_pin(spec.image, DEFAULT_IMAGES[name]).ref,
        limit=spec.concurrent,
        build=compute(spec.job),
        helper=compute(spec.helper),
        service=compute(spec.service),
        ceilings={k: v for k, v in spec.job_ceilings.model_dump().items() if v is not None},
        privileged_services=spec.privileged,
        services=services,
        poll_timeout=spec.poll_timeout,
        node_selector=spec.jobs.node_selector,
        tolerations=[
            JobToleration(
                key=t.key or "",
                value=t.value if t.operator == "Equal" else None,
                effect=t.effect or "",
            )
            for t in spec.jobs.tolerations
        ],
        priority_class=priority_class,
        allowed_images=spec.allowed_images,
        namespace_per_job=spec.namespace_per_job,
        environment=environment,
        pre_build_script=pre_build,
        volumes=volumes,
        pod_spec=pod_spec,
        feature_flags=flags,
        cache=S3Cache(
            server_address=cache.server_address or "",
            bucket=cache.bucket or "",
            bucket_location=cache.bucket_location,
            insecure=cache.insecure,
            path=cache.path,
            shared=cache.shared,
            authentication="iam" if cache.credentials == "workload_identity" else "access-key",
        )
        if cache.enabled
        else None,
    )
