"""atticd's ``server.toml``: the keys it knows, the rules it does not check, the rendering.

atticd rejects unknown keys only at the top level; inside a section a misspelt key is silently
ignored, and chunk sizes are only ``debug_assert``-ed by fastcdc. So every key and bound is
checked here, before anything reaches a cluster. Secrets never belong in this file: the
database URL, the signing key and storage credentials come from the environment.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w

from upstream_formats.humantime import parse_duration

# fastcdc 4 (ronomon) bounds, as documented in its source.
CHUNK_BOUNDS = {
    "min-size": (64, 67_108_864),
    "avg-size": (256, 268_435_456),
    "max-size": (1024, 1_073_741_824),
}
COMPRESSION_TYPES = ("none", "brotli", "zstd", "xz")
_SECRET_KEYS = {
    ("database", "url"): "ATTIC_SERVER_DATABASE_URL",
    ("storage", "credentials"): "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    ("jwt", "signing"): "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
}

_STR, _BOOL, _INT, _STRS, _DURATION = "string", "boolean", "integer", "list of strings", "duration"
# section -> key -> kind; the top level is "".
KNOWN_KEYS: dict[str, dict[str, str]] = {
    "": {
        "listen": _STR,
        "allowed-hosts": _STRS,
        "api-endpoint": _STR,
        "substituter-endpoint": _STR,
        "soft-delete-caches": _BOOL,
        "require-proof-of-possession": _BOOL,
        "max-nar-info-size": _INT,
    },
    "database": {"heartbeat": _BOOL},
    "storage": {"type": _STR, "region": _STR, "bucket": _STR, "endpoint": _STR, "path": _STR},
    "chunking": {
        "nar-size-threshold": _INT,
        "min-size": _INT,
        "avg-size": _INT,
        "max-size": _INT,
    },
    "compression": {"type": _STR, "level": _INT},
    "garbage-collection": {"interval": _DURATION, "default-retention-period": _DURATION},
    "jwt": {"token-bound-issuer": _STR, "token-bound-audiences": _STRS},
}
REQUIRED_SECTIONS = ("database", "storage", "chunking")


def server_config_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every problem in a server.toml document, one line each naming key, value and rule."""
    problems: list[str] = []
    for section in REQUIRED_SECTIONS:
        if not isinstance(doc.get(section), Mapping):
            problems.append(f"[{section}]: the section is required")
    for key, value in doc.items():
        if key in KNOWN_KEYS and key:
            if isinstance(value, Mapping):
                problems += _section_problems(key, value)
            else:
                problems.append(f"{key}: must be a table (got {value!r})")
        elif key in KNOWN_KEYS[""]:
            problems += _value_problems(key, KNOWN_KEYS[""][key], value)
        else:
            problems.append(_unknown(key, "", sorted(set(KNOWN_KEYS[""]) | set(KNOWN_KEYS) - {""})))
    for key in ("api-endpoint", "substituter-endpoint"):
        value = doc.get(key)
        if isinstance(value, str) and not (
            value.startswith(("https://", "http://")) and value.endswith("/")
        ):
            problems.append(
                f"{key}: {value!r} must be an http(s) URL ending in '/' "
                "(atticd appends paths and cache names to it verbatim)"
            )
    problems += _storage_problems(doc.get("storage"))
    problems += _chunking_problems(doc.get("chunking"))
    compression = doc.get("compression")
    if isinstance(compression, Mapping) and compression.get("type") not in COMPRESSION_TYPES:
        problems.append(
            f"compression.type: {compression.get('type')!r} is not one of "
            f"{', '.join(COMPRESSION_TYPES)}"
        )
    return problems


def render_server_toml(doc: Mapping[str, Any]) -> str:
    """The TOML text atticd reads with ``-f``."""
    return tomli_w.dumps(dict(doc))


def _section_problems(section: str, values: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    known = KNOWN_KEYS[section]
    for key, value in values.items():
        if (section, key) in _SECRET_KEYS:
            problems.append(
                f"{section}.{key}: secrets never go into server.toml (it is a ConfigMap); "
                f"atticd reads this from {_SECRET_KEYS[(section, key)]} in its environment"
            )
        elif key in known:
            problems += _value_problems(f"{section}.{key}", known[key], value)
        else:
            problems.append(_unknown(key, section, sorted(known)))
    return problems


def _value_problems(path: str, kind: str, value: Any) -> list[str]:
    ok = {
        _STR: isinstance(value, str),
        _BOOL: isinstance(value, bool),
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _STRS: isinstance(value, list) and all(isinstance(v, str) for v in value),
        _DURATION: isinstance(value, str),
    }[kind]
    if not ok:
        return [f"{path}: must be a {kind} (got {value!r})"]
    if kind == _DURATION:
        try:
            parse_duration(value)
        except ValueError as exc:
            return [f"{path}: {exc}"]
    return []


def _unknown(key: str, section: str, allowed: list[str]) -> str:
    where = f"{section}.{key}" if section else key
    return f"{where}: unknown key (atticd would ignore or reject it; allowed: {', '.join(allowed)})"


def _storage_problems(storage: Any) -> list[str]:
    if not isinstance(storage, Mapping):
        return []
    kind = storage.get("type")
    if kind == "s3":
        return [
            f"storage.{key}: required for type 's3'"
            for key in ("region", "bucket")
            if not storage.get(key)
        ]
    if kind == "local":
        return [] if storage.get("path") else ["storage.path: required for type 'local'"]
    return [f"storage.type: {kind!r} is not one of local, s3"]


def _chunking_problems(chunking: Any) -> list[str]:
    if not isinstance(chunking, Mapping):
        return []
    problems = [
        f"chunking.{key}: required (atticd has no default)"
        for key in KNOWN_KEYS["chunking"]
        if key not in chunking
    ]
    sizes: dict[str, int] = {}
    for key, (low, high) in CHUNK_BOUNDS.items():
        value = chunking.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            sizes[key] = value
            if not low <= value <= high:
                problems.append(f"chunking.{key}: {value} is outside fastcdc's {low}..{high}")
    if len(sizes) == 3 and not sizes["min-size"] <= sizes["avg-size"] <= sizes["max-size"]:
        problems.append(
            "chunking: min-size <= avg-size <= max-size must hold "
            f"(got {sizes['min-size']}, {sizes['avg-size']}, {sizes['max-size']})"
        )
    threshold = chunking.get("nar-size-threshold")
    if isinstance(threshold, int) and threshold < 0:
        problems.append(f"chunking.nar-size-threshold: {threshold} must be >= 0 (0 disables)")
    return problems
