#!/usr/bin/env python3
"""Attic operations run from in-cluster Jobs: declare caches, publish tokens as Secrets.

Usage::

    python3 attic_ops.py caches --spec caches.json --token-file /run/attic/admin.jwt
    python3 attic_ops.py tokens --spec tokens.json --minted-dir /run/attic/minted

``caches`` waits for atticd, then creates each declared cache that does not exist and PATCHes
the settings of those that differ (``/_api/v1/cache-config/<name>``). ``tokens`` writes the
tokens that ``atticadm make-token`` minted in init containers into Kubernetes Secrets, and
replaces them when their permissions changed or their expiry is near.

It runs on a stock Python (3.11 or newer) image, from a ConfigMap: standard library only. Its
HTTP and Kubernetes API client is ``constructs_lib/kubernetes/ops/incluster.py``, which the
constructs inline in place of its import when they write the ConfigMap (``ops_pod.ops_script``),
so the pod runs one self-contained file. It never prints a token or an Authorization header; the
only response bodies it prints are error bodies (atticd's JSON errors, the Kubernetes API's
Status messages), truncated.

Exit codes: 0 everything succeeded; 1 at least one cache or token entry failed (every entry is
still processed) or atticd never became ready; 2 the command line, a spec file, or a credential
file is unusable.

Long because one ConfigMap carries both commands (the cache-init Job and the token rotation share
the script and its revision hash), and each validates its whole spec and reports every problem,
handles atticd's quirks (401 until a fresh token's nbf, soft-deleted names, 5xx retries) and the
Secret create/rotate/keep decisions with their conflicts; only the HTTP and Kubernetes client
is shared with the other in-cluster script.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

from constructs_lib.kubernetes.ops.incluster import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Clock,
    HttpClient,
    KubeApi,
    Log,
    OpsError,
    Response,
    Sleep,
    SpecError,
    TransportError,
    add_kube_arguments,
    log,
    log_error,
    parse_time,
    read_json,
    read_secret_file,
)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "attic-iac"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT_VALUE = "attic-token"
TOKEN_LABEL = "attic-iac.io/token"
EXPIRES_AT_ANNOTATION = "attic-iac.io/expires-at"
MINTED_AT_ANNOTATION = "attic-iac.io/minted-at"
SPEC_HASH_ANNOTATION = "attic-iac.io/spec-hash"
TOKEN_DATA_KEY = "token"

STORE_DIR = "/nix/store"
#: atticd stores a cache's retention period in seconds as an i32.
MAX_RETENTION_SECONDS = 2**31 - 1
#: A minted token's ``exp`` may differ this much from now + validity (clock / wrong file check).
EXP_TOLERANCE_SECONDS = 600

_CACHE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_+]{0,49}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-_.]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# --------------------------------------------------------------------------------------------
# Small helpers


def _timestamp(epoch: float) -> str:
    """UTC RFC 3339 with seconds and ``Z``; the raw number if it is out of range."""
    try:
        return datetime.fromtimestamp(int(epoch), tz=UTC).strftime(_TIMESTAMP_FORMAT)
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def _error_name(response: Response) -> str | None:
    """atticd's ``error`` field (``NoSuchCache``, ``CacheAlreadyExists``...), if any."""
    payload = response.json()
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])
    return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(
    where: str, item: Mapping[str, Any], required: Sequence[str], problems: list[str]
) -> None:
    for key in required:
        if key not in item:
            problems.append(f"{where}: missing {key!r}")
    for key in item:
        if key not in required:
            problems.append(f"{where}: unknown key {key!r}")


# --------------------------------------------------------------------------------------------
# caches


@dataclass(frozen=True)
class CacheSpec:
    name: str
    is_public: bool
    priority: int
    upstream_cache_key_names: tuple[str, ...]
    #: Seconds; None means "Global" (the server's default-retention-period).
    retention_seconds: int | None

    @property
    def retention_wire(self) -> object:
        if self.retention_seconds is None:
            return "Global"
        return {"Period": self.retention_seconds}

    def settings(self) -> dict[str, object]:
        """The four managed settings in atticd's wire format."""
        return {
            "is_public": self.is_public,
            "priority": self.priority,
            "upstream_cache_key_names": list(self.upstream_cache_key_names),
            "retention_period": self.retention_wire,
        }


@dataclass(frozen=True)
class CachesSpec:
    endpoint: str
    caches: tuple[CacheSpec, ...]


_CACHE_KEYS = ("name", "is_public", "priority", "upstream_cache_key_names", "retention_period")


def _parse_retention(where: str, value: object, problems: list[str]) -> int | None:
    if value == "Global":
        return None
    if isinstance(value, dict) and list(value) == ["Period"] and _is_int(value["Period"]):
        seconds = int(value["Period"])
        if 0 <= seconds <= MAX_RETENTION_SECONDS:
            return seconds
        problems.append(f"{where}: retention_period seconds must be 0..{MAX_RETENTION_SECONDS}")
        return None
    problems.append(f'{where}: retention_period must be "Global" or {{"Period": <seconds>}}')
    return None


def parse_caches_spec(data: object) -> CachesSpec:
    """Validate a ``caches`` spec; ``SpecError`` lists every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SpecError("caches spec: expected a JSON object")
    _check_keys("caches spec", data, ("endpoint", "caches"), problems)
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not re.match(r"^https?://[^/]+", endpoint):
        problems.append("caches spec: endpoint must be an http(s) URL")
        endpoint = ""
    elif not endpoint.endswith("/"):
        endpoint += "/"
    raw_caches = data.get("caches")
    caches: list[CacheSpec] = []
    if not isinstance(raw_caches, list):
        problems.append("caches spec: caches must be a list")
        raw_caches = []
    seen: set[str] = set()
    for index, item in enumerate(raw_caches):
        where = f"caches[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not _CACHE_NAME.match(name):
            problems.append(f"{where}: name must match {_CACHE_NAME.pattern}")
            name = ""
        elif name in seen:
            problems.append(f"{where}: duplicate cache name {name!r}")
        seen.add(name)
        where = f"caches[{index}] ({name})" if name else where
        _check_keys(where, item, _CACHE_KEYS, problems)
        is_public = item.get("is_public")
        if not isinstance(is_public, bool):
            problems.append(f"{where}: is_public must be true or false")
        priority = item.get("priority")
        if not _is_int(priority):
            problems.append(f"{where}: priority must be an integer")
        upstream = item.get("upstream_cache_key_names")
        if not isinstance(upstream, list) or not all(isinstance(u, str) for u in upstream):
            problems.append(f"{where}: upstream_cache_key_names must be a list of strings")
            upstream = []
        retention = _parse_retention(where, item.get("retention_period"), problems)
        caches.append(
            CacheSpec(
                name=name,
                is_public=bool(is_public),
                priority=int(priority) if _is_int(priority) else 0,
                upstream_cache_key_names=tuple(upstream),
                retention_seconds=retention,
            )
        )
    if problems:
        raise SpecError("invalid caches spec:\n  " + "\n  ".join(problems))
    return CachesSpec(endpoint=endpoint, caches=tuple(caches))


def wait_for_atticd(
    endpoint: str,
    *,
    client: HttpClient,
    timeout: float,
    sleep: Sleep,
    monotonic: Clock,
    poll_interval: float = 3.0,
    log: Log = log,
) -> None:
    """Poll ``GET <endpoint>`` until it answers 200; retry connection errors and 5xx."""
    deadline = monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            response = client.request("GET", endpoint)
        except TransportError as err:
            last = str(err)
        else:
            if response.status == 200:
                if attempt > 1:
                    log(f"atticd at {endpoint} is ready")
                return
            if response.status < 500:
                raise OpsError(
                    f"atticd at {endpoint} answered {response.describe()} "
                    "(wrong endpoint, or allowed-hosts rejects this Host?)"
                )
            last = response.describe()
        if monotonic() >= deadline:
            raise OpsError(f"atticd at {endpoint} not ready after {timeout:g}s: {last}")
        if attempt == 1:
            log(f"waiting for atticd at {endpoint}: {last}")
        sleep(poll_interval)


class AtticApi:
    """``/_api/v1/cache-config/<name>`` with atticd's quirks handled (401 retries, 5xx)."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        client: HttpClient,
        sleep: Sleep,
        auth_retries: int = 5,
        auth_retry_delay: float = 2.0,
        transient_retries: int = 3,
        transient_retry_delay: float = 2.0,
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._client = client
        self._sleep = sleep
        self._auth_retries = auth_retries
        self._auth_retry_delay = auth_retry_delay
        self._transient_retries = transient_retries
        self._transient_retry_delay = transient_retry_delay

    def url(self, name: str) -> str:
        return f"{self._endpoint}_api/v1/cache-config/{urllib.parse.quote(name, safe='+')}"

    def call(self, method: str, name: str, body: object = None) -> Response:
        """One request; 401 (token not valid yet: nbf has zero tolerance) and 5xx are retried."""
        auth_failures = 0
        transient_failures = 0
        while True:
            try:
                response = self._client.request(
                    method, self.url(name), bearer=self._token, body=body
                )
            except TransportError as err:
                transient_failures += 1
                if transient_failures > self._transient_retries:
                    raise OpsError(str(err)) from None
                self._sleep(self._transient_retry_delay)
                continue
            if response.status == 401:
                auth_failures += 1
                if auth_failures > self._auth_retries:
                    raise OpsError(
                        f"{method} cache-config: token rejected (check the signing key / clocks): "
                        + response.describe()
                    )
                self._sleep(self._auth_retry_delay)
                continue
            if response.status in (502, 503, 504):
                transient_failures += 1
                if transient_failures <= self._transient_retries:
                    self._sleep(self._transient_retry_delay)
                    continue
            return response


def _fail(method: str, name: str, response: Response, permission: str) -> NoReturn:
    """Raise for an unexpected answer; on 403 say which permission the token lacks."""
    suffix = ""
    if response.status == 403:
        suffix = f" (the token lacks {permission} on {name})"
    elif response.status == 404:
        suffix = " (is the endpoint atticd's base URL?)"
    raise OpsError(f"{method} cache-config/{name} failed: {response.describe()}{suffix}")


def _get_config(api: AtticApi, name: str) -> dict[str, Any] | None:
    """The cache's config, or None if it does not exist."""
    response = api.call("GET", name)
    if response.status == 200:
        config = response.json()
        if not isinstance(config, dict):
            raise OpsError(f"GET cache-config/{name}: response is not a JSON object")
        return config
    if response.status == 404 and _error_name(response) == "NoSuchCache":
        return None
    _fail("GET", name, response, "pull (r)")


def _create(api: AtticApi, cache: CacheSpec) -> bool:
    """POST the cache; False if atticd says it already exists."""
    body = {
        "keypair": "Generate",
        "is_public": cache.is_public,
        "store_dir": STORE_DIR,
        "priority": cache.priority,
        "upstream_cache_key_names": list(cache.upstream_cache_key_names),
    }
    response = api.call("POST", cache.name, body)
    if 200 <= response.status < 300:
        return True
    if response.status == 400 and _error_name(response) == "CacheAlreadyExists":
        return False
    _fail("POST", cache.name, response, "create-cache (cc)")


def _patch(api: AtticApi, name: str, changes: Mapping[str, object]) -> None:
    response = api.call("PATCH", name, dict(changes))
    if not 200 <= response.status < 300:
        permission = "configure-cache (cr)"
        if "retention_period" in changes:
            permission += " or configure-cache-retention (cq)"
        _fail("PATCH", name, response, permission)


def _public_key(config: Mapping[str, Any]) -> str:
    key = config.get("public_key")
    return key if isinstance(key, str) else "(not reported)"


def ensure_cache(api: AtticApi, cache: CacheSpec, *, log: Log = log) -> str:
    """Create or reconcile one cache; returns the outcome word and logs it."""
    name = cache.name
    config = _get_config(api, name)
    outcome = ""
    if config is None:
        if _create(api, cache):
            if cache.retention_seconds is not None:
                try:
                    _patch(api, name, {"retention_period": cache.retention_wire})
                except OpsError as err:
                    raise OpsError(f"created, but setting its retention failed: {err}") from None
            config = _get_config(api, name)
            if config is None:
                raise OpsError(f"cache {name} was created but GET still answers NoSuchCache")
            outcome = "created"
            log(f"cache {name}: created")
        else:
            config = _get_config(api, name)
            if config is None:
                raise OpsError(
                    f"the name {name!r} is reserved by a soft-deleted cache "
                    "(atticd has soft-delete-caches enabled): POST says CacheAlreadyExists but "
                    "GET says NoSuchCache; choose another name or purge the deleted cache"
                )
            log(f"cache {name}: already created by someone else; reconciling its settings")
    if not outcome:
        wanted = cache.settings()
        changes = {key: value for key, value in wanted.items() if config.get(key) != value}
        if changes:
            _patch(api, name, changes)
            outcome = "updated"
            log(f"cache {name}: updated {', '.join(changes)}")
        else:
            outcome = "unchanged"
            log(f"cache {name}: unchanged")
    log(f"cache {name}: public key {_public_key(config)}")
    return outcome


def run_caches(
    spec: CachesSpec,
    token: str,
    *,
    client: HttpClient | None = None,
    timeout: float = 300.0,
    sleep: Sleep = time.sleep,
    monotonic: Clock = time.monotonic,
    poll_interval: float = 3.0,
    auth_retries: int = 5,
    auth_retry_delay: float = 2.0,
    log: Log = log,
    log_error: Log = log_error,
) -> int:
    """Wait for atticd, then reconcile every cache; 1 if any failed."""
    client = client or HttpClient()
    try:
        wait_for_atticd(
            spec.endpoint,
            client=client,
            timeout=timeout,
            sleep=sleep,
            monotonic=monotonic,
            poll_interval=poll_interval,
            log=log,
        )
    except OpsError as err:
        log_error(f"FAILED: {err}")
        return EXIT_FAILED
    api = AtticApi(
        spec.endpoint,
        token,
        client=client,
        sleep=sleep,
        auth_retries=auth_retries,
        auth_retry_delay=auth_retry_delay,
    )
    failed = []
    for cache in spec.caches:
        try:
            ensure_cache(api, cache, log=log)
        except OpsError as err:
            failed.append(cache.name)
            log_error(f"cache {cache.name}: FAILED: {err}")
    if failed:
        log_error(f"{len(failed)} of {len(spec.caches)} caches failed: {', '.join(failed)}")
        return EXIT_FAILED
    log(f"{len(spec.caches)} caches in place")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class TokenSpec:
    name: str
    namespace: str
    secret_name: str
    validity_seconds: int
    rotate_before_seconds: int
    spec_hash: str


_TOKEN_KEYS = (
    "name",
    "namespace",
    "secret_name",
    "validity_seconds",
    "rotate_before_seconds",
    "spec_hash",
)


def _parse_token_item(where: str, item: Mapping[str, Any], problems: list[str]) -> TokenSpec:
    name = item.get("name")
    if not isinstance(name, str) or not _LABEL_VALUE.match(name):
        problems.append(f"{where}: name must be a label value ({_LABEL_VALUE.pattern})")
        name = ""
    where = f"{where} ({name})" if name else where
    _check_keys(where, item, _TOKEN_KEYS, problems)
    namespace = item.get("namespace")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
        problems.append(f"{where}: namespace must be a DNS label")
        namespace = ""
    secret_name = item.get("secret_name")
    if not isinstance(secret_name, str) or not _DNS_SUBDOMAIN.match(secret_name):
        problems.append(f"{where}: secret_name must be a DNS subdomain")
        secret_name = ""
    validity = item.get("validity_seconds")
    if not _is_int(validity) or validity <= 0:
        problems.append(f"{where}: validity_seconds must be a positive integer")
        validity = 0
    rotate_before = item.get("rotate_before_seconds")
    if not _is_int(rotate_before) or rotate_before < 0:
        problems.append(f"{where}: rotate_before_seconds must be an integer >= 0")
        rotate_before = 0
    elif validity and rotate_before >= validity:
        problems.append(
            f"{where}: rotate_before_seconds must be less than validity_seconds "
            "(otherwise every run rotates)"
        )
    spec_hash = item.get("spec_hash")
    if not isinstance(spec_hash, str) or not spec_hash or len(spec_hash) > 128:
        problems.append(f"{where}: spec_hash must be a non-empty string of at most 128 characters")
        spec_hash = ""
    return TokenSpec(
        name=name,
        namespace=namespace,
        secret_name=secret_name,
        validity_seconds=validity,
        rotate_before_seconds=rotate_before,
        spec_hash=spec_hash,
    )


def parse_tokens_spec(data: object) -> tuple[TokenSpec, ...]:
    """Validate a ``tokens`` spec; ``SpecError`` lists every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SpecError("tokens spec: expected a JSON object")
    _check_keys("tokens spec", data, ("tokens",), problems)
    raw = data.get("tokens")
    if not isinstance(raw, list):
        problems.append("tokens spec: tokens must be a list")
        raw = []
    tokens: list[TokenSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"tokens[{index}]: expected an object")
            continue
        token = _parse_token_item(f"tokens[{index}]", item, problems)
        if token.name and any(token.name == other.name for other in tokens):
            problems.append(f"tokens[{index}]: duplicate token name {token.name!r}")
        target = (token.namespace, token.secret_name)
        if token.secret_name and any(target == (o.namespace, o.secret_name) for o in tokens):
            problems.append(
                f"tokens[{index}]: {token.namespace}/{token.secret_name} is written by another "
                "entry"
            )
        tokens.append(token)
    if problems:
        raise SpecError("invalid tokens spec:\n  " + "\n  ".join(problems))
    return tuple(tokens)


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def read_minted_token(path: Path, spec: TokenSpec, now: float) -> tuple[str, int]:
    """The minted JWT and its ``exp``; ``OpsError`` if it does not look freshly minted."""
    try:
        jwt = read_secret_file(path, "minted token")
    except SpecError as err:  # only this entry fails
        raise OpsError(str(err)) from None
    segments = jwt.split(".")
    if len(segments) != 3 or not all(segments) or any(c.isspace() for c in jwt):
        raise OpsError(f"minted token {path}: not a JWT (expected 3 dot-separated segments)")
    try:
        claims = json.loads(_b64url_decode(segments[1]).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise OpsError(f"minted token {path}: payload is not base64url JSON") from None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise OpsError(f"minted token {path}: no numeric exp claim")
    expected = now + spec.validity_seconds
    if abs(exp - expected) > EXP_TOLERANCE_SECONDS:
        raise OpsError(
            f"minted token {path}: exp {_timestamp(exp)} is not now + validity "
            f"({_timestamp(expected)}); wrong file, wrong --validity, or clock skew"
        )
    return jwt, int(exp)


def _secret_path(namespace: str, name: str = "") -> str:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    return f"{path}/{name}" if name else path


def build_secret(
    spec: TokenSpec, jwt: str, exp: int, now: float, resource_version: str | None = None
) -> dict[str, Any]:
    """The Secret object written for a token entry."""
    metadata: dict[str, Any] = {
        "name": spec.secret_name,
        "namespace": spec.namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            COMPONENT_LABEL: COMPONENT_VALUE,
            TOKEN_LABEL: spec.name,
        },
        "annotations": {
            EXPIRES_AT_ANNOTATION: _timestamp(exp),
            MINTED_AT_ANNOTATION: _timestamp(now),
            SPEC_HASH_ANNOTATION: spec.spec_hash,
        },
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {TOKEN_DATA_KEY: base64.b64encode(jwt.encode("utf-8")).decode("ascii")},
    }


def rotation_reason(spec: TokenSpec, secret: Mapping[str, Any], now: float) -> str | None:
    """Why an existing managed Secret must be replaced, or None to keep it."""
    metadata = secret.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    data = secret.get("data") or {}
    if annotations.get(SPEC_HASH_ANNOTATION) != spec.spec_hash:
        return "token spec changed"
    if not data.get(TOKEN_DATA_KEY):
        return f"data key {TOKEN_DATA_KEY!r} missing"
    expires_at = parse_time(annotations.get(EXPIRES_AT_ANNOTATION))
    if expires_at is None:
        return f"annotation {EXPIRES_AT_ANNOTATION} missing or unparseable"
    if expires_at - now < spec.rotate_before_seconds:
        return "expires within the rotation window"
    return None


def _window(exp: float, spec: TokenSpec) -> str:
    return (
        f"expires {_timestamp(exp)}, rotates after {_timestamp(exp - spec.rotate_before_seconds)}"
    )


def _kube_failure(what: str, spec: TokenSpec, response: Response) -> OpsError:
    where = f"{spec.namespace}/{spec.secret_name}"
    if response.status == 403:
        return OpsError(
            f"{what} {where} forbidden by RBAC: the job's service account needs get, create and "
            f"update on secrets in namespace {spec.namespace} ({response.describe()})"
        )
    if response.status == 401:
        return OpsError(
            f"Kubernetes API rejected the service-account token ({response.describe()})"
        )
    return OpsError(f"{what} {where} failed: {response.describe()}")


def ensure_token_secret(
    kube: KubeApi, spec: TokenSpec, minted_dir: Path, now: float, *, log: Log = log
) -> str:
    """Create, rotate or keep one token Secret; returns the outcome and logs one line."""
    prefix = f"token {spec.name} -> {spec.namespace}/{spec.secret_name}"
    jwt, exp = read_minted_token(minted_dir / f"{spec.name}.jwt", spec, now)
    response = kube.request("GET", _secret_path(spec.namespace, spec.secret_name))
    if response.status == 404:
        created = kube.request(
            "POST", _secret_path(spec.namespace), build_secret(spec, jwt, exp, now)
        )
        if created.status in (200, 201):
            log(f"{prefix}: created ({_window(exp, spec)})")
            return "created"
        if created.status == 404:
            raise OpsError(
                f"namespace {spec.namespace} does not exist; create it before applying attic-<env>"
            )
        if created.status == 409:
            log(f"{prefix}: created concurrently by another run; leaving it (next run re-checks)")
            return "conflict"
        raise _kube_failure("creating", spec, created)
    if response.status != 200:
        raise _kube_failure("reading", spec, response)
    secret = response.json()
    if not isinstance(secret, dict):
        raise OpsError(f"reading {spec.namespace}/{spec.secret_name}: response is not JSON")
    metadata = secret.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        raise OpsError(
            f"Secret {spec.namespace}/{spec.secret_name} exists and is not managed by attic-iac; "
            f"refusing to overwrite (it lacks the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE})"
        )
    reason = rotation_reason(spec, secret, now)
    if reason is None:
        expires_at = parse_time((metadata.get("annotations") or {}).get(EXPIRES_AT_ANNOTATION))
        assert expires_at is not None  # rotation_reason checked it
        log(f"{prefix}: kept ({_window(expires_at, spec)})")
        return "kept"
    body = build_secret(spec, jwt, exp, now, resource_version=metadata.get("resourceVersion"))
    replaced = kube.request("PUT", _secret_path(spec.namespace, spec.secret_name), body)
    if replaced.status == 200:
        log(f"{prefix}: rotated ({_window(exp, spec)}; reason: {reason})")
        return "rotated"
    if replaced.status == 409:
        log(f"{prefix}: changed by another run since it was read; leaving it (next run re-checks)")
        return "conflict"
    raise _kube_failure("updating", spec, replaced)


def run_tokens(
    tokens: Sequence[TokenSpec],
    minted_dir: Path,
    kube: KubeApi,
    *,
    now: Clock = time.time,
    log: Log = log,
    log_error: Log = log_error,
) -> int:
    """Reconcile every token Secret; 1 if any entry failed."""
    failed = []
    for spec in tokens:
        try:
            ensure_token_secret(kube, spec, minted_dir, now(), log=log)
        except OpsError as err:
            failed.append(spec.name)
            log_error(f"token {spec.name} -> {spec.namespace}/{spec.secret_name}: FAILED: {err}")
    if failed:
        log_error(f"{len(failed)} of {len(tokens)} token entries failed: {', '.join(failed)}")
        return EXIT_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attic_ops.py", description="Attic cache and token operations for in-cluster Jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    caches = commands.add_parser("caches", help="create and configure the declared caches")
    caches.add_argument("--spec", type=Path, required=True, help="caches spec JSON file")
    caches.add_argument(
        "--token-file", type=Path, required=True, help="Attic token with r, cc, cr, cq"
    )
    caches.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for atticd to answer GET / (default 300)",
    )
    tokens = commands.add_parser("tokens", help="write minted tokens into Kubernetes Secrets")
    tokens.add_argument("--spec", type=Path, required=True, help="tokens spec JSON file")
    tokens.add_argument(
        "--minted-dir", type=Path, required=True, help="directory holding <name>.jwt files"
    )
    add_kube_arguments(tokens)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    sleep: Sleep = time.sleep,
    now: Clock = time.time,
    monotonic: Clock = time.monotonic,
    environ: Mapping[str, str] | None = None,
) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "caches":
            spec = parse_caches_spec(read_json(args.spec))
            token = read_secret_file(args.token_file, "Attic token file")
            return run_caches(spec, token, timeout=args.timeout, sleep=sleep, monotonic=monotonic)
        tokens = parse_tokens_spec(read_json(args.spec))
        kube = KubeApi.from_arguments(args, environ)
        return run_tokens(tokens, args.minted_dir, kube, now=now)
    except SpecError as err:
        log_error(f"error: {err}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
