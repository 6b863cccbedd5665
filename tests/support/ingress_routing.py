"""Which Ingress path serves a request, which rate limit it gets, and which client a Traefik
limit counts it for, computed the way the controllers do.

Traefik v3.7.9 (pkg/provider/kubernetes/ingress/kubernetes.go): one router per Ingress path with
rule ``Host("h") && PathPrefix("/p")`` (``Path`` for Exact), priority ``len(rule)``
(pkg/muxer/http/mux.go ``GetRulePriority``); ``PathPrefix`` matches character-wise; the
router's middlewares come from the Ingress's ``router.middlewares`` annotation.
ingress-nginx merges every Ingress of a host; Exact paths win, then the longest Prefix, matched
element-wise; each path keeps its own Ingress's ``limit-rps`` x ``limit-burst-multiplier``
(default 5, internal/ingress/annotations/ratelimit/main.go).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from tests.support.synth_output import resources

_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
_NGINX = "nginx.ingress.kubernetes.io/"
# Headers Traefik's entry point deletes from clients it does not trust
# (pkg/middlewares/forwardedheaders/forwarded_header.go, XHeadersSet).
_X_HEADERS = frozenset(
    {
        "x-forwarded-proto",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-forwarded-tls-client-cert",
        "x-forwarded-tls-client-cert-info",
        "x-forwarded-prefix",
        "x-real-ip",
    }
)


@dataclass(frozen=True)
class IngressPath:
    ingress: str  # Terraform name of the Ingress
    host: str
    path: str
    path_type: str
    annotations: dict[str, str]


def ingress_paths(doc: dict[str, Any], host: str) -> list[IngressPath]:
    """Every path of every Ingress for ``host``."""
    found = []
    for name, item in resources(doc, "kubernetes_ingress_v1").items():
        for rule in item["spec"]["rule"]:
            if rule["host"] != host:
                continue
            for path in rule["http"]["path"]:
                found.append(
                    IngressPath(
                        name, host, path["path"], path["path_type"], item["metadata"]["annotations"]
                    )
                )
    return found


def serving_path(paths: list[IngressPath], request: str, controller: str) -> IngressPath:
    """The Ingress path that gets ``request``."""
    if controller == "traefik":
        matching = [p for p in paths if _traefik_matches(p, request)]
        return max(matching, key=lambda p: len(_traefik_rule(p)))
    exact = [p for p in paths if p.path_type == "Exact" and p.path == request]
    if exact:
        return exact[0]
    prefixes = [p for p in paths if p.path_type == "Prefix" and _element_prefix(p.path, request)]
    return max(prefixes, key=lambda p: len(p.path.rstrip("/")))


def rate_limit(doc: dict[str, Any], path: IngressPath, controller: str) -> dict[str, Any] | None:
    """The Traefik ``rateLimit`` spec, or nginx's ``{"average", "burst"}``, of a path."""
    if controller == "nginx":
        rps = path.annotations.get(f"{_NGINX}limit-rps")
        if rps is None:
            return None
        multiplier = int(path.annotations.get(f"{_NGINX}limit-burst-multiplier", "5"))
        return {"average": int(rps), "burst": int(rps) * multiplier}
    refs = [r.strip() for r in path.annotations.get(_MIDDLEWARES, "").split(",") if r.strip()]
    for item in resources(doc, "kubernetes_manifest").values():
        manifest = item["manifest"]
        meta = manifest["metadata"]
        if manifest["kind"] == "Middleware" and (
            f"{meta['namespace']}-{meta['name']}@kubernetescrd" in refs
        ):
            return dict(manifest["spec"]["rateLimit"])
    return None


def traefik_client(
    spec: dict[str, Any], remote_addr: str, headers: dict[str, str], *, trusted: bool
) -> str:
    """The source a ``rateLimit`` counts a request for; ``trusted``: the entry point trusts
    the sender's forwarded headers (forwardedHeaders.trustedIPs)."""
    seen = {k.lower(): v for k, v in headers.items()}
    if not trusted:
        seen = {k: v for k, v in seen.items() if k not in _X_HEADERS}
    seen.setdefault("x-real-ip", remote_addr)
    criterion = spec.get("sourceCriterion") or {"ipStrategy": {}}
    if "requestHeaderName" in criterion:
        return seen.get(criterion["requestHeaderName"].lower(), "")
    strategy = criterion.get("ipStrategy") or {}
    xffs = seen.get("x-forwarded-for", "").split(",")
    if strategy.get("depth", 0) > 0:  # DepthStrategy
        depth = strategy["depth"]
        return "" if len(xffs) < depth else xffs[len(xffs) - depth].strip()
    if strategy.get("excludedIPs"):  # PoolStrategy
        nets = [ipaddress.ip_network(n, strict=False) for n in strategy["excludedIPs"]]
        for raw in reversed(xffs):
            entry = raw.strip()
            if entry and not any(ipaddress.ip_address(entry) in n for n in nets):
                return entry
        return ""
    return remote_addr  # RemoteAddrStrategy


def _traefik_rule(path: IngressPath) -> str:
    matcher = "Path" if path.path_type == "Exact" else "PathPrefix"
    return f'Host("{path.host}") && {matcher}("{path.path}")'


def _traefik_matches(path: IngressPath, request: str) -> bool:
    if path.path_type == "Exact":
        return request == path.path
    return request.startswith(path.path)


def _element_prefix(prefix: str, request: str) -> bool:
    base = prefix.rstrip("/")
    return base in ("", request) or request.startswith(base + "/")
