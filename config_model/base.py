"""Building blocks shared by every config section: the strict base model and common types."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from upstream_formats.attic_names import NAME_RULE, is_cache_name
from upstream_formats.humantime import parse_duration

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CRON5 = r"^\S+( \S+){4}$"
CRON6 = r"^\S+( \S+){5}$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

# A rule's finding: (key path, message, offending value); the loader adds file and line.
Problems = list[tuple[tuple[str, ...], str, Any]]


class StrictModel(BaseModel):
    """Base for every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_url(value: str, schemes: tuple[str, ...], shown: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an {shown} URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not contain credentials, a query or a fragment")


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("must be a lowercase DNS name such as dev.example.com")
    return value


Hostname = Annotated[str, AfterValidator(_hostname)]


def _endpoint_url(value: str) -> str:
    check_url(value, ("https", "http"), "http(s)://")
    return value


EndpointUrl = Annotated[str, AfterValidator(_endpoint_url)]


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(
            "must be an address range such as 203.0.113.10/32 or 10.40.0.0/24, with no bits "
            "set past the prefix"
        ) from None
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]


def digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


K8sName = Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]


_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
Quantity = Annotated[str, Field(pattern=_QUANTITY)]


def _duration(value: str) -> str:
    parse_duration(value)  # raises ValueError with the reason
    return value


Duration = Annotated[str, AfterValidator(_duration)]


class Resources(StrictModel):
    """Container requests and limits (Kubernetes quantities)."""

    cpu_request: Quantity
    memory_request: Quantity
    cpu_limit: Quantity
    memory_limit: Quantity


def resources_field(
    cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str
) -> Any:
    return Field(
        default_factory=lambda: Resources(
            cpu_request=cpu_request,
            memory_request=memory_request,
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
        )
    )


class ImageOverride(StrictModel):
    """Replace a pinned image (e.g. a mirror). Give the digest: tags can be re-pushed."""

    repository: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")


def _cache_name(value: str) -> str:
    if not is_cache_name(value):
        raise ValueError(f"not an Attic cache name ({NAME_RULE})")
    return value


CacheName = Annotated[str, AfterValidator(_cache_name)]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; lists and scalars in ``override`` replace the base value."""
    result = dict(base)
    for key, value in override.items():
        current = result.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            result[key] = deep_merge(current, value)
        else:
            result[key] = value
    return result
