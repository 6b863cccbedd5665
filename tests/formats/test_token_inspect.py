"""Why atticd would ignore a token (upstream_formats.attic_token_inspect): every check in its
order, edge cases it accepts, and how permissions resolve, with forged tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.token_vectors import (
    ALL_FALSE,
    HEADER_HS256,
    HEADER_NONE,
    HS256_VECTOR_TOKEN,
    NOW,
    RS256_VECTOR_TOKEN,
    VECTOR_NOW,
    b64url,
    claims,
    forge,
    public_pem,
    strong_key,
    vector_key,
)
from upstream_formats.attic_names import NAME_RULE
from upstream_formats.attic_token_inspect import inspect
from upstream_formats.attic_token_keys import TokenError, rs256_key
from upstream_formats.attic_tokens import NAMESPACE

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
    result = inspect(token, strong_key(), now=NOW, cache="c", **options)
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
    result = inspect(
        forge(payload, secret=b"not the server's secret, 32 bytes"), strong_key(), now=NOW
    )
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")
    assert result.claims == payload
    assert result.header == json.loads(HEADER_HS256)


def test_tampered_payload_is_a_bad_signature() -> None:
    header, _, signature = forge(claims()).split(".")
    grab = b64url(json.dumps(claims(**{NAMESPACE: {"caches": {"*": {"w": 1}}}})).encode())
    result = inspect(f"{header}.{grab}.{signature}", strong_key(), now=NOW)
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")


def test_rs256_token_with_another_rsa_key_is_a_bad_signature() -> None:
    another = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rs256_key(
        public_pem(another, serialization.PublicFormat.SubjectPublicKeyInfo),
        source="other",
        want="public",
    )
    result = inspect(RS256_VECTOR_TOKEN, other, now=VECTOR_NOW)
    assert result.reason is not None
    assert result.reason.startswith("bad signature: ")


def test_hs256_token_with_rs256_key_is_an_algorithm_mismatch() -> None:
    result = inspect(HS256_VECTOR_TOKEN, vector_key("rs256"), now=VECTOR_NOW)
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
    result = inspect(forge(payload), strong_key(), now=NOW, **options)
    assert result.valid, result.reason


def test_zero_and_unknown_permission_keys() -> None:
    token = forge(claims(**{NAMESPACE: {"caches": {"c": {"r": 0, "w": 1, "zz": 7}}}}))
    result = inspect(token, strong_key(), now=NOW, cache="c")
    assert result.valid, result.reason
    assert result.permissions == {**ALL_FALSE, "push": True}


def test_exact_name_beats_an_earlier_wildcard() -> None:
    caches = {"team-*": {"r": 1}, "team-x": {"w": 1}, "*": {"d": 1}}
    token = forge(claims(**{NAMESPACE: {"caches": caches}}))
    exact = inspect(token, strong_key(), now=NOW, cache="team-x")
    assert exact.permissions == {**ALL_FALSE, "push": True}
    assert exact.via_pattern == "team-x"
    wildcard = inspect(token, strong_key(), now=NOW, cache="team-y")
    assert wildcard.permissions == {**ALL_FALSE, "pull": True}
    assert wildcard.via_pattern == "team-*"
    fallback = inspect(token, strong_key(), now=NOW, cache="other")
    assert fallback.via_pattern == "*"


def test_inspect_rejects_a_bad_cache_name() -> None:
    with pytest.raises(TokenError) as caught:
        inspect(HS256_VECTOR_TOKEN, vector_key("hs256"), now=NOW, cache="team-*")
    assert caught.value.lines == (
        f"--cache: not a cache name (got 'team-*'; allowed: {NAME_RULE})",
    )
