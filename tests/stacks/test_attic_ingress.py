"""attic-<env>'s ingress: which requests are rate limited, for which client, and TLS."""

from __future__ import annotations

from stacks.attic_endpoints import attic_host
from tests.support.ingress_routing import (
    ingress_paths,
    rate_limit,
    serving_path,
    traefik_client,
)
from tests.support.synth_output import (
    SynthOutput,
    manifests,
    namespace_name,
    resources,
    stacks_of_kind,
)

# Requests Nix and the attic client make, and whether they are atticd's API
# (attic server/src/api/mod.rs, binary_cache.rs, v1/mod.rs).
_REQUESTS = {
    "/": False,
    "/main/nix-cache-info": False,
    "/main/0c3a9hbmq2z3q4h3d3ih0zmxh5k1rqsp.narinfo": False,
    "/main/nar/0c3a9hbmq2z3q4h3d3ih0zmxh5k1rqsp.nar": False,
    "/main/attic-cache-info": False,
    "/_api/v1/get-missing-paths": True,
    "/_api/v1/upload-path": True,
    "/_api/v1/cache-config/main": True,
}


def test_only_atticds_api_is_rate_limited(attic_environments):
    """Behind one NAT address every Nix client shares one allowance; a 429 on a narinfo makes
    Nix disable the substituter. So reads are never limited, the API always is."""
    limited_by: set[str] = set()
    for env_name, env, doc in attic_environments:
        ingress = env.config.attic.ingress
        if not ingress.enabled:
            continue
        paths = ingress_paths(doc, attic_host(env))
        for request, is_api in _REQUESTS.items():
            limit = rate_limit(
                doc, serving_path(paths, request, ingress.controller), ingress.controller
            )
            if is_api and ingress.rate_limit is not None:
                assert limit is not None, (env_name, request)
                got = (limit["average"], limit["burst"])
                assert got == (ingress.rate_limit.average, ingress.rate_limit.burst)
                limited_by.add(ingress.controller)
            else:
                assert limit is None, (env_name, request)
    assert limited_by == {"traefik", "nginx"}


def test_traefik_counts_the_client_the_config_names(attic_environments):
    """A load balancer at 10.0.0.5 forwards 203.0.113.7, who claims to be 198.51.100.1."""
    sources: set[str] = set()
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "CF-Connecting-IP": "203.0.113.7"}
    for _env_name, env, doc in attic_environments:
        ingress = env.config.attic.ingress
        if not ingress.enabled or ingress.controller != "traefik" or ingress.rate_limit is None:
            continue
        paths = ingress_paths(doc, attic_host(env))
        spec = rate_limit(doc, serving_path(paths, "/_api/v1/upload-path", "traefik"), "traefik")
        assert spec is not None
        source = ingress.rate_limit.client_ip.source
        wanted = "10.0.0.5" if source == "remote_address" else "203.0.113.7"
        assert traefik_client(spec, "10.0.0.5", headers, trusted=True) == wanted
        sources.add(source)
    assert sources == {"remote_address", "forwarded_for"}


def test_every_tls_secret_has_one_certificate(all_synths: list[SynthOutput]):
    """cert-manager's ingress-shim makes a Certificate only for Ingresses with an issuer
    annotation and never updates one another Ingress owns (certificate-shim/sync.go)."""
    secrets = 0
    for stack, doc in stacks_of_kind(all_synths, "attic"):
        owners: dict[tuple[str, str], int] = {}
        for ingress in resources(doc, "kubernetes_ingress_v1").values():
            meta = ingress["metadata"]
            shim = {"cert-manager.io/issuer", "cert-manager.io/cluster-issuer"} & set(
                meta["annotations"]
            )
            for tls in ingress["spec"]["tls"]:
                key = (namespace_name(doc, meta["namespace"]), tls["secret_name"])
                owners[key] = owners.get(key, 0) + bool(shim)
        assert set(owners.values()) <= {1}, (stack, owners)
        secrets += len(owners)
    assert secrets


def test_nginx_ingress_never_caps_or_buffers_uploads(variants_synth: SynthOutput):
    doc = variants_synth.stack("attic-full")
    for ingress in resources(doc, "kubernetes_ingress_v1").values():
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
        assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        assert ingress["spec"]["ingress_class_name"] == "nginx-internal"
    assert manifests(doc, "Middleware") == []


def test_traefik_ingress_has_tls_and_no_buffering(example_synth: SynthOutput):
    doc = example_synth.stack("attic-prod")
    (middleware,) = manifests(doc, "Middleware")
    assert list(middleware["spec"]) == ["rateLimit"]  # never a buffering middleware
    ingresses = {i["metadata"]["name"]: i for i in resources(doc, "kubernetes_ingress_v1").values()}
    attic = ingresses["attic"]
    assert attic["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    for ingress in (attic, ingresses["attic-limited"]):
        assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.tls"]
        assert ingress["spec"]["tls"] == [
            {"hosts": ["attic.example.com"], "secret_name": "attic-tls"}
        ]
