"""atticd's token key: the one key it verifies (and ``atticadm`` signs) tokens with.

atticd reads it from ``[jwt.signing]`` or, when that is absent, from the first non-empty of three
environment variables; :func:`key_from_env` and :func:`key_from_file` load it the same way and
refuse what atticd would refuse, naming the variable or file. Claims and signing are in
:mod:`upstream_formats.attic_tokens`, verification in :mod:`upstream_formats.attic_token_inspect`.
No cdktf/jsii; cryptography is imported only when an RS256 key is loaded.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

ENV_RS256_PUBKEY = "ATTIC_SERVER_TOKEN_RS256_PUBKEY_BASE64"
ENV_RS256_SECRET = "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"
ENV_HS256_SECRET = "ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64"
# atticd's order: the first non-empty one wins and the others are not read.
KEY_ENV_VARS: tuple[str, ...] = (ENV_RS256_PUBKEY, ENV_RS256_SECRET, ENV_HS256_SECRET)

Algorithm = Literal["HS256", "RS256"]

_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


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
