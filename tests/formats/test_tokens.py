"""Attic tokens (upstream_formats.attic_tokens) against upstream vectors, with PyJWT as the oracle.

The vectors are atticd's own test data (zhaofengli/attic ``token/src/tests.rs`` and the legacy
``server/src/access/tests.rs``), copied verbatim; expected permissions are upstream's asserts.
"""

from __future__ import annotations

import base64
import json
import math
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.token_vectors import (
    ALL_FALSE,
    HEADER_HS256,
    HEADER_NONE,
    HS256_VECTOR_PAYLOAD,
    HS256_VECTOR_SECRET_BASE64,
    HS256_VECTOR_TOKEN,
    NOW,
    RS256_VECTOR_PAYLOAD,
    RS256_VECTOR_SECRET_BASE64,
    RS256_VECTOR_TOKEN,
    STRONG_SECRET,
    UPSTREAM_PERMISSIONS,
    VECTOR_EXP,
    VECTOR_NOW,
    VECTORS,
    b64,
    b64url,
    b64url_decode,
    claims,
    forge,
    public_pem,
    rs256_vector_private,
    strong_key,
    vector_key,
)
from upstream_formats import attic_tokens as tokens
from upstream_formats.attic_names import NAME_RULE, PATTERN_RULE
from upstream_formats.attic_tokens import (
    ENV_HS256_SECRET,
    ENV_RS256_PUBKEY,
    ENV_RS256_SECRET,
    NAMESPACE,
    TokenError,
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
