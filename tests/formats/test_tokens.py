"""Attic token claims and signing (upstream_formats.attic_tokens) against upstream vectors, with
PyJWT as the oracle.

The vectors are atticd's own test data (zhaofengli/attic ``token/src/tests.rs`` and the legacy
``server/src/access/tests.rs``), copied verbatim; expected permissions are upstream's asserts.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.token_vectors import (
    ALL_FALSE,
    HS256_VECTOR_PAYLOAD,
    HS256_VECTOR_TOKEN,
    NOW,
    STRONG_SECRET,
    UPSTREAM_PERMISSIONS,
    VECTOR_EXP,
    VECTOR_NOW,
    VECTORS,
    b64,
    b64url_decode,
    rs256_vector_private,
    strong_key,
    vector_key,
)
from upstream_formats.attic_names import PATTERN_RULE
from upstream_formats.attic_token_inspect import inspect
from upstream_formats.attic_token_keys import ENV_RS256_SECRET, TokenError, key_from_env
from upstream_formats.attic_tokens import (
    NAMESPACE,
    NBF_BACKDATE_SECONDS,
    PERMISSION_NAMES,
    build_claims,
    encode,
)


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_env_value(rsa_private: rsa.RSAPrivateKey) -> str:
    """As atticd's env var holds it: base64 of the PKCS#1 PEM ('BEGIN RSA PRIVATE KEY')."""
    pem = rsa_private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    return b64(pem)


# --- upstream vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hs256", "rs256"])
def test_encode_reproduces_upstream_vector_byte_for_byte(name: str) -> None:
    _, _, token, payload = VECTORS[name]
    assert encode(payload, vector_key(name)) == token


def test_vector_data_is_intact_per_pyjwt() -> None:
    """Guards the embedded data itself: PyJWT (not our code) verifies every vector."""
    for name, (_, secret, token, payload) in VECTORS.items():
        algorithm = "RS256" if name == "rs256" else "HS256"
        key: Any = base64.b64decode(secret)
        if algorithm == "RS256":
            key = rs256_vector_private().public_key()
            assert jwt.decode(token, key, algorithms=[algorithm]) == payload
        else:
            with pytest.warns(jwt.InsecureKeyLengthWarning):
                assert jwt.decode(token, key, algorithms=[algorithm]) == payload


@pytest.mark.parametrize("name", ["hs256", "rs256", "legacy"])
def test_inspect_accepts_upstream_vectors(name: str) -> None:
    _, _, token, payload = VECTORS[name]
    result = inspect(token, vector_key(name), now=VECTOR_NOW)
    assert result.valid, result.reason
    assert result.reason is None
    assert result.claims == payload
    assert list(result.claims) == list(payload)
    algorithm = "RS256" if name == "rs256" else "HS256"
    assert result.header == {"typ": "JWT", "alg": algorithm}
    assert result.permissions is None


@pytest.mark.parametrize(
    ("name", "cache"),
    [
        (name, cache)
        for name in ("hs256", "rs256", "legacy")
        for cache in UPSTREAM_PERMISSIONS
        if not (name == "legacy" and cache == "all-ci-abc")  # legacy has no all-* entries
    ],
)
def test_upstream_permission_asserts(name: str, cache: str) -> None:
    _, _, token, _ = VECTORS[name]
    expected, via = UPSTREAM_PERMISSIONS[cache]
    result = inspect(token, vector_key(name), now=VECTOR_NOW, cache=cache)
    assert result.valid
    assert result.permissions is not None
    assert set(result.permissions) == set(PERMISSION_NAMES)
    assert {k: result.permissions[k] for k in expected} == expected
    assert result.via_pattern == via
    assert result.can_discover is True


@pytest.mark.parametrize("name", ["hs256", "rs256"])
def test_first_matching_wildcard_wins_stably(name: str) -> None:
    _, _, token, _ = VECTORS[name]
    key = vector_key(name)
    for _ in range(1000):
        result = inspect(token, key, now=VECTOR_NOW, cache="all-ci-abc")
        assert result.permissions is not None
        assert result.permissions["pull"] is True
        assert result.permissions["push"] is False


@pytest.mark.parametrize("name", ["hs256", "rs256", "legacy"])
def test_forbidden_cache_cannot_be_discovered(name: str) -> None:
    _, _, token, _ = VECTORS[name]
    result = inspect(token, vector_key(name), now=VECTOR_NOW, cache="forbidden-cache")
    assert result.valid
    assert result.can_discover is False
    assert result.permissions == ALL_FALSE
    assert result.via_pattern is None


def test_expiry_has_zero_tolerance() -> None:
    key = vector_key("hs256")
    assert inspect(HS256_VECTOR_TOKEN, key, now=VECTOR_EXP).valid
    late = inspect(HS256_VECTOR_TOKEN, key, now=VECTOR_EXP + 0.5, cache="cache-rw")
    assert not late.valid
    assert late.reason is not None
    assert late.reason.startswith("expired: ")
    # still decoded for the reader, but atticd grants nothing
    assert late.claims == HS256_VECTOR_PAYLOAD
    assert late.permissions == ALL_FALSE
    assert late.can_discover is False


# --- minting: PyJWT as the verifier ---------------------------------------------------------------


def test_minted_hs256_token_verifies_with_pyjwt() -> None:
    now = time.time()
    built = build_claims(sub="ci", validity=3600, now=now, grants={"push": ["main"]})
    token = encode(built, strong_key())
    decoded = jwt.decode(token, STRONG_SECRET, algorithms=["HS256"])
    assert decoded == built
    assert decoded[NAMESPACE] == {"caches": {"main": {"w": 1}}}
    assert b64url_decode(token.split(".")[0]) == b'{"typ":"JWT","alg":"HS256"}'


def test_short_hs256_secret_signs_without_warning() -> None:
    """atticd takes any secret length; PyJWT's warning must not escape (filterwarnings=error)."""
    key = vector_key("hs256")
    assert len(key.secret) == 18
    token = encode(build_claims(sub="x", validity=60, now=time.time()), key)
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        jwt.decode(token, key.secret, algorithms=["HS256"])


def test_minted_rs256_token_verifies_with_pyjwt(
    rsa_private: rsa.RSAPrivateKey, rsa_env_value: str
) -> None:
    key = key_from_env({ENV_RS256_SECRET: rsa_env_value})
    assert key.algorithm == "RS256"
    assert key.can_sign
    built = build_claims(
        sub="alice",
        validity=600,
        now=time.time(),
        grants={"pull": ["*"], "create_cache": ["alice-*"]},
        issuer="https://attic.example",
        audiences=["attic", "nix"],
    )
    token = encode(built, key)
    decoded = jwt.decode(
        token,
        rsa_private.public_key(),
        algorithms=["RS256"],
        issuer="https://attic.example",
        audience="nix",
    )
    assert decoded == built
    assert b64url_decode(token.split(".")[0]) == b'{"typ":"JWT","alg":"RS256"}'
    assert inspect(
        token, key, now=time.time(), issuer="https://attic.example", audiences=["nix"]
    ).valid


def test_payload_is_compact_json_in_claim_order() -> None:
    built = build_claims(
        sub="s", validity=60, now=NOW, grants={"pull": ["a"]}, issuer="i", audiences=["x"]
    )
    token = encode(built, strong_key())
    payload = b64url_decode(token.split(".")[1])
    assert payload == json.dumps(built, separators=(",", ":")).encode()
    assert payload.startswith(b'{"exp":')
    assert b"true" not in payload


# --- claim shape --------------------------------------------------------------------------------


def test_claim_order_and_times() -> None:
    built = build_claims(sub="ci", validity=86400, now=NOW, grants={"pull": ["x"]})
    assert list(built) == ["exp", "nbf", "sub", NAMESPACE]
    assert built["exp"] == NOW + 86400
    assert built["nbf"] <= NOW
    assert built["nbf"] == NOW - NBF_BACKDATE_SECONDS
    assert built["sub"] == "ci"
    assert "iat" not in built  # atticadm sets none


def test_fractional_now_gives_whole_seconds() -> None:
    built = build_claims(sub="ci", validity=90.0, now=NOW + 0.75)
    assert built["exp"] == NOW + 90
    assert built["nbf"] == NOW - 60
    assert type(built["exp"]) is int
    assert type(built["nbf"]) is int


def test_issuer_and_audiences_follow_sub() -> None:
    built = build_claims(sub="ci", validity=60, now=NOW, issuer="iss", audiences=["a", "b", "a"])
    assert list(built) == ["exp", "nbf", "sub", "iss", "aud", NAMESPACE]
    assert built["iss"] == "iss"
    assert built["aud"] == ["a", "b"]


def test_overlapping_flags_merge_in_first_inserted_order() -> None:
    built = build_claims(
        sub="ci",
        validity=60,
        now=NOW,
        grants={"push": ["team-*"], "pull": ["team-x", "team-*"]},
    )
    caches = built[NAMESPACE]["caches"]
    assert list(caches) == ["team-x", "team-*"]
    assert caches == {"team-x": {"r": 1}, "team-*": {"r": 1, "w": 1}}
    assert list(caches["team-*"]) == ["r", "w"]


def test_every_permission_on_one_pattern_in_atticadm_order() -> None:
    grants = {name: ["*"] for name in reversed(PERMISSION_NAMES)}
    entry = build_claims(sub="root", validity=60, now=NOW, grants=grants)[NAMESPACE]["caches"]["*"]
    # atticadm's flags: --pull r, --push w, --delete d, --create-cache cc, --configure-cache cr,
    # --configure-cache-retention cq, --destroy-cache cd
    assert list(entry) == ["r", "w", "d", "cc", "cr", "cq", "cd"]
    assert all(type(value) is int and value == 1 for value in entry.values())


def test_no_grants_is_allowed_and_grants_nothing() -> None:
    built = build_claims(sub="nobody", validity=60, now=NOW)
    assert built[NAMESPACE] == {"caches": {}}
    result = inspect(encode(built, strong_key()), strong_key(), now=NOW, cache="c")
    assert result.valid
    assert result.can_discover is False


@pytest.mark.parametrize(
    ("grants", "flag", "value"),
    [
        ({"pull": ["bad?"]}, "--pull", "bad?"),
        ({"create_cache": ["-lead"]}, "--create-cache", "-lead"),
        ({"configure_cache_retention": [""]}, "--configure-cache-retention", ""),
        ({"destroy_cache": ["x" * 51]}, "--destroy-cache", "x" * 51),
    ],
)
def test_bad_pattern_names_flag_value_and_rule(
    grants: dict[str, list[str]], flag: str, value: str
) -> None:
    with pytest.raises(TokenError) as caught:
        build_claims(sub="s", validity=60, now=NOW, grants=grants)
    (line,) = caught.value.lines
    assert line.startswith(f"{flag}: ")
    assert repr(value) in line
    assert PATTERN_RULE in line


@pytest.mark.parametrize("validity", [0, 0.5, -5, math.inf, math.nan])
def test_validity_must_be_positive(validity: float) -> None:
    with pytest.raises(TokenError, match=r"^--validity: "):
        build_claims(sub="s", validity=validity, now=NOW)


def test_all_claim_problems_reported_at_once() -> None:
    with pytest.raises(TokenError) as caught:
        build_claims(sub="", validity=0, now=NOW, grants={"push": ["ok", "no!"], "admin": ["x"]})
    lines = caught.value.lines
    assert len(lines) == 4
    assert [line.split(":")[0] for line in lines] == ["--sub", "--validity", "grants", "--push"]
    assert "'admin'" in lines[2]
    assert "pull" in lines[2]
