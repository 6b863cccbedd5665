"""atticd's token key (upstream_formats.attic_token_keys): from its environment variables in
atticd's order, from a key file, and what atticd would refuse."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.token_vectors import (
    HS256_VECTOR_PAYLOAD,
    HS256_VECTOR_SECRET_BASE64,
    HS256_VECTOR_TOKEN,
    RS256_VECTOR_PAYLOAD,
    RS256_VECTOR_SECRET_BASE64,
    RS256_VECTOR_TOKEN,
    VECTOR_NOW,
    b64,
    public_pem,
    rs256_vector_private,
    vector_key,
)
from upstream_formats.attic_token_inspect import inspect
from upstream_formats.attic_token_keys import (
    ENV_HS256_SECRET,
    ENV_RS256_PUBKEY,
    ENV_RS256_SECRET,
    KEY_ENV_VARS,
    TokenError,
    key_from_env,
    key_from_file,
    load_key,
    require_signing_key,
)
from upstream_formats.attic_tokens import encode

# --- keys from the environment ------------------------------------------------------------------


def test_env_precedence_pubkey_first() -> None:
    pub = b64(public_pem(rs256_vector_private(), serialization.PublicFormat.PKCS1))
    env = {
        ENV_RS256_PUBKEY: pub,
        ENV_RS256_SECRET: RS256_VECTOR_SECRET_BASE64,
        ENV_HS256_SECRET: HS256_VECTOR_SECRET_BASE64,
    }
    key = key_from_env(env)
    assert (key.algorithm, key.source, key.can_sign) == ("RS256", ENV_RS256_PUBKEY, False)
    assert inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW).valid
    with pytest.raises(
        TokenError, match="Pubkey-only JWT authentication cannot create signed JWTs"
    ):
        encode(RS256_VECTOR_PAYLOAD, key)
    with pytest.raises(TokenError) as caught:
        require_signing_key(key)
    assert ENV_RS256_PUBKEY in str(caught.value)


def test_env_precedence_rs256_secret_before_hs256() -> None:
    env = {ENV_RS256_SECRET: RS256_VECTOR_SECRET_BASE64, ENV_HS256_SECRET: "c2VjcmV0"}
    key = key_from_env(env)
    assert key.source == ENV_RS256_SECRET
    assert encode(RS256_VECTOR_PAYLOAD, key) == RS256_VECTOR_TOKEN


def test_env_empty_values_count_as_unset() -> None:
    env = {ENV_RS256_PUBKEY: "", ENV_RS256_SECRET: "", ENV_HS256_SECRET: HS256_VECTOR_SECRET_BASE64}
    key = key_from_env(env)
    assert key.source == ENV_HS256_SECRET
    assert encode(HS256_VECTOR_PAYLOAD, key) == HS256_VECTOR_TOKEN


def test_env_without_a_key() -> None:
    with pytest.raises(TokenError) as caught:
        key_from_env({ENV_HS256_SECRET: "", "HOME": "/root"})
    message = str(caught.value)
    assert all(name in message for name in (ENV_RS256_PUBKEY, ENV_RS256_SECRET, ENV_HS256_SECRET))
    assert message.index(ENV_RS256_PUBKEY) < message.index(ENV_RS256_SECRET)


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_HS256_SECRET, HS256_VECTOR_SECRET_BASE64)
    assert load_key().source == ENV_HS256_SECRET


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
        key_from_env({env_var: value})
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
            key_from_env({env_var: value})
        assert str(caught.value).startswith(f"{env_var}: ")


@pytest.mark.parametrize(
    "fmt", [serialization.PublicFormat.PKCS1, serialization.PublicFormat.SubjectPublicKeyInfo]
)
def test_env_pubkey_formats_verify_the_vector(fmt: serialization.PublicFormat) -> None:
    key = key_from_env({ENV_RS256_PUBKEY: b64(public_pem(rs256_vector_private(), fmt))})
    assert inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW, cache="cache-rw").valid


def test_env_pkcs8_private_key_signs_like_pkcs1() -> None:
    pkcs8 = rs256_vector_private().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = key_from_env({ENV_RS256_SECRET: b64(pkcs8)})
    assert encode(RS256_VECTOR_PAYLOAD, key) == RS256_VECTOR_TOKEN


def test_hs256_secret_may_be_any_bytes() -> None:
    key = vector_key("hs256")
    assert key.secret == bytes.fromhex("c328203c2d20696e76616c69642075746638")
    assert repr(key.secret) not in repr(key)


# --- keys from a file ---------------------------------------------------------------------------


def test_key_file_with_base64_text(tmp_path: Path) -> None:
    path = tmp_path / "hs256"
    path.write_text(HS256_VECTOR_SECRET_BASE64 + "\n")
    key = key_from_file(path)
    assert key.algorithm == "HS256"
    assert encode(HS256_VECTOR_PAYLOAD, key) == HS256_VECTOR_TOKEN


def test_key_file_with_base64_of_a_pem(tmp_path: Path) -> None:
    path = tmp_path / "rs256"
    path.write_text(RS256_VECTOR_SECRET_BASE64)
    assert encode(RS256_VECTOR_PAYLOAD, key_from_file(path)) == RS256_VECTOR_TOKEN


def test_key_file_with_pem(tmp_path: Path) -> None:
    private = tmp_path / "private.pem"
    private.write_bytes(base64.b64decode(RS256_VECTOR_SECRET_BASE64))
    assert encode(RS256_VECTOR_PAYLOAD, key_from_file(private)) == RS256_VECTOR_TOKEN
    public = tmp_path / "public.pem"
    public.write_bytes(
        public_pem(rs256_vector_private(), serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key = key_from_file(public)
    assert not key.can_sign
    assert inspect(RS256_VECTOR_TOKEN, key, now=VECTOR_NOW).valid
    with pytest.raises(TokenError, match="Pubkey-only"):
        encode(RS256_VECTOR_PAYLOAD, key)


def test_key_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(TokenError, match=r"^--key-file: cannot read"):
        key_from_file(missing)
    wrapped = tmp_path / "wrapped"
    wrapped.write_text(
        "\n".join(RS256_VECTOR_SECRET_BASE64[i : i + 76] for i in range(0, 2240, 76)) + "\n"
    )
    with pytest.raises(TokenError, match="whitespace or a newline"):
        key_from_file(wrapped)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(TokenError, match=r"^--key-file "):
        key_from_file(empty)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        rs256_vector_private().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(TokenError, match="ENCRYPTED PRIVATE KEY"):
        key_from_file(encrypted)
