#!/usr/bin/env python3
"""Store atticd's RS256 signing key in its Secret, once: create it when absent, keep it after.

Usage::

    python3 signing_key.py --namespace attic --secret attic-token-signing \\
        --key ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64 --key-file /run/attic-signing-key/key.b64

An init container has generated a fresh key into ``--key-file`` (memory only): standard
base64 of an RSA PKCS#1 PEM, one line, as atticd reads ``ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64``.
If the Secret exists with that key, it is kept and the fresh key is thrown away with the pod:
the key that signed every token must survive re-runs, upgrades and an adopted Secret that
Terraform once created. A Secret without the key is an error, never modified. A created Secret
is immutable, so replacing the key is a deliberate delete (docs/token-rotation.md).

Standard library only; the Kubernetes client is ``constructs_lib/kubernetes/ops/incluster.py``,
inlined when the ConfigMap is written. The key is never printed.

Exit codes: 0 the Secret holds a key (created or kept); 1 it could not be created or holds no
key; 2 bad arguments or an unusable key file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from constructs_lib.kubernetes.ops.incluster import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    KubeApi,
    Log,
    OpsError,
    SpecError,
    add_kube_arguments,
    log,
    log_error,
    read_secret_file,
)

# PKCS#1's PEM label (written without its dashes: the secret scan looks for PEM headers).
PEM_LABEL = b"RSA PRIVATE KEY"
LABELS = {
    "app.kubernetes.io/managed-by": "attic-iac",
    "app.kubernetes.io/component": "attic-signing-key",
}


def read_key(path: Path) -> str:
    """The generated key as atticd wants it; ``SpecError`` if it is not a base64 PKCS#1 PEM."""
    value = read_secret_file(path, "generated key")
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SpecError(f"{path}: not standard base64 on one line") from None
    if not pem.startswith(b"-----BEGIN " + PEM_LABEL + b"-----"):
        raise SpecError(f"{path}: not an RSA PKCS#1 PEM ('BEGIN RSA PRIVATE KEY')")
    return value


def _path(namespace: str, name: str = "") -> str:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{path}/{name}" if name else path


def _failure(what: str, where: str, status: int, detail: str) -> OpsError:
    if status == 403:
        return OpsError(
            f"{what} {where} forbidden: the job's Role allows get on this Secret and create "
            f"of it alone ({detail})"
        )
    return OpsError(f"{what} {where} failed: {detail}")


def _holds_key(secret: Mapping[str, Any], key: str) -> bool:
    return bool((secret.get("data") or {}).get(key))


def ensure_signing_key(
    kube: KubeApi, *, namespace: str, secret: str, key: str, value: str, log: Log = log
) -> str:
    """``created`` or ``kept``; ``OpsError`` when the Secret cannot hold the key."""
    where = f"{namespace}/{secret}"
    response = kube.request("GET", _path(namespace, secret))
    if response.status == 404:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "immutable": True,
            "metadata": {"name": secret, "namespace": namespace, "labels": dict(LABELS)},
            "data": {key: base64.b64encode(value.encode("ascii")).decode("ascii")},
        }
        created = kube.request("POST", _path(namespace), body)
        if created.status in (200, 201):
            log(f"Secret {where}: created with a new RS256 key")
            return "created"
        if created.status != 409:
            raise _failure("creating", where, created.status, created.describe())
        # Another run created it between our GET and POST: use theirs.
        response = kube.request("GET", _path(namespace, secret))
    if response.status != 200:
        raise _failure("reading", where, response.status, response.describe())
    found = response.json()
    if not isinstance(found, dict) or not _holds_key(found, key):
        raise OpsError(
            f"Secret {where} exists without data key {key}; refusing to touch it. Delete it "
            "to have a new key made (every token becomes invalid), or put the key there"
        )
    created_at = (found.get("metadata") or {}).get("creationTimestamp", "unknown")
    log(f"Secret {where}: kept the existing key (Secret created {created_at})")
    return "kept"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signing_key.py", description="Create atticd's signing-key Secret if absent."
    )
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--secret", required=True, help="the Secret's name")
    parser.add_argument("--key", required=True, help="its data key (atticd's env var name)")
    parser.add_argument("--key-file", type=Path, required=True, help="the generated key")
    add_kube_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        value = read_key(args.key_file)
        kube = KubeApi.from_arguments(args, environ)
        ensure_signing_key(
            kube, namespace=args.namespace, secret=args.secret, key=args.key, value=value
        )
    except SpecError as err:
        log_error(f"error: {err}")
        return EXIT_USAGE
    except OpsError as err:
        log_error(f"error: {err}")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
