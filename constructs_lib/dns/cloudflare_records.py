"""DNS records in a Cloudflare zone, never proxied.

Cloudflare's proxy caps request bodies at 100 MB and times out slow requests, and every Attic
NAR upload is one request, so the records are DNS-only. The provider package is large: import
this module only when Cloudflare is configured.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformVariable
from constructs import Construct

from constructs_lib.validation import raise_if_problems

__all__ = ["TOKEN_VARIABLE", "CloudflareRecords", "CloudflareRecordsProps"]

try:
    from cdktf_cdktf_provider_cloudflare.dns_record import DnsRecord
    from cdktf_cdktf_provider_cloudflare.provider import CloudflareProvider
except ModuleNotFoundError as missing:  # the optional provider is not installed
    raise ModuleNotFoundError(
        f"{__name__} needs the Cloudflare provider ({missing.name}): "
        "pip install 'attic-iac-constructs[cloudflare]'",
        name=missing.name,
    ) from missing

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TOKEN_VARIABLE = "cloudflare_api_token"
"""The sensitive variable holding the API token (``TF_VAR_cloudflare_api_token``)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CloudflareRecordsProps:
    """Props of :class:`CloudflareRecords`.

    Attributes:
        zone_id: the zone's id (32 hex digits).
        hosts: fully qualified names to point at ``target``.
        target: an IPv4/IPv6 address (A/AAAA records) or a host name (CNAME records).
        ttl: seconds. Default 300.
    """

    zone_id: str
    hosts: Sequence[str]
    target: str
    ttl: int = 300


def record_type(target: str) -> str | None:
    """A, AAAA or CNAME for a target; ``None`` if it is neither an address nor a host."""
    try:
        return "A" if ipaddress.ip_address(target).version == 4 else "AAAA"
    except ValueError:
        return "CNAME" if _HOST.match(target) else None


class CloudflareRecords(Construct):
    """One DNS-only record per host; the API token comes from ``TF_VAR_cloudflare_api_token``.

    Creates the sensitive variable :data:`TOKEN_VARIABLE` (its address pinned to that name), a
    Cloudflare provider (``Provider``) and a ``dns_record`` per host (``Record-<host>``), A,
    AAAA or CNAME by the target. Needs the ``cloudflare`` extra.

    Attributes:
        records: the records by host.

    Example:
        ```python
        from constructs_lib.dns.cloudflare_records import CloudflareRecords, CloudflareRecordsProps

        CloudflareRecords(
            stack,
            "Dns",
            CloudflareRecordsProps(
                zone_id="0123456789abcdef0123456789abcdef",
                hosts=["cache.example.com"],
                target="lb.example.net",
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: CloudflareRecordsProps) -> None:
        super().__init__(scope, construct_id)
        kind = record_type(props.target)
        raise_if_problems(
            "CloudflareRecords",
            [
                ""
                if re.fullmatch(r"[0-9a-f]{32}", props.zone_id)
                else f"zone_id: {props.zone_id!r} must be 32 hex digits",
                "" if props.hosts else "hosts: at least one host is needed",
                *(f"hosts: {h!r} is not a DNS name" for h in props.hosts if not _HOST.match(h)),
                "" if kind else f"target: {props.target!r} must be an IP address or a DNS name",
                "" if 60 <= props.ttl <= 86400 else f"ttl: {props.ttl} must be 60..86400",
            ],
        )
        token = TerraformVariable(
            self,
            TOKEN_VARIABLE,
            type="string",
            sensitive=True,
            description="Cloudflare API token with DNS edit on the zone "
            "(export TF_VAR_cloudflare_api_token)",
        )
        # The variable's address stays the top-level name users export.
        token.override_logical_id(TOKEN_VARIABLE)
        provider = CloudflareProvider(self, "Provider", api_token=token.string_value)
        self.records = {
            host: DnsRecord(
                self,
                f"Record-{host}",
                zone_id=props.zone_id,
                name=host,
                type=kind or "",
                content=props.target,
                ttl=props.ttl,
                proxied=False,
                comment="managed by attic-iac",
                provider=provider,
            )
            for host in props.hosts
        }
