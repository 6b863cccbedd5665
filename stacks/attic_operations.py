"""attic-<env> operations: declared caches, rotated tokens, cache warming, the Bazel cache,
DNS and SLO alerts. Each part exists only when the config asks for it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from constructs import Construct

from config_model.attic import token_secret
from config_model.loader import ResolvedEnvironment
from constructs_lib.attic.attic_server import AtticServer
from constructs_lib.attic.cache_init import AtticCaches, AtticCachesProps, CacheSpec
from constructs_lib.attic.cache_warm import AtticCacheWarm, AtticCacheWarmProps
from constructs_lib.attic.ops_pod import AtticadmInputs
from constructs_lib.attic.pod import HTTP_PORT
from constructs_lib.attic.signing_key import AtticSigningKey
from constructs_lib.attic.signing_key_job import AtticSigningKeyJob
from constructs_lib.attic.token_rotation import (
    AtticTokenRotation,
    AtticTokenRotationProps,
    TokenSpec,
)
from constructs_lib.kubernetes.traffic_policy import (
    EVERY_NAMESPACE,
    Peer,
    Rule,
    TrafficPolicy,
    TrafficPolicyProps,
)
from constructs_lib.versions import NIX_IMAGE, OPS_PYTHON_IMAGE
from stacks.attic_endpoints import cache_client_egress
from stacks.attic_storage import StorageWiring, compute, image_pin
from upstream_formats.humantime import parse_duration

# The Kubernetes API server is not a pod; the rotation talks to it on these ports.
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True, slots=True)
class Operations:
    """What the stack outputs about the operations parts."""

    token_secrets: dict[str, str]
    bazel_grpc_url: str | None


def build_operations(
    scope: Construct,
    env: ResolvedEnvironment,
    *,
    namespace: str,
    server: AtticServer,
    signing: AtticSigningKey | AtticSigningKeyJob,
    in_cluster_url: str,
    storage: StorageWiring,
) -> Operations:
    attic = env.config.attic
    atticadm = AtticadmInputs(
        image=server.image,
        config_map=server.config_map_name,
        signing_secret=signing.secret_name,
        signing_key=signing.secret_key,
    )
    python = OPS_PYTHON_IMAGE.ref
    api = [Rule(peers=[Peer(pod_labels=server.api_labels)], ports=[HTTP_PORT])]
    if attic.caches:
        caches = AtticCaches(
            scope,
            "Caches",
            AtticCachesProps(
                namespace=namespace,
                caches=[
                    CacheSpec(
                        name=cache.name,
                        public=cache.public,
                        priority=cache.priority,
                        upstream_cache_key_names=tuple(cache.upstream_cache_key_names),
                        retention_seconds=None
                        if cache.retention is None
                        else int(parse_duration(cache.retention)),
                    )
                    for cache in attic.caches
                ],
                endpoint=in_cluster_url,
                attic=atticadm,
                python_image=python,
                depends_on=[server.api, server.service],
            ),
        )
        _egress(
            scope,
            "CacheInitPolicy",
            "attic-cache-init",
            namespace=namespace,
            labels=caches.labels,
            rules=api,
        )

    token_secrets: dict[str, str] = {}
    if attic.tokens:
        specs = []
        for token in attic.tokens:
            target, secret = token_secret(attic, token)
            token_secrets[token.name] = f"{target}/{secret}"
            specs.append(
                TokenSpec(
                    name=token.name,
                    namespace=target,
                    secret_name=secret,
                    validity_seconds=token.validity_seconds(),
                    rotate_before_seconds=token.rotate_before_seconds(),
                    grants=token.permissions.model_dump(),
                )
            )
        rotation = AtticTokenRotation(
            scope,
            "Tokens",
            AtticTokenRotationProps(
                namespace=namespace,
                tokens=specs,
                attic=atticadm,
                python_image=python,
                depends_on=[signing.ready],
            ),
        )
        _egress(
            scope,
            "TokenRotationPolicy",
            "attic-token-rotation",
            namespace=namespace,
            labels=rotation.labels,
            rules=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=list(API_SERVER_PORTS))],
        )

    warming = attic.cache_warming
    if warming.enabled:
        warm_token = next(t for t in attic.tokens if t.name == warming.token)
        warm = AtticCacheWarm(
            scope,
            "CacheWarm",
            AtticCacheWarmProps(
                namespace=namespace,
                endpoint=in_cluster_url,
                cache=warming.cache,
                token_secret=token_secret(attic, warm_token)[1],
                installables=tuple(warming.installables),
                schedule=warming.schedule,
                attic_client=warming.attic_client,
                image=image_pin(warming.image, NIX_IMAGE),
                store_size=warming.store_size,
                timeout_seconds=warming.timeout_seconds,
                resources=compute(warming.resources),
            ),
        )
        # Nix fetches from the internet (cache.nixos.org, flake sources); the attic client
        # pushes to the server's public API endpoint, and downloads follow atticd's redirects
        # to storage.
        _egress(
            scope,
            "CacheWarmPolicy",
            "attic-cache-warm",
            namespace=namespace,
            labels=warm.labels,
            rules=[
                *api,
                Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=[80, 443]),
                *cache_client_egress(env),
            ],
        )

    bazel_url = None
    if attic.bazel_cache.enabled and storage.bazel is not None:
        bazel_url = _bazel(scope, env, namespace, storage)
    return Operations(token_secrets=token_secrets, bazel_grpc_url=bazel_url)


def _egress(
    scope: Construct,
    construct_id: str,
    name: str,
    *,
    namespace: str,
    labels: dict[str, str],
    rules: list[Rule],
) -> None:
    TrafficPolicy(
        scope,
        construct_id,
        TrafficPolicyProps(name=name, namespace=namespace, pod_selector=labels, egress=rules),
    )


def _bazel(
    scope: Construct, env: ResolvedEnvironment, namespace: str, storage: StorageWiring
) -> str:
    from constructs_lib.bazel.bazel_remote import (
        GRPC_PORT,
        HTTP_PORT as BAZEL_HTTP_PORT,
        BazelRemote,
        BazelRemoteProps,
    )
    from constructs_lib.versions import BAZEL_REMOTE_IMAGE

    bazel = env.config.attic.bazel_cache
    endpoint = storage.bazel
    assert endpoint is not None
    url = endpoint.url or f"https://s3.{endpoint.region}.amazonaws.com"
    server = BazelRemote(
        scope,
        "BazelCache",
        BazelRemoteProps(
            namespace=namespace,
            s3_endpoint=url,
            bucket=endpoint.bucket,
            region=endpoint.region,
            credentials=endpoint.credentials,
            image=image_pin(bazel.image, BAZEL_REMOTE_IMAGE),
            service_account_annotations=storage.service_account_annotations,
            local_cache_size_gi=bazel.local_cache_size_gi,
            min_replicas=bazel.min_replicas,
            max_replicas=bazel.max_replicas,
            resources=compute(bazel.resources),
            service_monitor=env.config.monitoring.prometheus_operator,
            service_monitor_labels=env.config.monitoring.discovery_labels,
        ),
    )
    clients = [Peer(namespace=ns) for ns in bazel.client_namespaces]
    ingress = [Rule(peers=[Peer(), *clients], ports=[BAZEL_HTTP_PORT, GRPC_PORT])]
    if env.config.monitoring.prometheus_operator:
        ingress.append(Rule(peers=[Peer(namespace=EVERY_NAMESPACE)], ports=[BAZEL_HTTP_PORT]))
    TrafficPolicy(
        scope,
        "BazelCachePolicy",
        TrafficPolicyProps(
            name="bazel-remote",
            namespace=namespace,
            pod_selector=server.labels,
            ingress=ingress,
            egress=list(endpoint.egress),
        ),
    )
    return server.grpc_url


def storage_host(storage: StorageWiring) -> str | None:
    """Host of the public storage endpoint, if the stack serves one."""
    return urlsplit(storage.public_url).hostname if storage.public_url else None
