"""Attic tokens (upstream_formats.attic_tokens) against upstream vectors, with PyJWT as the oracle.

The vectors are atticd's own test data (zhaofengli/attic ``token/src/tests.rs`` and the legacy
``server/src/access/tests.rs``), copied verbatim; expected permissions are upstream's asserts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from upstream_formats import attic_tokens as tokens
from upstream_formats.attic_names import NAME_RULE, PATTERN_RULE
from upstream_formats.attic_tokens import (
    ENV_HS256_SECRET,
    ENV_RS256_PUBKEY,
    ENV_RS256_SECRET,
    NAMESPACE,
    TokenError,
)

# --- upstream vectors (verbatim) ---------------------------------------------------------------

HS256_VECTOR_SECRET_BASE64 = "wyggPC0gaW52YWxpZCB1dGY4"
HS256_VECTOR_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDIzMjQ5ODYsImh0dHBzOi8vand0LmF0dGl"
    "jLnJzL3YxIjp7ImNhY2hlcyI6eyJhbGwtKiI6eyJyIjoxfSwiYWxsLWNpLSoiOnsidyI6MX0sImNhY2hlLXJ"
    "vIjp7InIiOjF9LCJjYWNoZS1ydyI6eyJyIjoxLCJ3IjoxfSwidGVhbS0qIjp7ImNjIjoxLCJyIjoxLCJ3Ijo"
    "xfX19LCJpYXQiOjE3MjgyMzI5OTYsIm5iZiI6MCwic3ViIjoibWVvdyJ9.wESluTI5K5v2W1WISGwAjazKMM"
    "UZBD-zSUYN-_XFN9I"
)
HS256_VECTOR_PAYLOAD: dict[str, Any] = {
    "exp": 4102324986,
    "https://jwt.attic.rs/v1": {
        "caches": {
            "all-*": {"r": 1},
            "all-ci-*": {"w": 1},
            "cache-ro": {"r": 1},
            "cache-rw": {"r": 1, "w": 1},
            "team-*": {"cc": 1, "r": 1, "w": 1},
        }
    },
    "iat": 1728232996,
    "nbf": 0,
    "sub": "meow",
}
RS256_VECTOR_SECRET_BASE64 = (
    "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBNUZranRMRzV5eS9pMFln"
    "YkQxeUJBK21GckNmLzZiQ2F0TDFFQ3ppNG1tZWhSZTcwCkFEL0dSSHhTVUErc0pZeCtZNjlyL0RqQWs2OFJl"
    "Q1c4b2FQWXhtc21RNG5VM2ZwZ2E3WWFqZ3ZoWmVsa3JtaC8KZ1ZURWtFTG1IZlJtQkwvOWlsT20yRHNtYTVh"
    "UFo0SFl6ellpdjJvcFF5UGRndXcyWXFtbzE3Nk5MdllCMmpJTwovR3FkdE55K3NPV296NktVSVlJa0hWWU5H"
    "MENVcFNzdXBqUTJ6VTVZMFc2UXlNQWFWd1BONElJT3lXWUNwZXRECjFJbWxYekhROXM4NXFSWnlLa21iZFht"
    "TVBVWmUvekRxc2FFd3lscFlpT0RjbDdRYU5QTzEzZnk3UGtQMmVwdUkKTk5tZ1E0WEF0MkF4ZXNKck5ibUs4"
    "aG1iM3doRXZkNjRFMGdEV1FJREFRQUJBb0lCQUJEemNRd2IyVi8wK1JCMgoyeE5qMll2eHpPTi93S2FYWHBT"
    "bUxDUHRIUDhSVEU2RnM0VkZOckdrelBOMmhsL3ZNdjZ4YWdHNk1NbUZ5SFV6CnovSHIyTTY1NjRnOTloaFlX"
    "c29FSmFwL3hVYXNjYlhrdWZwZTBZeW4rcThra21JdDRtTmZYRlpXNWI0ODJmNWsKRERVdG5weTVBOEVoSzNO"
    "cGw0dnhia0E5dS90TlVlT1NHTkhPYVZjcHdERVhDNXJ4bmFxTm5wMkMwa1A4ODRINgpSb2lZVkF4bytHaVpN"
    "VzhIOFRmSXVsenh3c04yQnVNcUNmOGVhNG1EM0pRVHZ2REhhUHM4eVJTUlB3UmlHYUkzCnVybFRmdjg4U20v"
    "a09oL0N2SkpoRnhCVkVNVjIydWRNUmU3L3NpTWtlbVlvUnhaTWJjRGVQK2h1RktJWTRSMEoKNnRJUHQ3VUNn"
    "WUVBOTlhL2IzeFBsQWh0ck02dUlUUXNQd0FYQUg3Q1NXL1FSdVJUTWVhYXVIMk9sRitjZmpMNApJS1Nsdy9Q"
    "aUtaUEk1TFRWM2ZVZk5WNTVsOFZHTytsT2ViTFhnaXBYM3BqSDBma3AyY3Q2Smk3aGw0aUlXK0h0ClpJNE9K"
    "YkYwTTBETHdySkd3T25QL2trRHNxSW9IbC9MdTBRM2FxSm1RVCsvcG54R083R21kbDhDZ1lFQTY5NFcKZHF2"
    "NnF4VjF5V0Z4QWZOOE1hZStpTC9xY1VhTm85ZzMva2YvOXZ3VXdtcERvR0xnaVVLMWZKb3BUYlBjcWgwRwpt"
    "bUZEQ3V2M1Q0OS9yU2k5dU4zYm82cmlXRUl4VFg1YUtFSjlpSEFMWDJGWDdGSDJRdUZGWEwzQ2c0ckdvL1pD"
    "CmdjUkxuS3dma3JUVnRxeEdaNjN4YmsvcFpHWjZtTW01VkNDck1VY0NnWUVBc3JUT1pQMG1CSC92VldQU2Uy"
    "NjcKV05JZncrT2pCSUR6bGFxZHNxV3Rlc3BPUFA2VVFRdFBqM29wYlJvMlFmU21Md09XRXUzbEN2Nk1mcnRv"
    "NFZwaAprNjg1WmtwU0FkZjRmWmRFYmg4aWZOWGhKUHIyR0FyWXVtRVVJbW5LZUFxSTRtTGFVZEJHZ2Z6MEJh"
    "S1hldzlvClFDZjRMWlBjVjhBMzJUeFRDRWdZMTlFQ2dZQU04U2F5WkVWZzFkQ2N1Q2dIUDJEMUtJc2YzY2Z6"
    "WnplbVlkclEKclFxeWRxcDg4Rys5Z1M5bzJLdzBwaERXSHFSaEFTNjNrZGFuNXNLdkx1U0dqOUc1THhNNks4"
    "bzNwWW9uQW1QWQpDYTN4cXBRMUs1WXpkVnZaMTVxQ3VEYlFHUEZGVmVIWVZQa0JJOENud0J4cDVaSUhabGYx"
    "QVpXQTJNNnBTNGhMCndXOGpTUUtCZ1FDQmNJbjU4Y0lmZkhmMjM4SUJvZnR1UVVzREZGcnkzaUVpaWpTYmJ1"
    "WnB1Vm8zL2pWbUsyaEYKS2xUL2xoRDdWdGJ1V3phMG9WQmZDaWZqMnZ2S2pmZ0l6NnF3Um1UbC9DSjlWdUNH"
    "TUI1VG55cGl3OEtodXorSAo0L2twdDdNcW9WQ0dRSjd1WVQyQzY1K0JqNklnUnBQT09za3VKNW1RZ0FlbTQ3"
    "eDBrVnRSemc9PQotLS0tLUVORCBSU0EgUFJJVkFURSBLRVktLS0tLQo="
)
RS256_VECTOR_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDIzMjQ5ODYsImh0dHBzOi8vand0LmF0dGl"
    "jLnJzL3YxIjp7ImNhY2hlcyI6eyJhbGwtKiI6eyJyIjoxfSwiYWxsLWNpLSoiOnsidyI6MX0sImNhY2hlLXJ"
    "vIjp7InIiOjF9LCJjYWNoZS1ydyI6eyJyIjoxLCJ3IjoxfSwidGVhbS0qIjp7ImNjIjoxLCJyIjoxLCJ3Ijo"
    "xfX19LCJpYXQiOjE3MjIwMDUwNzksIm5iZiI6MCwic3ViIjoibWVvdyJ9.Zs24IUbQOpOjhEe0sfsoSSJhDr"
    "zf4v-_wX_ceKqHeb2MERY8XSIQ1RPTNVeOW4LfJHumJj_rxh8Wv2BRGZSMldrTt0Ab_N7FnkhA37_jnRvgvE"
    "jSG3V4fC8aA4KoOa-43NRpg4HmPxiXte5-6LneBOR94Wss868wC1b_2yX2zCc1wQoZA3LNo-CRLnL4Yp5wY4"
    "Bbgyguv_9mfqXVYZykZnxumyGwVFD-Rub3KQ9d53Rf9tKcvRk9qxO2q8F2PKjeaUBG2xZtGwkWTMvSmwR1dK"
    "tkPUyPggOzbLoUG-6fxfo7D3NyL5qWCSN_7CkI-xlsRSLY1gTq-FqXvcpHeZbc8w"
)
RS256_VECTOR_PAYLOAD: dict[str, Any] = {
    "exp": 4102324986,
    "https://jwt.attic.rs/v1": {
        "caches": {
            "all-*": {"r": 1},
            "all-ci-*": {"w": 1},
            "cache-ro": {"r": 1},
            "cache-rw": {"r": 1, "w": 1},
            "team-*": {"cc": 1, "r": 1, "w": 1},
        }
    },
    "iat": 1722005079,
    "nbf": 0,
    "sub": "meow",
}
LEGACY_VECTOR_SECRET_BASE64 = "dmVyeSBzZWN1cmUgc2VjcmV0"
LEGACY_VECTOR_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtZW93IiwiZXhwIjo0MTAyMzI0OTg2LCJodHR"
    "wczovL2p3dC5hdHRpYy5ycy92MSI6eyJjYWNoZXMiOnsiY2FjaGUtcnciOnsiciI6MSwidyI6MX0sImNhY2h"
    "lLXJvIjp7InIiOjF9LCJ0ZWFtLSoiOnsiciI6MSwidyI6MSwiY2MiOjF9fX19.UlsIM9bQHr9SXGAcSQcoVP"
    "o9No8Zhh6Y5xfX8vCmKmA"
)
LEGACY_VECTOR_PAYLOAD: dict[str, Any] = {
    "sub": "meow",
    "exp": 4102324986,
    "https://jwt.attic.rs/v1": {
        "caches": {
            "cache-rw": {"r": 1, "w": 1},
            "cache-ro": {"r": 1},
            "team-*": {"r": 1, "w": 1, "cc": 1},
        }
    },
}

# Upstream asserts (token/src/tests.rs): cache -> (permissions, entry that grants them).
UPSTREAM_PERMISSIONS: dict[str, tuple[dict[str, bool], str | None]] = {
    "cache-rw": (
        {"pull": True, "push": True, "delete": False, "create_cache": False},
        "cache-rw",
    ),
    "cache-ro": (
        {"pull": True, "push": False, "delete": False, "create_cache": False},
        "cache-ro",
    ),
    "team-xyz": ({"pull": True, "push": True, "delete": False, "create_cache": True}, "team-*"),
    # all-* precedes all-ci-* in the claims; the first matching wildcard wins, no merging.
    "all-ci-abc": ({"pull": True, "push": False}, "all-*"),
}
# Between the vectors' iat and exp: atticd accepts them.
VECTOR_NOW = 1_750_000_000
VECTOR_EXP = 4102324986

VECTORS = {
    "hs256": (
        ENV_HS256_SECRET,
        HS256_VECTOR_SECRET_BASE64,
        HS256_VECTOR_TOKEN,
        HS256_VECTOR_PAYLOAD,
    ),
    "rs256": (
        ENV_RS256_SECRET,
        RS256_VECTOR_SECRET_BASE64,
        RS256_VECTOR_TOKEN,
        RS256_VECTOR_PAYLOAD,
    ),
    "legacy": (
        ENV_HS256_SECRET,
        LEGACY_VECTOR_SECRET_BASE64,
        LEGACY_VECTOR_TOKEN,
        LEGACY_VECTOR_PAYLOAD,
    ),
}
ALL_FALSE = dict.fromkeys(tokens.PERMISSION_NAMES, False)

# --- helpers (independent of the code under test) -----------------------------------------------

NOW = 1_700_000_000
STRONG_SECRET = b"an HS256 secret long enough for PyJWT, 32+ bytes"
HEADER_HS256 = b'{"alg":"HS256","typ":"JWT"}'
HEADER_NONE = b'{"alg":"none"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def forge(
    payload: dict[str, Any] | bytes,
    *,
    secret: bytes = STRONG_SECRET,
    header: bytes = HEADER_HS256,
) -> str:
    """A JWT signed with plain HMAC-SHA256, for claims PyJWT would refuse to encode."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(header)}.{b64url(body)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def strong_key() -> tokens.TokenKey:
    return tokens.hs256_key(STRONG_SECRET, source="test secret")


def vector_key(name: str) -> tokens.TokenKey:
    env_var, secret, _, _ = VECTORS[name]
    return tokens.key_from_env({env_var: secret})


def rs256_vector_private() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        base64.b64decode(RS256_VECTOR_SECRET_BASE64), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def public_pem(private: rsa.RSAPrivateKey, fmt: serialization.PublicFormat) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM, fmt)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def claims(**extra: Any) -> dict[str, Any]:
    """A valid payload at NOW unless ``extra`` says otherwise."""
    payload: dict[str, Any] = {"exp": NOW + 3600, NAMESPACE: {"caches": {"c": {"r": 1}}}}
    payload.update(extra)
    return payload


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
    assert tokens.encode(payload, vector_key(name)) == token


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
    result = tokens.inspect(token, vector_key(name), now=VECTOR_NOW)
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
    result = tokens.inspect(token, vector_key(name), now=VECTOR_NOW, cache=cache)
    assert result.valid
    assert result.permissions is not None
    assert set(result.permissions) == set(tokens.PERMISSION_NAMES)
    assert {k: result.permissions[k] for k in expected} == expected
    assert result.via_pattern == via
    assert result.can_discover is True


@pytest.mark.parametrize("name", ["hs256", "rs256"])
def test_first_matching_wildcard_wins_stably(name: str) -> None:
    _, _, token, _ = VECTORS[name]
    key = vector_key(name)
    for _ in range(1000):
        result = tokens.inspect(token, key, now=VECTOR_NOW, cache="all-ci-abc")
        assert result.permissions is not None
        assert result.permissions["pull"] is True
        assert result.permissions["push"] is False


@pytest.mark.parametrize("name", ["hs256", "rs256", "legacy"])
def test_forbidden_cache_cannot_be_discovered(name: str) -> None:
    _, _, token, _ = VECTORS[name]
    result = tokens.inspect(token, vector_key(name), now=VECTOR_NOW, cache="forbidden-cache")
    assert result.valid
    assert result.can_discover is False
    assert result.permissions == ALL_FALSE
    assert result.via_pattern is None


def test_expiry_has_zero_tolerance() -> None:
    key = vector_key("hs256")
    assert tokens.inspect(HS256_VECTOR_TOKEN, key, now=VECTOR_EXP).valid
    late = tokens.inspect(HS256_VECTOR_TOKEN, key, now=VECTOR_EXP + 0.5, cache="cache-rw")
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
    built = tokens.build_claims(sub="ci", validity=3600, now=now, grants={"push": ["main"]})
    token = tokens.encode(built, strong_key())
    decoded = jwt.decode(token, STRONG_SECRET, algorithms=["HS256"])
    assert decoded == built
    assert decoded[NAMESPACE] == {"caches": {"main": {"w": 1}}}
    assert b64url_decode(token.split(".")[0]) == b'{"typ":"JWT","alg":"HS256"}'


def test_short_hs256_secret_signs_without_warning() -> None:
    """atticd takes any secret length; PyJWT's warning must not escape (filterwarnings=error)."""
    key = vector_key("hs256")
    assert len(key.secret) == 18
    token = tokens.encode(tokens.build_claims(sub="x", validity=60, now=time.time()), key)
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        jwt.decode(token, key.secret, algorithms=["HS256"])


def test_minted_rs256_token_verifies_with_pyjwt(
    rsa_private: rsa.RSAPrivateKey, rsa_env_value: str
) -> None:
    key = tokens.key_from_env({ENV_RS256_SECRET: rsa_env_value})
    assert key.algorithm == "RS256"
    assert key.can_sign
    built = tokens.build_claims(
        sub="alice",
        validity=600,
        now=time.time(),
        grants={"pull": ["*"], "create_cache": ["alice-*"]},
        issuer="https://attic.example",
        audiences=["attic", "nix"],
    )
    token = tokens.encode(built, key)
    decoded = jwt.decode(
        token,
        rsa_private.public_key(),
        algorithms=["RS256"],
        issuer="https://attic.example",
        audience="nix",
    )
    assert decoded == built
    assert b64url_decode(token.split(".")[0]) == b'{"typ":"JWT","alg":"RS256"}'
    assert tokens.inspect(
        token, key, now=time.time(), issuer="https://attic.example", audiences=["nix"]
    ).valid


def test_payload_is_compact_json_in_claim_order() -> None:
    built = tokens.build_claims(
        sub="s", validity=60, now=NOW, grants={"pull": ["a"]}, issuer="i", audiences=["x"]
    )
    token = tokens.encode(built, strong_key())
    payload = b64url_decode(token.split(".")[1])
    assert payload == json.dumps(built, separators=(",", ":")).encode()
    assert payload.startswith(b'{"exp":')
    assert b"true" not in payload


# --- claim shape --------------------------------------------------------------------------------


def test_claim_order_and_times() -> None:
    built = tokens.build_claims(sub="ci", validity=86400, now=NOW, grants={"pull": ["x"]})
    assert list(built) == ["exp", "nbf", "sub", NAMESPACE]
    assert built["exp"] == NOW + 86400
    assert built["nbf"] <= NOW
    assert built["nbf"] == NOW - tokens.NBF_BACKDATE_SECONDS
    assert built["sub"] == "ci"
    assert "iat" not in built  # atticadm sets none


def test_fractional_now_gives_whole_seconds() -> None:
    built = tokens.build_claims(sub="ci", validity=90.0, now=NOW + 0.75)
    assert built["exp"] == NOW + 90
    assert built["nbf"] == NOW - 60
    assert type(built["exp"]) is int
    assert type(built["nbf"]) is int


def test_issuer_and_audiences_follow_sub() -> None:
    built = tokens.build_claims(
        sub="ci", validity=60, now=NOW, issuer="iss", audiences=["a", "b", "a"]
    )
    assert list(built) == ["exp", "nbf", "sub", "iss", "aud", NAMESPACE]
    assert built["iss"] == "iss"
    assert built["aud"] == ["a", "b"]


def test_overlapping_flags_merge_in_first_inserted_order() -> None:
    built = tokens.build_claims(
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
    grants = {name: ["*"] for name in reversed(tokens.PERMISSION_NAMES)}
    entry = tokens.build_claims(sub="root", validity=60, now=NOW, grants=grants)[NAMESPACE][
        "caches"
    ]["*"]
    # atticadm's flags: --pull r, --push w, --delete d, --create-cache cc, --configure-cache cr,
    # --configure-cache-retention cq, --destroy-cache cd
    assert list(entry) == ["r", "w", "d", "cc", "cr", "cq", "cd"]
    assert all(type(value) is int and value == 1 for value in entry.values())


def test_no_grants_is_allowed_and_grants_nothing() -> None:
    built = tokens.build_claims(sub="nobody", validity=60, now=NOW)
    assert built[NAMESPACE] == {"caches": {}}
    result = tokens.inspect(tokens.encode(built, strong_key()), strong_key(), now=NOW, cache="c")
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
        tokens.build_claims(sub="s", validity=60, now=NOW, grants=grants)
    (line,) = caught.value.lines
    assert line.startswith(f"{flag}: ")
    assert repr(value) in line
    assert PATTERN_RULE in line


@pytest.mark.parametrize("validity", [0, 0.5, -5, math.inf, math.nan])
def test_validity_must_be_positive(validity: float) -> None:
    with pytest.raises(TokenError, match=r"^--validity: "):
        tokens.build_claims(sub="s", validity=validity, now=NOW)


def test_all_claim_problems_reported_at_once() -> None:
    with pytest.raises(TokenError) as caught:
        tokens.build_claims(
            sub="", validity=0, now=NOW, grants={"push": ["ok", "no!"], "admin": ["x"]}
        )
    lines = caught.value.lines
    assert len(lines) == 4
    assert [line.split(":")[0] for line in lines] == ["--sub", "--validity", "grants", "--push"]
    assert "'admin'" in lines[2]
    assert "pull" in lines[2]


# --- inspect: why atticd would ignore a token -----------------------------------------------------

BOUND_ISSUER = "https://attic.example"


def _case(case_id: str, token: str, category: str, **options: Any) -> Any:
    return pytest.param(token, category, options, id=case_id)


def _caches(caches: Any) -> str:
    return forge({NAMESPACE: {"caches": caches}})


INVALID_CASES = [
    _case("no dots", "abc", "malformed token"),
    _case("two parts", "eyJhIjoxfQ.eyJhIjoxfQ", "malformed token"),
    _case("four parts", "a.b.c.d", "malformed token"),
    _case("empty", "", "malformed token"),
    _case("not base64url", "eyJ+.eyJ.c2ln", "malformed token"),
    _case("padded", f"{b64url(HEADER_HS256)}=.{b64url(b'{}')}.c2ln", "malformed token"),
    _case("header not json", f"{b64url(b'nope')}.{b64url(b'{}')}.c2ln", "malformed token"),
    _case("header a list", f"{b64url(b'[1]')}.{b64url(b'{}')}.c2ln", "malformed token"),
    _case("header without alg", forge(claims(), header=b'{"typ":"JWT"}'), "malformed token"),
    _case("payload not json", forge(b"not json"), "malformed token"),
    _case("payload a list", forge(b"[1, 2]"), "malformed token"),
    _case("payload NaN", forge(b'{"exp": NaN}'), "malformed token"),
    _case("alg RS256", forge(claims(), header=b'{"alg":"RS256"}'), "algorithm mismatch"),
    _case(
        "alg none",
        f"{b64url(HEADER_NONE)}.{b64url(json.dumps(claims()).encode())}.",
        "algorithm mismatch",
    ),
    _case("rs256 vector", RS256_VECTOR_TOKEN, "algorithm mismatch"),
    _case(
        "other secret", forge(claims(), secret=b"another 32-byte secret.........."), "bad signature"
    ),
    _case("hs256 vector", HS256_VECTOR_TOKEN, "bad signature"),
    _case("expired", forge(claims(exp=NOW - 1)), "expired"),
    _case("nbf in future", forge(claims(nbf=NOW + 1)), "not yet valid"),
    _case("iat in future", forge(claims(iat=NOW + 1)), "issued in the future"),
    _case("no iss", forge(claims()), "issuer mismatch", issuer=BOUND_ISSUER),
    _case("other iss", forge(claims(iss="https://x")), "issuer mismatch", issuer=BOUND_ISSUER),
    _case("no aud", forge(claims()), "audience mismatch", audiences=["a", "b"]),
    _case("aud string", forge(claims(aud="c")), "audience mismatch", audiences=["a", "b"]),
    _case("aud list", forge(claims(aud=["c", "d"])), "audience mismatch", audiences=["a"]),
    _case("no namespace", forge({"exp": NOW + 60, "sub": "x"}), "malformed claims"),
    _case("namespace list", forge({NAMESPACE: []}), "malformed claims"),
    _case("no caches", forge({NAMESPACE: {}}), "malformed claims"),
    _case("caches list", _caches([]), "malformed claims"),
    _case("caches null", _caches(None), "malformed claims"),
    _case("bool value", _caches({"c": {"r": True}}), "malformed claims"),
    _case("value 2", _caches({"c": {"w": 2}}), "malformed claims"),
    _case("value 1.0", _caches({"c": {"cc": 1.0}}), "malformed claims"),
    _case("value '1'", _caches({"c": {"cd": "1"}}), "malformed claims"),
    _case("value null", _caches({"c": {"cq": None}}), "malformed claims"),
    _case("entry list", _caches({"c": [1]}), "malformed claims"),
    _case("sub number", forge(claims(sub=5)), "malformed claims"),
    _case("iss number", forge(claims(iss=5)), "malformed claims"),
    _case("aud numbers", forge(claims(aud=[1])), "malformed claims"),
    _case("exp string", forge(claims(exp="soon")), "malformed claims"),
    _case("exp bool", forge(claims(exp=True)), "malformed claims"),
    _case("pattern ?", _caches({"c": {"r": 1}, "bad?": {"r": 1}}), "invalid pattern"),
    _case("pattern empty", _caches({"": {"r": 1}}), "invalid pattern"),
    _case("pattern 51", _caches({"c" * 51: {"r": 1}}), "invalid pattern"),
    _case("pattern leading -", _caches({"-c": {"r": 1}}), "invalid pattern"),
]


@pytest.mark.parametrize(("token", "category", "options"), INVALID_CASES)
def test_invalid_token_reasons(token: str, category: str, options: dict[str, Any]) -> None:
    result = tokens.inspect(token, strong_key(), now=NOW, cache="c", **options)
    assert not result.valid
    assert result.reason is not None
    assert result.reason.split(":")[0] == category, result.reason
    # an ignored token is anonymous to atticd
    assert result.permissions == ALL_FALSE
    assert result.via_pattern is None
    assert result.can_discover is False
    assert "reason" in result.as_dict()


def test_claims_shown_even_when_signature_is_bad() -> None:
    payload = claims(sub="mallory")
    result = tokens.inspect(
        forge(payload, secret=b"not the server's secret, 32 bytes"), strong_key(), now=NOW
    )
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")
    assert result.claims == payload
    assert result.header == json.loads(HEADER_HS256)


def test_tampered_payload_is_a_bad_signature() -> None:
    header, _, signature = forge(claims()).split(".")
    grab = b64url(json.dumps(claims(**{NAMESPACE: {"caches": {"*": {"w": 1}}}})).encode())
    result = tokens.inspect(f"{header}.{grab}.{signature}", strong_key(), now=NOW)
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")


def test_rs256_token_with_another_rsa_key_is_a_bad_signature(
    rsa_private: rsa.RSAPrivateKey,
) -> None:
    other = tokens.rs256_key(
        public_pem(rsa_private, serialization.PublicFormat.SubjectPublicKeyInfo),
        source="other",
        want="public",
    )
    result = tokens.inspect(RS256_VECTOR_TOKEN, other, now=VECTOR_NOW)
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")


def test_hs256_token_with_rs256_key_is_an_algorithm_mismatch() -> None:
    result = tokens.inspect(HS256_VECTOR_TOKEN, vector_key("rs256"), now=VECTOR_NOW)
    assert result.reason is not None
    assert result.reason.startswith("algorithm mismatch: ")


@pytest.mark.parametrize(
    ("payload", "options"),
    [
        (claims(nbf=NOW, iat=NOW, exp=NOW), {}),
        (claims(iss=BOUND_ISSUER), {"issuer": BOUND_ISSUER}),
        (claims(aud="b"), {"audiences": ["a", "b"]}),
        (claims(aud=["x", "a"]), {"audiences": ["a"]}),
        (claims(iss="anything", aud="anything"), {}),
        ({NAMESPACE: {"caches": {}}}, {}),
        (claims(sub=None, exp=None), {}),
    ],
)
def test_valid_edge_cases(payload: dict[str, Any], options: dict[str, Any]) -> None:
    result = tokens.inspect(forge(payload), strong_key(), now=NOW, **options)
    assert result.valid, result.reason


def test_zero_and_unknown_permission_keys() -> None:
    token = forge(claims(**{NAMESPACE: {"caches": {"c": {"r": 0, "w": 1, "zz": 7}}}}))
    result = tokens.inspect(token, strong_key(), now=NOW, cache="c")
    assert result.valid, result.reason
    assert result.permissions == {**ALL_FALSE, "push": True}


def test_exact_name_beats_an_earlier_wildcard() -> None:
    caches = {"team-*": {"r": 1}, "team-x": {"w": 1}, "*": {"d": 1}}
    token = forge(claims(**{NAMESPACE: {"caches": caches}}))
    exact = tokens.inspect(token, strong_key(), now=NOW, cache="team-x")
    assert exact.permissions == {**ALL_FALSE, "push": True}
    assert exact.via_pattern == "team-x"
    wildcard = tokens.inspect(token, strong_key(), now=NOW, cache="team-y")
    assert wildcard.permissions == {**ALL_FALSE, "pull": True}
    assert wildcard.via_pattern == "team-*"
    fallback = tokens.inspect(token, strong_key(), now=NOW, cache="other")
    assert fallback.via_pattern == "*"


def test_inspect_rejects_a_bad_cache_name() -> None:
    with pytest.raises(TokenError) as caught:
        tokens.inspect(HS256_VECTOR_TOKEN, vector_key("hs256"), now=NOW, cache="team-*")
    assert caught.value.lines == (
        f"--cache: not a cache name (got 'team-*'; allowed: {NAME_RULE})",
    )


# --- keys from the environment ------------------------------------------------------------------


def test_env_precedence_pubkey_first() -> None:
    pub = b64(public_pem(rs256_vector_private(), serialization.PublicFormat.PKCS1))
    env = {
        ENV_RS256_PUBKEY: pub,
        ENV_RS256_SECRET: RS256_VECTOR_SECRET_BASE64,
        ENV_HS256_SECRET: HS256_VECTOR_SECRET_BASE64,
    }
    key = tokens.key_from_env(env)
    assert (key.algorithm, key.source, key.can_sign) == ("RS256", ENV_RS256_PUBKEY, False)
    assert tokens.inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW).valid
    with pytest.raises(
        TokenError, match="Pubkey-only JWT authentication cannot create signed JWTs"
    ):
        tokens.encode(RS256_VECTOR_PAYLOAD, key)
    with pytest.raises(TokenError) as caught:
        tokens.require_signing_key(key)
    assert ENV_RS256_PUBKEY in str(caught.value)


def test_env_precedence_rs256_secret_before_hs256() -> None:
    env = {ENV_RS256_SECRET: RS256_VECTOR_SECRET_BASE64, ENV_HS256_SECRET: "c2VjcmV0"}
    key = tokens.key_from_env(env)
    assert key.source == ENV_RS256_SECRET
    assert tokens.encode(RS256_VECTOR_PAYLOAD, key) == RS256_VECTOR_TOKEN


def test_env_empty_values_count_as_unset() -> None:
    env = {ENV_RS256_PUBKEY: "", ENV_RS256_SECRET: "", ENV_HS256_SECRET: HS256_VECTOR_SECRET_BASE64}
    key = tokens.key_from_env(env)
    assert key.source == ENV_HS256_SECRET
    assert tokens.encode(HS256_VECTOR_PAYLOAD, key) == HS256_VECTOR_TOKEN


def test_env_without_a_key() -> None:
    with pytest.raises(TokenError) as caught:
        tokens.key_from_env({ENV_HS256_SECRET: "", "HOME": "/root"})
    message = str(caught.value)
    assert all(name in message for name in (ENV_RS256_PUBKEY, ENV_RS256_SECRET, ENV_HS256_SECRET))
    assert message.index(ENV_RS256_PUBKEY) < message.index(ENV_RS256_SECRET)


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tokens.KEY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_HS256_SECRET, HS256_VECTOR_SECRET_BASE64)
    assert tokens.load_key().source == ENV_HS256_SECRET


@pytest.mark.parametrize(
    "value",
    [
        HS256_VECTOR_SECRET_BASE64 + "\n",
        HS256_VECTOR_SECRET_BASE64[:12] + "\n" + HS256_VECTOR_SECRET_BASE64[12:],
        " " + HS256_VECTOR_SECRET_BASE64,
        HS256_VECTOR_SECRET_BASE64[:-1],  # missing padding
        HS256_VECTOR_SECRET_BASE64 + "==",  # excess padding
        "QR==",  # non-canonical trailing bits
        "not base64!",
        "c2VjcmV0_-",  # base64url alphabet
    ],
)
@pytest.mark.parametrize("env_var", [ENV_HS256_SECRET, ENV_RS256_SECRET, ENV_RS256_PUBKEY])
def test_env_bad_base64_names_the_variable(env_var: str, value: str) -> None:
    with pytest.raises(TokenError) as caught:
        tokens.key_from_env({env_var: value})
    message = str(caught.value)
    assert message.startswith(f"{env_var}: ")
    assert "atticd would refuse it too" in message


def test_env_rs256_secret_must_be_a_private_pem() -> None:
    for value, env_var in [
        (b64(b"just a secret"), ENV_RS256_SECRET),
        (
            b64(public_pem(rs256_vector_private(), serialization.PublicFormat.PKCS1)),
            ENV_RS256_SECRET,
        ),
        (RS256_VECTOR_SECRET_BASE64, ENV_RS256_PUBKEY),
    ]:
        with pytest.raises(TokenError) as caught:
            tokens.key_from_env({env_var: value})
        assert str(caught.value).startswith(f"{env_var}: ")


@pytest.mark.parametrize(
    "fmt", [serialization.PublicFormat.PKCS1, serialization.PublicFormat.SubjectPublicKeyInfo]
)
def test_env_pubkey_formats_verify_the_vector(fmt: serialization.PublicFormat) -> None:
    key = tokens.key_from_env({ENV_RS256_PUBKEY: b64(public_pem(rs256_vector_private(), fmt))})
    assert tokens.inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW, cache="cache-rw").valid


def test_env_pkcs8_private_key_signs_like_pkcs1() -> None:
    pkcs8 = rs256_vector_private().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = tokens.key_from_env({ENV_RS256_SECRET: b64(pkcs8)})
    assert tokens.encode(RS256_VECTOR_PAYLOAD, key) == RS256_VECTOR_TOKEN


def test_hs256_secret_may_be_any_bytes() -> None:
    key = vector_key("hs256")
    assert key.secret == bytes.fromhex("c328203c2d20696e76616c69642075746638")
    assert repr(key.secret) not in repr(key)


# --- keys from a file ---------------------------------------------------------------------------


def test_key_file_with_base64_text(tmp_path: Path) -> None:
    path = tmp_path / "hs256"
    path.write_text(HS256_VECTOR_SECRET_BASE64 + "\n")
    key = tokens.key_from_file(path)
    assert key.algorithm == "HS256"
    assert tokens.encode(HS256_VECTOR_PAYLOAD, key) == HS256_VECTOR_TOKEN


def test_key_file_with_base64_of_a_pem(tmp_path: Path) -> None:
    path = tmp_path / "rs256"
    path.write_text(RS256_VECTOR_SECRET_BASE64)
    assert tokens.encode(RS256_VECTOR_PAYLOAD, tokens.key_from_file(path)) == RS256_VECTOR_TOKEN


def test_key_file_with_pem(tmp_path: Path) -> None:
    private = tmp_path / "private.pem"
    private.write_bytes(base64.b64decode(RS256_VECTOR_SECRET_BASE64))
    assert tokens.encode(RS256_VECTOR_PAYLOAD, tokens.key_from_file(private)) == RS256_VECTOR_TOKEN
    public = tmp_path / "public.pem"
    public.write_bytes(
        public_pem(rs256_vector_private(), serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key = tokens.key_from_file(public)
    assert not key.can_sign
    assert tokens.inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW).valid
    with pytest.raises(TokenError, match="Pubkey-only"):
        tokens.encode(RS256_VECTOR_PAYLOAD, key)


def test_key_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(TokenError, match=r"^--key-file: cannot read"):
        tokens.key_from_file(missing)
    wrapped = tmp_path / "wrapped"
    wrapped.write_text(
        "\n".join(RS256_VECTOR_SECRET_BASE64[i : i + 76] for i in range(0, 2240, 76)) + "\n"
    )
    with pytest.raises(TokenError, match="whitespace or a newline"):
        tokens.key_from_file(wrapped)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(TokenError, match=r"^--key-file "):
        tokens.key_from_file(empty)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        rs256_vector_private().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(TokenError, match="ENCRYPTED PRIVATE KEY"):
        tokens.key_from_file(encrypted)
