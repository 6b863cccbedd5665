"""A per-client request limit as each ingress controller spells it: a Traefik ``rateLimit``
Middleware spec, or ingress-nginx annotations.

Traefik groups requests by ``sourceCriterion`` (default: the connection's remote address;
``ipStrategy.depth`` / ``excludedIPs`` read X-Forwarded-For, which Traefik strips from clients
it does not trust; ``requestHeaderName`` a header). ingress-nginx keys its zone on
``$binary_remote_addr`` as its own real-IP settings compute it, and sets burst to
``limit-rps x limit-burst-multiplier`` (internal/ingress/annotations/ratelimit/main.go).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientIp", "RateLimitProps"]

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientIp:
    """How the controller tells one client from another (Traefik only; nginx uses its own
    real-IP configuration).

    Attributes:
        depth: use the X-Forwarded-For entry this far from the right (1: the address the
            nearest trusted proxy saw) instead of the connection's address. Default 0 (off).
        excluded_ips: use the first X-Forwarded-For entry from the right outside these ranges
            (your proxies) instead. Default - none.
        header: use this request header (e.g. ``CF-Connecting-IP``) instead. Default ``None``.
    """

    depth: int = 0
    excluded_ips: tuple[str, ...] = ()
    header: str | None = None

    @property
    def is_remote_address(self) -> bool:
        """True when clients are told apart by the connection's address (the default)."""
        return not (self.depth or self.excluded_ips or self.header)


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitProps:
    """Requests per second per client, on some paths only.

    Attributes:
        average: requests per second.
        burst: requests allowed at once above the average.
        paths: URL prefixes the limit applies to; the rest of the host is never limited.
        client_ip: how clients are told apart. Default - the connection's address.
    """

    average: int
    burst: int
    paths: tuple[str, ...]
    client_ip: ClientIp = field(default_factory=ClientIp)


def rate_limit_problems(props: RateLimitProps, controller: str) -> list[str]:
    """What the controller would reject or silently do differently."""
    client = props.client_ip
    problems = [
        "" if props.average >= 1 and props.burst >= 1 else "rate_limit: average and burst >= 1",
        "" if props.paths else "rate_limit.paths: at least one prefix",
        *(
            f"rate_limit.paths: {path!r} limits the whole host; give narrower prefixes"
            for path in props.paths
            if path == "/"
        ),
        ""
        if sum(map(bool, (client.depth, client.excluded_ips, client.header))) <= 1
        else "rate_limit.client_ip: set one of depth, excluded_ips, header (Traefik lets "
        "depth override excluded_ips and refuses a header together with an IP strategy)",
        "" if client.depth >= 0 else "rate_limit.client_ip.depth: must be >= 0",
        *(
            f"rate_limit.client_ip.excluded_ips: {cidr!r} is not an IP or CIDR"
            for cidr in client.excluded_ips
            if not _is_network(cidr)
        ),
        ""
        if client.header is None or _HEADER.match(client.header)
        else f"rate_limit.client_ip.header: {client.header!r} is not a header name",
    ]
    if controller == "nginx":
        problems += [
            ""
            if client.is_remote_address
            else "rate_limit.client_ip: ingress-nginx limits by the client address its own "
            "real-IP settings give (use-forwarded-headers, use-proxy-protocol); leave it unset",
            ""
            if props.burst % props.average == 0
            else f"rate_limit.burst: {props.burst} must be a multiple of average "
            f"({props.average}): ingress-nginx allows limit-rps x limit-burst-multiplier",
        ]
    return problems


def traefik_rate_limit(props: RateLimitProps) -> dict[str, Any]:
    """The Middleware's ``spec.rateLimit``."""
    spec: dict[str, Any] = {"average": props.average, "burst": props.burst, "period": "1s"}
    client = props.client_ip
    if client.header:
        spec["sourceCriterion"] = {"requestHeaderName": client.header}
    elif client.depth:
        spec["sourceCriterion"] = {"ipStrategy": {"depth": client.depth}}
    elif client.excluded_ips:
        spec["sourceCriterion"] = {"ipStrategy": {"excludedIPs": list(client.excluded_ips)}}
    return spec


def nginx_rate_limit(props: RateLimitProps) -> dict[str, str]:
    """ingress-nginx annotations with the same average and burst."""
    prefix = "nginx.ingress.kubernetes.io/"
    return {
        f"{prefix}limit-rps": str(props.average),
        f"{prefix}limit-burst-multiplier": str(props.burst // props.average),
    }


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True
