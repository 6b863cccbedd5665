"""Where the Attic cache is reached, and the egress a pod needs to use it the way the attic
client and Nix really do. attic-<env> (atticd, cache warming) and runners-<env> (nix jobs) both
derive their policies from here, so the two stacks agree without reading each other's state.

How clients talk (zhaofengli/attic):

* ``client/src/command/push.rs`` and ``watch_store.rs``: after ``GET cache-config`` the client
  switches to the server's ``api-endpoint`` (``api.set_endpoint``), so pushes go to the public
  URL whatever URL the client logged in with;
* ``server/src/api/binary_cache.rs``: a NAR stored as one chunk is answered with a 307 to a
  URL presigned on atticd's own S3 endpoint (``server/src/storage/s3.rs``, ``get_download``),
  which the client (Nix) then fetches itself.

A public URL served by the ingress is reached through the controller's pods: kube-proxy
short-circuits in-cluster traffic to a load balancer's address to them, and NetworkPolicy sees
the pods' own ports. Where the load balancer is not short-circuited, ``load_balancer_cidrs``
opens the way to it instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from config_model.loader import ResolvedEnvironment
from config_model.organization import OrganizationConfig
from constructs_lib.kubernetes.traffic_policy import Peer, Rule

MINIO_TENANT = "attic-minio"


def attic_host(env: ResolvedEnvironment) -> str:
    """atticd's public host name."""
    return env.config.attic.ingress.host or f"attic.{env.settings.domain}"


def in_cluster_url(config: OrganizationConfig) -> str:
    """atticd's Service URL for pods in the cluster."""
    return f"http://attic.{config.attic.namespace}.svc/"


def api_endpoint(env: ResolvedEnvironment) -> str:
    """atticd's ``api-endpoint``: where clients push, whichever URL they started with."""
    attic = env.config.attic
    if attic.api.endpoint:
        return attic.api.endpoint
    return f"https://{attic_host(env)}/" if attic.ingress.enabled else in_cluster_url(env.config)


def storage_public_url(env: ResolvedEnvironment) -> str | None:
    """The public S3 URL of in-cluster storage (atticd signs its redirects for it), or None."""
    attic = env.config.attic
    storage = attic.storage
    if storage.backend == "s3":
        return None
    if storage.public_endpoint is not None:
        return storage.public_endpoint
    if storage.clients_outside_cluster and attic.ingress.enabled:
        return f"https://s3.{attic_host(env)}"
    return None


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def through_ingress(env: ResolvedEnvironment, url: str) -> bool:
    """Whether the ingress controller serves ``url`` (atticd's host or public storage)."""
    if not env.config.attic.ingress.enabled:
        return False
    public_storage = storage_public_url(env)
    hosts = {attic_host(env), *([urlsplit(public_storage).hostname] if public_storage else [])}
    return urlsplit(url).hostname in hosts


def ingress_egress(env: ResolvedEnvironment, urls: list[str]) -> list[Rule]:
    """Egress to those of ``urls`` the ingress serves: the controller's pods on their own
    ports, and the load balancer's addresses on the URLs' ports."""
    served = [url for url in urls if through_ingress(env, url)]
    if not served:
        return []
    ingress = env.config.attic.ingress
    rules = [Rule(peers=[Peer(namespace=ingress.controller_namespace)], ports=ingress.pod_ports())]
    if ingress.load_balancer_cidrs:
        rules.append(
            Rule(
                peers=[Peer(cidr=cidr) for cidr in ingress.load_balancer_cidrs],
                ports=sorted({url_port(url) for url in served}),
            )
        )
    return rules


def storage_pods(config: OrganizationConfig) -> Rule | None:
    """Egress to the S3 pods of in-cluster storage; None for an external S3 endpoint."""
    storage = config.attic.storage
    if storage.backend == "seaweedfs":
        from constructs_lib.storage.seaweedfs import S3_PORT, filer_pod_labels

        peer = Peer(namespace=storage.seaweedfs.namespace, pod_labels=filer_pod_labels())
        return Rule(peers=[peer], ports=[S3_PORT])
    if storage.backend == "minio":
        from constructs_lib.storage.minio_tenant import S3_PORT as MINIO_PORT, tenant_pod_labels

        peer = Peer(namespace=storage.minio.namespace, pod_labels=tenant_pod_labels(MINIO_TENANT))
        return Rule(peers=[peer], ports=[MINIO_PORT])
    return None


def cache_client_egress(env: ResolvedEnvironment) -> list[Rule]:
    """What a pod that pulls from and pushes to the cache needs beyond atticd's Service: the
    public API endpoint it pushes to, and the storage its downloads are redirected to. An
    external S3 endpoint is the pod's own internet egress."""
    public_storage = storage_public_url(env)
    rules = ingress_egress(env, [api_endpoint(env), *([public_storage] if public_storage else [])])
    if public_storage is None:
        pods = storage_pods(env.config)
        if pods is not None:
            rules.append(pods)
    return rules
