"""The dashboard's settings: environment variables, secrets from mounted files, the config.

Secret files in ``DASHBOARD_SECRETS_DIR``: ``oauth-client-secret``, ``session-key`` (at least
32 characters), ``gitlab-read-token``, and, read only with ``DASHBOARD_KUBERNETES_URL`` (tests,
the demo; in a cluster the service account's own token is used), ``kubernetes-token``.

Every problem is reported at once, one line each (``VARIABLE: what is wrong (got ...; allowed
...)``), like the config loader. A secret's value never appears in a message, and secrets are
read from files only: the stack mounts Kubernetes Secrets as files, and environment variables
leak into crash dumps, ``/proc`` and child processes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from config_model.dashboard import ACCESS_LEVELS, GroupRef, ProjectRef
from config_model.loader import (
    CONFIG_ENV_VAR,
    ConfigError,
    LoadedConfig,
    load_config,
    resolve_config_path,
)
from config_model.organization import OrganizationConfig
from config_model.wiring import dashboard_namespaces
from upstream_formats.humantime import parse_duration

OPERATOR_ACCESS: Final = ACCESS_LEVELS["maintainer"]
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
# A session key shorter than this is guessable; `openssl rand -base64 48` gives 64 characters.
MIN_SESSION_KEY = 32
INSTANCE = "instance"
DEMO_GROUP = "demo"
DEMO_PROJECT = "demo/config"

# The config's own rules for dashboard.gitlab_group and dashboard.config_project, whose values
# the stack passes in these variables.
_GROUP_REF: Final = TypeAdapter(GroupRef)
_PROJECT_REF: Final = TypeAdapter(ProjectRef)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_SECRET_NAME = re.compile(r"^DASHBOARD_(?!SECRETS_DIR$).*(SECRET|TOKEN|SESSION_KEY|PASSWORD)")


class SettingsError(Exception):
    """The dashboard cannot start; ``lines`` holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What one dashboard instance serves and how (README "Runner dashboard": settings)."""

    environment: str
    config: LoadedConfig = field(repr=False, compare=False)
    public_url: str
    gitlab_url: str
    gitlab_group: str
    viewer_min_access: int
    config_project: str
    config_file: str
    config_branch: str
    oauth_client_id: str
    secrets_dir: Path
    oauth_client_secret: str = field(repr=False)
    session_key: bytes = field(repr=False)
    gitlab_read_token: str = field(repr=False)
    prometheus_url: str | None
    kubernetes_url: str | None
    # Only with kubernetes_url (tests, the demo): the optional file kubernetes-token.
    kubernetes_token: str | None = field(repr=False)
    host: str
    port: int
    metrics_port: int
    session_max_age: float
    session_idle: float
    role_recheck: float
    sse_max_clients: int
    sse_queue: int
    gitlab_poll: float
    prometheus_poll: float
    log_level: str
    demo: bool = False

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/auth/callback"

    @property
    def environment_config(self) -> OrganizationConfig:
        """The served environment's config, overrides merged."""
        return self.config.environments[self.environment].config

    @property
    def watched_namespaces(self) -> list[str]:
        return dashboard_namespaces(self.environment_config)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret this process holds, for the log redaction filter."""
        key = self.session_key.decode("utf-8", "replace")
        values = (self.oauth_client_secret, key, self.gitlab_read_token, self.kubernetes_token)
        return tuple(value for value in values if value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, demo: bool = False) -> Settings:
        """Read ``environ`` and the secret files; raise :class:`SettingsError` listing every
        problem. ``demo`` fills what a local demo cannot know (URLs, ids, random secrets)."""
        return _Reader(environ, demo=demo).settings()


class _Reader:
    """Collects problems while reading, so one run reports them all."""

    def __init__(self, environ: Mapping[str, str], *, demo: bool) -> None:
        self.environ = environ
        self.demo = demo
        self.problems: list[str] = []

    def bad(self, name: str, message: str, value: str | None, allowed: str = "") -> None:
        got = "" if value is None else f"got {value!r}"
        details = "; ".join(
            part for part in (got, f"allowed: {allowed}" if allowed else "") if part
        )
        self.problems.append(f"{name}: {message}" + (f" ({details})" if details else ""))

    def raw(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or default

    def required(self, name: str, demo_default: str, allowed: str) -> str:
        value = self.raw(name, demo_default if self.demo else None)
        if value is None:
            self.bad(name, "is required", None, allowed)
            return ""
        return value

    def url(self, name: str, value: str | None, *, https_only: bool = True) -> str | None:
        """An absolute http(s) URL without query or fragment, trailing slash removed; plain
        http only on loopback (tests, the demo) when ``https_only``."""
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in _LOOPBACK
        schemes = ("https", "http") if loopback or not https_only else ("https",)
        if parts.scheme not in schemes or not parts.hostname or parts.query or parts.fragment:
            allowed = "an https:// URL (http:// only on localhost), no query or fragment"
            self.bad(name, "is not a usable URL", value, allowed)
            return None
        return value.rstrip("/")

    def integer(self, name: str, default: int, low: int, high: int, hint: str = "") -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            self.bad(name, "is not a whole number in range" + hint, value, f"{low}..{high}")
            return default
        return number

    def duration(self, name: str, default: str) -> float:
        value = self.raw(name, default) or default
        try:
            seconds = parse_duration(value)
        except ValueError:
            seconds = 0.0
        if seconds <= 0:
            self.bad(name, "is not a positive duration", value, "e.g. 30s, 5m, 1h, 12h")
            return parse_duration(default)
        return seconds

    def gitlab_ref(self, name: str, value: str, *, instance: bool) -> str:
        """A group (``instance``: or 'instance') or project reference, by the config's rule."""
        try:
            if value:
                (_GROUP_REF if instance else _PROJECT_REF).validate_python(value)
        except ValidationError:
            allowed = "a numeric id or a full path like group/subgroup"
            self.bad(
                name, "is not a GitLab id or path", value, allowed + (", or 'instance'" * instance)
            )
        return value

    def access_level(self) -> int:
        name = "DASHBOARD_VIEWER_MIN_ACCESS"
        value = (self.raw(name, "reporter") or "reporter").lower()
        if value in ACCESS_LEVELS:
            return ACCESS_LEVELS[value]
        if value.isdigit() and 10 <= int(value) <= 50:
            return int(value)
        self.bad(name, "is not an access level", value, "/".join(ACCESS_LEVELS) + " or 10..50")
        return ACCESS_LEVELS["reporter"]

    def secret(self, directory: Path, name: str, *, minimum: int = 1) -> str:
        """A secret file's content without its trailing newline; in the demo a missing file
        gets a random value for this process only."""
        path = directory / name
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            if self.demo:
                return secrets.token_urlsafe(48)
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.bad("DASHBOARD_SECRETS_DIR", f"cannot read {path} ({reason})", None)
            return ""
        if len(value) < minimum:
            # Never the value: say how long it is and what is needed.
            self.bad(
                "DASHBOARD_SECRETS_DIR",
                f"{path} holds {len(value)} characters",
                None,
                f"at least {minimum}",
            )
        return value

    @staticmethod
    def optional_secret(directory: Path, name: str) -> str | None:
        try:
            return (directory / name).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def secrets_in_environment(self) -> None:
        for name in sorted(self.environ):
            if _SECRET_NAME.match(name):
                self.bad(
                    name,
                    "secrets are read from files in DASHBOARD_SECRETS_DIR only; "
                    "unset this variable",
                    None,
                )

    def config(self) -> LoadedConfig | None:
        path, _ = resolve_config_path(self.raw(CONFIG_ENV_VAR))
        try:
            return load_config(path)
        except ConfigError as exc:
            self.problems += [f"{CONFIG_ENV_VAR}: {line}" for line in exc.lines]
            return None

    def environment(self, config: LoadedConfig | None) -> str:
        names = list(config.environments) if config else []
        name = "DASHBOARD_ENVIRONMENT"
        value = self.raw(name, names[0] if self.demo and names else None)
        if value is None:
            self.bad(name, "is required", None, ", ".join(names))
            return ""
        if config is not None and value not in config.environments:
            self.bad(name, "is not an environment of the config", value, ", ".join(names))
        return value

    def port(self, name: str, default: int) -> int:
        # A Service named "dashboard" makes Kubernetes inject DASHBOARD_PORT=tcp://...
        hint = (
            " (a Kubernetes Service named 'dashboard' injects DASHBOARD_PORT=tcp://...; "
            "set enableServiceLinks: false)"
            if name == "DASHBOARD_PORT"
            else ""
        )
        return self.integer(name, default, 1, 65535, hint)

    def settings(self) -> Settings:
        self.secrets_in_environment()
        config = self.config()
        environment = self.environment(config)
        port = self.port("DASHBOARD_PORT", 8080)
        public_url = self.url(
            "DASHBOARD_PUBLIC_URL",
            self.required("DASHBOARD_PUBLIC_URL", f"http://127.0.0.1:{port}", "an https:// URL"),
        )
        if public_url and urlsplit(public_url).path:
            self.bad(
                "DASHBOARD_PUBLIC_URL",
                "must be an origin without a path (the session cookie is __Host-, bound to /)",
                public_url,
                "e.g. https://runners.example.com",
            )
        gitlab_default = config.base.gitlab.url if config else None
        gitlab_url = self.url(
            "DASHBOARD_GITLAB_URL", self.raw("DASHBOARD_GITLAB_URL", gitlab_default)
        )
        group = self.required(
            "DASHBOARD_GITLAB_GROUP", DEMO_GROUP, "a group id or full path, or 'instance'"
        )
        project = self.required(
            "DASHBOARD_CONFIG_PROJECT", DEMO_PROJECT, "a project id or full path"
        )
        client_id = self.required(
            "DASHBOARD_OAUTH_CLIENT_ID", "demo", "the GitLab OAuth application id"
        )
        secrets_dir = Path(self.raw("DASHBOARD_SECRETS_DIR", "/var/run/secrets/dashboard") or "")
        kubernetes_url = self.url(
            "DASHBOARD_KUBERNETES_URL", self.raw("DASHBOARD_KUBERNETES_URL"), https_only=False
        )
        max_age = self.duration("DASHBOARD_SESSION_MAX_AGE", "12h")
        idle = self.duration("DASHBOARD_SESSION_IDLE", "1h")
        if idle > max_age:
            self.bad(
                "DASHBOARD_SESSION_IDLE",
                "is longer than DASHBOARD_SESSION_MAX_AGE",
                self.raw("DASHBOARD_SESSION_IDLE"),
                "at most the absolute lifetime",
            )
        log_level = (self.raw("DASHBOARD_LOG_LEVEL", "info") or "info").lower()
        if log_level not in LOG_LEVELS:
            self.bad("DASHBOARD_LOG_LEVEL", "is not a log level", log_level, ", ".join(LOG_LEVELS))
        fields: dict[str, Any] = {
            "environment": environment,
            "public_url": public_url or "",
            "gitlab_url": gitlab_url or "",
            "gitlab_group": self.gitlab_ref("DASHBOARD_GITLAB_GROUP", group, instance=True),
            "viewer_min_access": self.access_level(),
            "config_project": self.gitlab_ref("DASHBOARD_CONFIG_PROJECT", project, instance=False),
            "config_file": self.raw("DASHBOARD_CONFIG_FILE", "config/organization.yaml") or "",
            "config_branch": self.raw("DASHBOARD_CONFIG_BRANCH", "main") or "",
            "oauth_client_id": client_id,
            "secrets_dir": secrets_dir,
            "oauth_client_secret": self.secret(secrets_dir, "oauth-client-secret"),
            "session_key": self.secret(
                secrets_dir, "session-key", minimum=MIN_SESSION_KEY
            ).encode(),
            "gitlab_read_token": self.secret(secrets_dir, "gitlab-read-token"),
            "prometheus_url": self.url(
                "DASHBOARD_PROMETHEUS_URL", self.raw("DASHBOARD_PROMETHEUS_URL"), https_only=False
            ),
            "kubernetes_url": kubernetes_url,
            "kubernetes_token": self.optional_secret(secrets_dir, "kubernetes-token")
            if kubernetes_url
            else None,
            "host": self.raw("DASHBOARD_HOST", "0.0.0.0") or "",
            "port": port,
            "metrics_port": self.port("DASHBOARD_METRICS_PORT", 9090),
            "session_max_age": max_age,
            "session_idle": idle,
            "role_recheck": self.duration("DASHBOARD_ROLE_RECHECK", "5m"),
            "sse_max_clients": self.integer("DASHBOARD_SSE_MAX_CLIENTS", 1000, 1, 1_000_000),
            "sse_queue": self.integer("DASHBOARD_SSE_QUEUE", 32, 1, 100_000),
            "gitlab_poll": self.duration("DASHBOARD_GITLAB_POLL", "30s"),
            "prometheus_poll": self.duration("DASHBOARD_PROMETHEUS_POLL", "30s"),
            "log_level": log_level,
            "demo": self.demo,
        }
        if fields["port"] == fields["metrics_port"]:
            self.bad(
                "DASHBOARD_METRICS_PORT",
                "must differ from DASHBOARD_PORT (/metrics has a listener of its own)",
                str(fields["metrics_port"]),
            )
        if self.problems or config is None:
            raise SettingsError(self.problems)
        return Settings(config=config, **fields)
