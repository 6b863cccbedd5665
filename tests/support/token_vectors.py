"""atticd's token test vectors (verbatim from zhaofengli/attic ``token/src/tests.rs`` and the
legacy ``server/src/access/tests.rs``) and helpers to forge tokens; shared by the token tests of
the formats and of ``attic-iac token``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from upstream_formats.attic_token_keys import (
    ENV_HS256_SECRET,
    ENV_RS256_SECRET,
    TokenKey,
    hs256_key,
    key_from_env,
)
from upstream_formats.attic_tokens import NAMESPACE, PERMISSION_NAMES

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
ALL_FALSE = dict.fromkeys(PERMISSION_NAMES, False)

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


def strong_key() -> TokenKey:
    return hs256_key(STRONG_SECRET, source="test secret")


def vector_key(name: str) -> TokenKey:
    env_var, secret, _, _ = VECTORS[name]
    return key_from_env({env_var: secret})


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
