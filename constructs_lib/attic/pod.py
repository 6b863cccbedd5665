"""The atticd pod, written once as data for the Deployment, Job and CronJob structs.

Every mode gets the same hardening: non-root, read-only root fs with /tmp on an emptyDir, no
privilege escalation, no capabilities, RuntimeDefault seccomp, no service-account token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from constructs_lib.attic.signing_key import ENV_NAME as SIGNING_ENV
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.storage.s3_endpoint import S3Credentials
from upstream_formats.postgres_options import startup_options

__all__ = ["HTTP_PORT", "DatabaseRef"]

HTTP_PORT = 8080
"""atticd's container port (``listen``), behind the API Service's port 80."""
CONFIG_DIR = "/etc/attic"
PG_CA_DIR = "/etc/attic/pg-ca"
_UID = 65534  # "nobody", present in the image's fake NSS files


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseRef:
    """Where atticd finds Postgres.

    Attributes:
        url_secret: Secret with a ``postgresql://`` URL (CNPG's ``<cluster>-app``).
        url_key: its key. Default ``"uri"``.
        ca_secret: Secret with the server CA (``ca.crt``, CNPG's ``<cluster>-ca``); with it
            atticd verifies the server's certificate and host name. Default ``None``:
            TLS without verification.
    """

    url_secret: str
    url_key: str = "uri"
    ca_secret: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PodInputs:
    """Everything an atticd pod needs besides its mode."""

    image: str
    config_map: str
    config_checksum: str
    service_account: str
    database: DatabaseRef
    signing_secret: str
    signing_key: str
    storage_credentials: S3Credentials | None


def database_url(database: DatabaseRef, statement_timeout: str | None = None) -> str:
    """``ATTIC_SERVER_DATABASE_URL``: the Secret's URL (``$(ATTIC_PG_URI)``, which Kubernetes
    expands) with TLS settings and, if given, a ``statement_timeout`` for this pod's sessions
    only (libpq ``options``, which atticd's sqlx sends at connect)."""
    query = (
        {"sslmode": "verify-full", "sslrootcert": f"{PG_CA_DIR}/ca.crt"}
        if database.ca_secret
        else {"sslmode": "require"}
    )
    if statement_timeout:
        query["options"] = startup_options({"statement_timeout": statement_timeout})
    return f"$(ATTIC_PG_URI)?{urlencode(query, quote_via=quote, safe='/')}"


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret, "key": key}}}


def atticd_pod(
    inputs: PodInputs,
    *,
    mode: str,
    labels: Mapping[str, str],
    resources: ComputeResources,
    restart_policy: str = "Always",
    grace_seconds: int = 30,
    probe_host: str | None = None,
    statement_timeout: str | None = None,
) -> dict[str, Any]:
    """Pod template (metadata + spec) for ``atticd --mode <mode>``; ``statement_timeout``
    bounds each SQL statement of this pod (``None``: no bound)."""
    database = inputs.database
    env: list[dict[str, Any]] = [
        {"name": "RUST_LOG", "value": "info"},
        {"name": "HOME", "value": "/tmp"},
        secret_env("ATTIC_PG_URI", database.url_secret, database.url_key),
        {"name": "ATTIC_SERVER_DATABASE_URL", "value": database_url(database, statement_timeout)},
        secret_env(SIGNING_ENV, inputs.signing_secret, inputs.signing_key),
    ]
    if inputs.storage_credentials is not None:
        creds = inputs.storage_credentials
        env += [
            secret_env("AWS_ACCESS_KEY_ID", creds.secret_name, creds.access_key_id_key),
            secret_env("AWS_SECRET_ACCESS_KEY", creds.secret_name, creds.secret_access_key_key),
        ]
    mounts = [
        {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
        {"name": "tmp", "mount_path": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "config_map": {"name": inputs.config_map}},
        {"name": "tmp", "empty_dir": {"size_limit": "1Gi"}},
    ]
    if database.ca_secret:
        mounts.append({"name": "pg-ca", "mount_path": PG_CA_DIR, "read_only": True})
        volumes.append(
            {
                "name": "pg-ca",
                "secret": {
                    "secret_name": database.ca_secret,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
    container: dict[str, Any] = {
        "name": "atticd",
        "image": inputs.image,
        "image_pull_policy": "IfNotPresent",
        "args": ["-f", f"{CONFIG_DIR}/server.toml", "--mode", mode],
        "env": env,
        "volume_mount": mounts,
        "resources": resources.to_values(),
        "security_context": restricted_container(_UID),
    }
    if mode == "api-server":
        container["port"] = [{"name": "http", "container_port": HTTP_PORT}]
        # GET / is static and needs no database: a DB outage must not restart every pod.
        http_get: dict[str, Any] = {"path": "/", "port": "http"}
        if probe_host:
            http_get["http_header"] = [{"name": "Host", "value": probe_host}]
        container["liveness_probe"] = {
            "http_get": http_get,
            "period_seconds": 10,
            "timeout_seconds": 3,
            "failure_threshold": 6,
        }
        container["readiness_probe"] = {
            "http_get": http_get,
            "period_seconds": 5,
            "timeout_seconds": 3,
            "failure_threshold": 2,
        }
    spec: dict[str, Any] = {
        "service_account_name": inputs.service_account,
        "automount_service_account_token": False,
        "restart_policy": restart_policy,
        "termination_grace_period_seconds": grace_seconds,
        "security_context": restricted_pod(_UID),
        "container": [container],
        "volume": volumes,
    }
    return {
        "metadata": {
            "labels": dict(labels),
            "annotations": {"checksum/config": inputs.config_checksum},
        },
        "spec": spec,
    }
