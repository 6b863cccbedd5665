"""What atticd would make of a token: :func:`inspect` verifies it offline and says why not.

atticd silently ignores a token it cannot verify or decode and serves the request as anonymous
(a bare 401, logged only at debug level), so a wrong token looks like a missing one.
:func:`inspect` runs atticd's checks in jwt-simple's order, with zero clock tolerance, and
reports the first that fails. No cdktf/jsii; cryptography is imported only to check an RS256
signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upstream_formats.attic_names import NAME_RULE, PATTERN_RULE, is_cache_name, is_cache_pattern
from upstream_formats.attic_token_keys import TokenError, TokenKey
from upstream_formats.attic_tokens import (
    NAMESPACE,
    PERMISSION_NAMES,
    PERMISSIONS,
    resolve_permissions,
)

# Why :func:`inspect` finds a token invalid: each ``reason`` starts with one of these.
MALFORMED_TOKEN = "malformed token"
ALGORITHM_MISMATCH = "algorithm mismatch"
BAD_SIGNATURE = "bad signature"
MALFORMED_CLAIMS = "malformed claims"
INVALID_PATTERN = "invalid pattern"
ISSUED_IN_FUTURE = "issued in the future"
NOT_YET_VALID = "not yet valid"
EXPIRED = "expired"
ISSUER_MISMATCH = "issuer mismatch"
AUDIENCE_MISMATCH = "audience mismatch"

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Inspection:
    """What atticd would make of a token: an invalid token is treated as anonymous.

    ``claims`` is the decoded payload whenever it is a JSON object, even if the token is
    invalid. With a ``cache``, ``permissions`` are computed only for a valid token; for an
    invalid one they are all false (atticd grants nothing), ``reason`` says why.
    """

    valid: bool
    reason: str | None
    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    cache: str | None = None
    permissions: dict[str, bool] | None = None
    via_pattern: str | None = None
    can_discover: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"valid": self.valid}
        if self.reason is not None:
            result["reason"] = self.reason
        result["header"] = self.header
        result["claims"] = self.claims
        if self.cache is not None:
            result["cache"] = self.cache
            result["permissions"] = self.permissions
            result["via_pattern"] = self.via_pattern
            result["can_discover"] = self.can_discover
        return result


def check_cache_name(cache: str) -> None:
    """Raise :class:`TokenError` unless ``cache`` is a cache name atticd accepts."""
    if not isinstance(cache, str) or not is_cache_name(cache):
        raise TokenError(f"--cache: not a cache name (got {cache!r}; allowed: {NAME_RULE})")


def inspect(
    token: str,
    key: TokenKey,
    *,
    now: float,
    cache: str | None = None,
    issuer: str | None = None,
    audiences: Sequence[str] = (),
) -> Inspection:
    """Verify ``token`` like atticd configured with ``key`` and, when bound, ``issuer`` and
    ``audiences`` (``token-bound-issuer`` / ``token-bound-audiences``); zero clock tolerance."""
    if cache is not None:
        check_cache_name(cache)
    header, claims, reason = _verify(token, key, now, issuer, tuple(audiences))
    permissions: dict[str, bool] | None = None
    via: str | None = None
    if cache is not None:
        permissions = dict.fromkeys(PERMISSION_NAMES, False)
        if reason is None and claims is not None:
            permissions, via = resolve_permissions(claims[NAMESPACE]["caches"], cache)
    return Inspection(
        valid=reason is None,
        reason=reason,
        header=header,
        claims=claims,
        cache=cache,
        permissions=permissions,
        via_pattern=via,
        can_discover=None if permissions is None else any(permissions.values()),
    )


class _RejectedError(Exception):
    """A reason atticd would ignore the token (its message is the ``reason``)."""


def _verify(
    token: str, key: TokenKey, now: float, issuer: str | None, audiences: tuple[str, ...]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """(header, claims, reason) in jwt-simple's order of checks; reason None when valid."""
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    try:
        header_raw, payload_raw, signature = _split(token)
        header, claims = _json_object(header_raw), _json_object(payload_raw)
        _check_signature(header, token.rpartition(".")[0], signature, key)
        if claims is None:
            raise _RejectedError(f"{MALFORMED_TOKEN}: the payload is not a JSON object")
        _check_claims(claims)
        _check_caches(claims)
        _check_validity(claims, now, issuer, audiences)
    except _RejectedError as exc:
        return header, claims, str(exc)
    return header, claims, None


def _split(token: str) -> tuple[bytes, bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        got = f"got {len(parts)} parts"
        raise _RejectedError(f"{MALFORMED_TOKEN}: expected 3 base64url parts joined by '.' ({got})")
    decoded: list[bytes] = []
    for label, part in zip(("header", "payload", "signature"), parts, strict=True):
        raw = _base64url(part)
        if raw is None:
            raise _RejectedError(f"{MALFORMED_TOKEN}: the {label} is not unpadded base64url")
        decoded.append(raw)
    return decoded[0], decoded[1], decoded[2]


def _check_signature(
    header: dict[str, Any] | None, signing_input: str, signature: bytes, key: TokenKey
) -> None:
    if header is None:
        raise _RejectedError(f"{MALFORMED_TOKEN}: the header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _RejectedError(f"{MALFORMED_TOKEN}: the header has no 'alg'")
    if alg != key.algorithm:
        raise _RejectedError(
            f"{ALGORITHM_MISMATCH}: the token is {alg}, the key ({key.source}) is "
            f"{key.algorithm}; atticd accepts only its configured algorithm"
        )
    if not _signature_ok(key, signing_input.encode("ascii"), signature):
        raise _RejectedError(f"{BAD_SIGNATURE}: not signed by the key from {key.source}")


def _base64url(part: str) -> bytes | None:
    if _BASE64URL.fullmatch(part) is None or len(part) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, binascii.Error):
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        return None
    return value if isinstance(value, dict) else None


def _signature_ok(key: TokenKey, signing_input: bytes, signature: bytes) -> bool:
    if key.algorithm == "HS256":
        expected = hmac.new(key.secret, signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    assert key.public_key is not None  # every RS256 TokenKey has one
    try:
        key.public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_claims(claims: Mapping[str, Any]) -> None:
    """The standard claims' types. ``null`` counts as absent (serde's ``Option``)."""
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            raise _RejectedError(
                f"{MALFORMED_CLAIMS}: {name!r} must be a number of seconds (got {value!r})"
            )
    for name in ("sub", "iss"):
        value = claims.get(name)
        if value is not None and not isinstance(value, str):
            raise _RejectedError(f"{MALFORMED_CLAIMS}: {name!r} must be a string (got {value!r})")
    aud = claims.get("aud")
    if aud is not None and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise _RejectedError(
            f"{MALFORMED_CLAIMS}: 'aud' must be a string or a list of strings (got {aud!r})"
        )


def _check_caches(claims: Mapping[str, Any]) -> None:
    """The Attic namespace: a ``caches`` object of valid patterns to integer 0/1 flags."""
    namespace = claims.get(NAMESPACE)
    if not isinstance(namespace, dict):
        got = "nothing" if namespace is None else json.dumps(namespace)
        raise _RejectedError(
            f"{MALFORMED_CLAIMS}: {NAMESPACE!r} must be an object (got {got}); atticd needs it"
        )
    caches = namespace.get("caches")
    if not isinstance(caches, dict):
        got = "nothing" if caches is None else json.dumps(caches)
        raise _RejectedError(
            f"{MALFORMED_CLAIMS}: 'caches' must be an object (got {got}); atticd needs it"
        )
    for pattern, entry in caches.items():
        if not is_cache_pattern(pattern):
            raise _RejectedError(
                f"{INVALID_PATTERN}: {pattern!r} is not a cache pattern ({PATTERN_RULE}); "
                "atticd ignores the whole token"
            )
        if not isinstance(entry, dict):
            raise _RejectedError(
                f"{MALFORMED_CLAIMS}: caches[{pattern!r}] must be an object "
                f"(got {json.dumps(entry)})"
            )
        for _, claim_key in PERMISSIONS:
            value = entry.get(claim_key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
                raise _RejectedError(
                    f"{MALFORMED_CLAIMS}: caches[{pattern!r}][{claim_key!r}] must be the "
                    f"integer 0 or 1 (got {json.dumps(value)})"
                )


def _when(seconds: float) -> str:
    number = f"{seconds:.3f}".rstrip("0").rstrip(".")
    try:
        shown = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return number
    return f"{number} ({shown})"


def _check_validity(
    claims: Mapping[str, Any], now: float, issuer: str | None, audiences: tuple[str, ...]
) -> None:
    iat, nbf, exp = claims.get("iat"), claims.get("nbf"), claims.get("exp")
    if iat is not None and iat > now:
        raise _RejectedError(f"{ISSUED_IN_FUTURE}: iat {_when(iat)} is after now {_when(now)}")
    if nbf is not None and nbf > now:
        raise _RejectedError(
            f"{NOT_YET_VALID}: nbf {_when(nbf)} is after now {_when(now)}; atticd allows no "
            "clock skew"
        )
    if exp is not None and now > exp:
        raise _RejectedError(f"{EXPIRED}: exp {_when(exp)} is before now {_when(now)}")
    if issuer is not None and claims.get("iss") != issuer:
        raise _RejectedError(
            f"{ISSUER_MISMATCH}: the server requires iss {issuer!r} (got {claims.get('iss')!r})"
        )
    if audiences:
        aud = claims.get("aud")
        token_audiences = {aud} if isinstance(aud, str) else set(aud or ())
        if token_audiences.isdisjoint(audiences):
            raise _RejectedError(
                f"{AUDIENCE_MISMATCH}: the server requires one of {list(audiences)} (got {aud!r})"
            )
