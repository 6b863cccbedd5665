"""Attic token claims and signing, the way ``atticadm make-token`` mints them.

:func:`build_claims` builds the claims (problems name the atticadm flag), :func:`encode` signs
them with the key from :mod:`upstream_formats.attic_token_keys`, and :func:`resolve_permissions`
says what a token's claims grant on a cache, as atticd resolves them. Checking a token the way
atticd does is :mod:`upstream_formats.attic_token_inspect`. No cdktf/jsii; PyJWT is imported only
when a token is signed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from upstream_formats.attic_names import PATTERN_RULE, is_cache_pattern, pattern_matches
from upstream_formats.attic_token_keys import TokenError, TokenKey, require_signing_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

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

NBF_BACKDATE_SECONDS = 60


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
