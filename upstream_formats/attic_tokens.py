"""Attic tokens minted and checked offline, the way atticd reads them.

atticd silently ignores a token it cannot verify or decode and serves the request as anonymous
(a bare 401, logged only at debug level), so a wrong token looks like a missing one. This module
mints tokens like ``atticadm make-token`` and :func:`inspect` says what atticd would do and why.
No cdktf/jsii; PyJWT and cryptography are imported only when a key or signature needs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from upstream_formats.attic_names import (
    NAME_RULE,
    PATTERN_RULE,
    is_cache_name,
    is_cache_pattern,
    pattern_matches,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

NAMESPACE = "https://jwt.attic.rs/v1"
# (name, claim key) in atticadm's flag order; claims are built in this order.
PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("pull", "r"),
    ("push", "w"),
    ("delete", "d"),
    ("create_cache", "cc"),
    ("configure_cache", "cr"),
    ("configure_cache_retention", "cq"),
    ("destroy_cache", "cd"),
)
PERMISSION_NAMES: tuple[str, ...] = tuple(name for name, _ in PERMISSIONS)

ENV_RS256_PUBKEY = "ATTIC_SERVER_TOKEN_RS256_PUBKEY_BASE64"
ENV_RS256_SECRET = "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"
ENV_HS256_SECRET = "ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64"
# atticd's order: the first non-empty one wins and the others are not read.
KEY_ENV_VARS: tuple[str, ...] = (ENV_RS256_PUBKEY, ENV_RS256_SECRET, ENV_HS256_SECRET)

NBF_BACKDATE_SECONDS = 60

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

Algorithm = Literal["HS256", "RS256"]

_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class TokenError(ValueError):
    """Bad input (key, flag, cache name); ``lines`` holds one message per problem."""

    def __init__(self, *lines: str) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class TokenKey:
    """The one key atticd is configured with.

    Attributes:
        algorithm: ``"HS256"`` or ``"RS256"``; atticd accepts only tokens of this type.
        source: where the key came from (variable name or ``--key-file PATH``), for messages.
        secret: the HS256 secret bytes.
        private_key: the RS256 private key; ``None`` for a verify-only (pubkey) key.
        public_key: the RS256 public key.
    """

    algorithm: Algorithm
    source: str
    secret: bytes = field(default=b"", repr=False)
    private_key: RSAPrivateKey | None = field(default=None, repr=False)
    public_key: RSAPublicKey | None = field(default=None, repr=False)

    @property
    def can_sign(self) -> bool:
        return self.algorithm == "HS256" or self.private_key is not None


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


# --- keys -------------------------------------------------------------------------------------


def hs256_key(secret: bytes, *, source: str = "HS256 secret") -> TokenKey:
    """An HS256 key; atticd accepts a secret of any length (PyJWT's length warning is moot)."""
    return TokenKey(algorithm="HS256", source=source, secret=bytes(secret))


def rs256_key(pem: bytes, *, source: str, want: Literal["private", "public", "any"]) -> TokenKey:
    """An RS256 key from a PEM: PKCS#1 or PKCS#8 private key, PKCS#1 or SPKI public key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    match = _PEM_LABEL.search(pem)
    label = match.group(1).decode() if match else ""
    if label in ("RSA PRIVATE KEY", "PRIVATE KEY") and want != "public":
        try:
            private = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise TokenError(f"{source}: unreadable {label} PEM ({exc})") from exc
        if not isinstance(private, RSAPrivateKey):
            raise TokenError(f"{source}: not an RSA key; RS256 needs RSA")
        return TokenKey("RS256", source, private_key=private, public_key=private.public_key())
    if label in ("RSA PUBLIC KEY", "PUBLIC KEY") and want != "private":
        try:
            public = load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise TokenError(f"{source}: unreadable {label} PEM ({exc})") from exc
        if not isinstance(public, RSAPublicKey):
            raise TokenError(f"{source}: not an RSA key; RS256 needs RSA")
        return TokenKey("RS256", source, public_key=public)
    expected = {
        "private": "an unencrypted RSA private key PEM (BEGIN RSA PRIVATE KEY or PRIVATE KEY)",
        "public": "an RSA public key PEM (BEGIN RSA PUBLIC KEY or PUBLIC KEY)",
        "any": "an unencrypted RSA key PEM",
    }[want]
    got = f"BEGIN {label}" if label else "no PEM header"
    raise TokenError(f"{source}: must hold {expected} (got {got}); atticd would refuse it too")


def key_from_env(environ: Mapping[str, str] | None = None) -> TokenKey:
    """The key atticd would load from its environment (used when ``[jwt.signing]`` is absent)."""
    env = os.environ if environ is None else environ
    for name in KEY_ENV_VARS:
        value = env.get(name, "")
        if not value:
            continue  # atticd treats an empty value as unset
        raw = _strict_base64(value, name)
        if name == ENV_HS256_SECRET:
            return hs256_key(raw, source=name)
        want: Literal["private", "public"] = "public" if name == ENV_RS256_PUBKEY else "private"
        return rs256_key(raw, source=name, want=want)
    raise TokenError(
        f"no token key: none of {', '.join(KEY_ENV_VARS)} is set (atticd reads them in this "
        "order; empty counts as unset); set one or pass --key-file"
    )


def key_from_file(path: str | os.PathLike[str]) -> TokenKey:
    """A PEM file (private: signs; public: verify-only), or a file holding the same base64 text
    as atticd's variable: a PEM inside means RS256, anything else is an HS256 secret."""
    source = f"--key-file {os.fspath(path)}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TokenError(f"--key-file: cannot read {os.fspath(path)!r} ({exc.strerror})") from exc
    if _PEM_LABEL.search(data[:200]):
        return rs256_key(data, source=source, want="any")
    try:
        text = data.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        text = ""
    if not text:
        raise TokenError(f"{source}: neither a PEM key nor base64 text (got {len(data)} bytes)")
    raw = _strict_base64(text, source)
    if _PEM_LABEL.search(raw[:200]):
        return rs256_key(raw, source=source, want="any")
    return hs256_key(raw, source=source)


def load_key(key_file: str | os.PathLike[str] | None = None) -> TokenKey:
    """``key_file`` if given, else the environment (:func:`key_from_env`)."""
    return key_from_env() if key_file is None else key_from_file(key_file)


def require_signing_key(key: TokenKey) -> None:
    """Raise :class:`TokenError` for a verify-only key, as atticadm does."""
    if key.can_sign:
        return
    hint = (
        f"unset {ENV_RS256_PUBKEY} (it takes precedence over {ENV_RS256_SECRET})"
        if key.source == ENV_RS256_PUBKEY
        else f"set {ENV_RS256_SECRET}"
    )
    raise TokenError(
        f"{key.source}: Pubkey-only JWT authentication cannot create signed JWTs; "
        f"{hint} or pass --key-file with the private key"
    )


def _strict_base64(value: str, source: str) -> bytes:
    """Standard base64 with padding, nothing else (Rust's ``base64`` STANDARD engine)."""
    if re.search(r"\s", value):
        raise TokenError(
            f"{source}: contains whitespace or a newline; atticd would refuse it too "
            "(encode with 'base64 -w0')"
        )
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise TokenError(
            f"{source}: not standard base64 with padding ({exc}); atticd would refuse it too"
        ) from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise TokenError(
            f"{source}: not canonical standard base64 with padding; atticd would refuse it too"
        )
    return raw


# --- minting ----------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_claims(
    *,
    sub: str,
    validity: float,
    now: float,
    grants: Mapping[str, Sequence[str]] | None = None,
    issuer: str | None = None,
    audiences: Sequence[str] = (),
) -> dict[str, Any]:
    """Claims as ``atticadm make-token`` builds them; problems name the atticadm flag.

    ``exp`` = now + validity (whole seconds). ``nbf`` is backdated by
    :data:`NBF_BACKDATE_SECONDS`: atticd rejects ``nbf > its now`` with zero clock tolerance,
    so a minting clock slightly ahead of the server's would give transient 401s. ``grants``
    maps permission names to patterns; entries are merged per pattern in first-inserted order,
    taking the permissions in :data:`PERMISSIONS` order. Since atticd uses the first matching
    wildcard and never merges, that order decides overlaps. No grants at all is allowed.
    """
    problems: list[str] = []
    if not isinstance(sub, str) or not sub:
        problems.append(f"--sub: must be a non-empty string (got {sub!r})")
    if (
        isinstance(validity, bool)
        or not isinstance(validity, int | float)
        or not math.isfinite(validity)
        or validity < 1
    ):
        problems.append(
            f"--validity: must be at least 1 second (got {validity!r} seconds; "
            "allowed: e.g. '12 hours', '30 days')"
        )
    caches = _caches(grants or {}, problems)
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        problems.append(f"--issuer: must be a non-empty string (got {issuer!r})")
    audience_list: list[str] = []
    for audience in audiences:
        if not isinstance(audience, str) or not audience:
            problems.append(f"--audience: must be a non-empty string (got {audience!r})")
        elif audience not in audience_list:
            audience_list.append(audience)
    if problems:
        raise TokenError(*problems)

    claims: dict[str, Any] = {
        "exp": math.floor(now + validity),
        "nbf": math.floor(now) - NBF_BACKDATE_SECONDS,
        "sub": sub,
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience_list:
        claims["aud"] = audience_list
    claims[NAMESPACE] = {"caches": caches}
    return claims


def _caches(grants: Mapping[str, Sequence[str]], problems: list[str]) -> dict[str, dict[str, int]]:
    for name in grants:
        if name not in PERMISSION_NAMES:
            problems.append(
                f"grants: unknown permission (got {name!r}; allowed: {', '.join(PERMISSION_NAMES)})"
            )
    caches: dict[str, dict[str, int]] = {}
    for name, claim_key in PERMISSIONS:
        patterns = grants.get(name, ())
        for pattern in (patterns,) if isinstance(patterns, str) else patterns:
            if not isinstance(pattern, str) or not is_cache_pattern(pattern):
                problems.append(
                    f"{_flag(name)}: not a cache pattern (got {pattern!r}; allowed: {PATTERN_RULE})"
                )
                continue
            caches.setdefault(pattern, {})[claim_key] = 1
    return caches


def encode(claims: Mapping[str, Any], key: TokenKey) -> str:
    """Sign ``claims`` (keys kept in their order) with header ``{"typ":"JWT","alg":...}``."""
    require_signing_key(key)
    import jwt

    signing_key: bytes | RSAPrivateKey = key.secret
    if key.algorithm == "RS256":
        assert key.private_key is not None  # require_signing_key
        signing_key = key.private_key
    # atticd accepts any key length, so PyJWT's length warning is noise here. (catch_warnings
    # is process-wide; fine for a CLI and tests, not for threads signing concurrently.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        try:
            return jwt.encode(
                dict(claims), signing_key, algorithm=key.algorithm, sort_headers=False
            )
        except jwt.InvalidKeyError as exc:
            raise TokenError(f"{key.source}: PyJWT refuses this key ({exc})") from exc


# --- checking ---------------------------------------------------------------------------------


def check_cache_name(cache: str) -> None:
    """Raise :class:`TokenError` unless ``cache`` is a cache name atticd accepts."""
    if not isinstance(cache, str) or not is_cache_name(cache):
        raise TokenError(f"--cache: not a cache name (got {cache!r}; allowed: {NAME_RULE})")


def resolve_permissions(
    caches: Mapping[str, Mapping[str, Any]], cache: str
) -> tuple[dict[str, bool], str | None]:
    """Permissions on ``cache`` and the key granting them, as atticd resolves them: the key
    equal to the name, else the first wildcard key (claim order) that matches. No merging."""
    via: str | None = cache if cache in caches else None
    if via is None:
        via = next((p for p in caches if "*" in p and pattern_matches(p, cache)), None)
    entry = caches[via] if via is not None else {}
    return {name: entry.get(key) == 1 for name, key in PERMISSIONS}, via


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
