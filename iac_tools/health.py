"""``attic-iac health``: is each environment serving? Probes atticd from outside the cluster and,
with a GitLab token, the runner managers this config creates.

Per environment: ``GET /`` (a static page: proves atticd answers, not that it works), then
``GET /<cache>/nix-cache-info`` of each public cache (reads the database; private caches answer
401 without a token, so they are not probed). With ``$GITLAB_TOKEN`` (sent as PRIVATE-TOKEN,
never printed): each runner type's runner, found by the description the runners stack gives
it, its paused flag and how many of its managers GitLab counts online.

One line per check: ``ok``/``warn``/``skip`` on stdout, ``error:`` on stderr (the problems),
then a summary. Exit 0 when nothing failed, 1 otherwise. Standard library HTTP only: TLS
verified, redirects reported instead of followed, a timeout on every request.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from config_model.base import check_url
from config_model.loader import ConfigError, LoadedConfig, ResolvedEnvironment
from config_model.runners import RunnerType, enabled_types, runner_slug
from constructs_lib.kubernetes.ops.incluster import opener

DEFAULT_TIMEOUT = 10.0
TOKEN_ENV = "GITLAB_TOKEN"
EXIT_FAILED = 1
# Enough for a page of 100 runners; Attic's answers here are a few hundred bytes.
_BODY_LIMIT = 1 << 20
_PER_PAGE = 100
_MAX_PAGES = 20
_USER_AGENT = "attic-iac-health"
# atticd's own service (stacks/attic.py, constructs_lib/attic/attic_server.py).
_SERVICE = "attic"
_SERVICE_PORT = 80

Status = Literal["ok", "warn", "skip", "fail"]


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthOptions:
    """What ``attic-iac health`` checks and how.

    Attributes:
        env: only this environment. Default ``None`` (all).
        attic_url: reach atticd here instead of its public URL, e.g. a port-forward; only with
            ``env``. Requests keep the Host header atticd's ``allowed-hosts`` accepts.
            Default ``None``.
        gitlab_url: GitLab base URL for the runner check. Default ``None`` (``gitlab.url``).
        timeout: seconds each request may take. Default :data:`DEFAULT_TIMEOUT`.
        token: GitLab access token (scope read_api); ``None`` skips the runner check.
            Default ``None``.
    """

    env: str | None = None
    attic_url: str | None = None
    gitlab_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    status: Status
    env: str
    subject: str
    detail: str

    def line(self) -> str:
        return f"{self.env} {self.subject} {self.detail}"


def run_health(config: LoadedConfig, options: HealthOptions) -> int:
    """Check, print one line per check, return the exit code; bad options raise ConfigError
    before any request is sent."""
    problems = option_problems(config, options)
    if problems:
        raise ConfigError(problems)
    secrets = [options.token] if options.token else []
    counts: Counter[Status] = Counter()
    for check in checks(config, options):
        counts[check.status] += 1
        line = check.line()
        for secret in secrets:  # defence in depth: no body we print should hold it
            line = line.replace(secret, "***")
        if check.status == "fail":
            print(f"error: {line}", file=sys.stderr, flush=True)
        else:
            print(f"{check.status:<5}{line}", flush=True)
    print(
        f"health: {counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed, "
        f"{counts['skip']} skipped",
        flush=True,
    )
    return EXIT_FAILED if counts["fail"] else 0


def option_problems(config: LoadedConfig, options: HealthOptions) -> list[str]:
    problems: list[str] = []
    if options.env is not None and options.env not in config.environments:
        known = ", ".join(config.environments)
        problems.append(f"--env: unknown environment (got {options.env!r}; allowed: {known})")
    if options.attic_url is not None and options.env is None:
        problems.append("--attic-url: give --env too (the URL reaches one environment's atticd)")
    for flag, url in (("--attic-url", options.attic_url), ("--gitlab-url", options.gitlab_url)):
        if url is None:
            continue
        try:
            check_url(url, ("http", "https"), "http(s)://")
        except ValueError as exc:
            problems.append(f"{flag}: {exc} (got {url!r})")
    if not (math.isfinite(options.timeout) and options.timeout > 0):
        problems.append(f"--timeout: must be more than 0 seconds (got {options.timeout:g})")
    return problems


def checks(config: LoadedConfig, options: HealthOptions) -> Iterator[Check]:
    """Every check of every selected environment, in order, as each completes."""
    client = HttpClient(timeout=options.timeout)
    for name, env in config.environments.items():
        if options.env is not None and name != options.env:
            continue
        yield from attic_checks(env, client, options.attic_url)
        yield from runner_checks(env, client, options)


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer (``status``), or none at all (``error`` says why)."""

    url: str
    ms: int
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    def summary(self) -> str:
        """``200 12 ms``, or ``no answer (connection refused) after 3 ms``."""
        if self.status is None:
            return f"no answer ({self.error}) after {self.ms} ms"
        return f"{self.status} {self.ms} ms"

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None

    def snippet(self, limit: int = 120) -> str:
        """The start of an error body, on one line."""
        text = " ".join(self.body.decode("utf-8", errors="replace").split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


class HttpClient:
    """GET with a timeout, certificate checks, no redirects; latency from time.monotonic."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        # A redirect is reported, never followed: the check must name what really answered,
        # and the GitLab token must not travel to another host.
        self._opener = opener(ssl.create_default_context())

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        request = urllib.request.Request(
            url, headers={"User-Agent": _USER_AGENT, **(headers or {})}
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(_BODY_LIMIT)
                return Reply(url, _ms(started), response.status, body, _headers(response.headers))
        except urllib.error.HTTPError as exc:
            body = b""
            if exc.fp is not None:
                try:
                    body = exc.read(_BODY_LIMIT)
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    exc.close()
            return Reply(url, _ms(started), exc.code, body, _headers(exc.headers))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            return Reply(url, _ms(started), error=_reason(exc, self.timeout))


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _headers(message: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in message.items()} if message else {}


def _reason(exc: BaseException, timeout: float) -> str:
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {reason.verify_message}"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host: {reason.strerror}"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason) or type(reason).__name__


def _http_failure(reply: Reply) -> str:
    """Why a reply is not a 200, with what the server said."""
    if reply.status is None:
        return reply.summary()
    if 300 <= reply.status < 400:
        where = reply.headers.get("location", "nowhere")
        return f"{reply.summary()}: redirected to {where} (not followed; expected 200)"
    said = reply.snippet()
    return f"{reply.summary()}: expected 200" + (f"; body: {said}" if said else "")


# --------------------------------------------------------------------------------------------
# Attic


def attic_target(env: ResolvedEnvironment, attic_url: str | None) -> tuple[str | None, str]:
    """(base URL ending in '/', or None when unreachable from here; the Host header atticd
    accepts). atticd compares Host with allowed-hosts: the ingress host, else its Service."""
    attic = env.config.attic
    public_host = attic.ingress.host or f"attic.{env.settings.domain}"
    host = public_host if attic.ingress.enabled else f"{_SERVICE}.{attic.namespace}.svc"
    if attic_url is not None:
        return attic_url.rstrip("/") + "/", host
    if attic.api.endpoint is not None:
        return attic.api.endpoint, host
    if attic.ingress.enabled:
        return f"https://{public_host}/", host
    return None, host


_ROOT_HINTS = {
    400: " (atticd answers 400 to a Host header not in its allowed-hosts)",
    502: " (the ingress reached no atticd pod)",
    503: " (the ingress has no ready atticd pod)",
    504: " (the ingress got no answer from atticd in time)",
}


def attic_checks(
    env: ResolvedEnvironment, client: HttpClient, attic_url: str | None
) -> Iterator[Check]:
    attic = env.config.attic
    base, host = attic_target(env, attic_url)
    if base is None:
        yield Check(
            "skip",
            env.name,
            "attic",
            f"attic.ingress.enabled is false: not reachable from here; run 'kubectl -n "
            f"{attic.namespace} port-forward svc/{_SERVICE} 8080:{_SERVICE_PORT}' and "
            f"'attic-iac health --env {env.name} --attic-url http://127.0.0.1:8080'",
        )
        return
    # Without an override the URL's own host is the right one (and TLS checks it).
    headers = {"Host": host} if attic_url is not None else {}
    root = client.get(base, headers)
    if root.status == 200:
        yield Check("ok", env.name, f"attic GET {base}", root.summary())
    else:
        hint = _ROOT_HINTS.get(root.status or 0, "")
        yield Check("fail", env.name, f"attic GET {base}", _http_failure(root) + hint)
    public = [cache.name for cache in attic.caches if cache.public]
    if not public:
        yield Check(
            "skip",
            env.name,
            "attic database",
            "not probed: no public cache (GET / never touches the database); declare a "
            "small public cache in attic.caches to cover it",
        )
    elif root.status is None:
        yield Check(
            "skip",
            env.name,
            "attic caches",
            f"{', '.join(public)} not probed: GET / got no answer",
        )
    for cache in attic.caches:
        if not cache.public:
            yield Check(
                "skip",
                env.name,
                f"attic cache {cache.name}",
                "is private: anonymous pulls get 401, so it is not probed",
            )
        elif root.status is not None:
            yield _cache_check(env.name, client, base, cache.name, headers)


def _cache_check(
    env_name: str, client: HttpClient, base: str, cache: str, headers: Mapping[str, str]
) -> Check:
    url = f"{base}{urllib.parse.quote(cache, safe='+')}/nix-cache-info"
    reply = client.get(url, headers)
    subject = f"attic GET {url}"
    if reply.status == 200 and b"StoreDir:" in reply.body:
        return Check("ok", env_name, subject, reply.summary())
    if reply.status == 200:
        return Check(
            "fail", env_name, subject, f"{reply.summary()}: not a nix-cache-info (no StoreDir)"
        )
    hints = {
        401: f" (atticd: '{cache}' does not exist or is not public; has the caches Job run?)",
        500: " (atticd: is its database reachable?)",
    }
    return Check("fail", env_name, subject, _http_failure(reply) + hints.get(reply.status or 0, ""))


# --------------------------------------------------------------------------------------------
# GitLab runners


@dataclass(frozen=True, slots=True)
class GitLab:
    """The GitLab API of one run: base URL and token."""

    client: HttpClient
    api: str
    token: str = field(repr=False)

    def get(self, path: str) -> Reply:
        return self.client.get(f"{self.api}{path}", {"PRIVATE-TOKEN": self.token})


def runners_path(env: ResolvedEnvironment) -> str:
    """The list of runners of the scope the runners stack creates them in."""
    api = env.config.runners.gitlab_api
    query = f"type={api.runner_type}&per_page={_PER_PAGE}"
    if api.runner_type == "group_type":
        return f"/groups/{api.group_id}/runners?{query}"
    if api.runner_type == "project_type":
        return f"/projects/{api.project_id}/runners?{query}"
    return f"/runners/all?{query}"  # instance_type: administrators only


def runner_description(env: ResolvedEnvironment, runner_type: str) -> str:
    """The description stacks/runners.py gives a type's runner."""
    spec = getattr(env.config.runners.types, runner_type)
    return spec.gitlab.description or f"{env.config.organization.name} {env.name} {runner_type}"


def runner_checks(
    env: ResolvedEnvironment, client: HttpClient, options: HealthOptions
) -> Iterator[Check]:
    runners = env.config.runners
    types = enabled_types(runners)
    if not types:
        return
    if runners.token_source == "existing_secret":
        yield Check(
            "skip",
            env.name,
            "runners",
            "token_source is existing_secret: nothing here says which GitLab runners are "
            "this environment's; see them in GitLab under Settings > CI/CD > Runners",
        )
        return
    if not options.token:
        yield Check("skip", env.name, "runners", f"not checked: ${TOKEN_ENV} is not set")
        return
    base = (options.gitlab_url or env.config.gitlab.url).rstrip("/")
    gitlab = GitLab(client, f"{base}/api/v4", options.token)
    listed = _list_runners(env.name, gitlab, runners_path(env))
    if isinstance(listed, Check):
        yield listed
        return
    for name, spec in types:
        yield from _runner_check(env, gitlab, listed, name, spec)


def _list_runners(env_name: str, gitlab: GitLab, path: str) -> list[dict[str, Any]] | Check:
    """Every runner of the listing, page by page, or the failing check."""
    found: list[dict[str, Any]] = []
    for page in range(1, _MAX_PAGES + 1):
        reply = gitlab.get(f"{path}&page={page}")
        subject = f"runners GET {reply.url}"
        if reply.status != 200:
            hints = {
                401: " (GITLAB_TOKEN rejected: expired or revoked?)",
                403: " (the token needs scope read_api, its user a role that may list these "
                "runners: Owner of the group, Maintainer of the project)",
                404: " (no such group or project, or the token cannot see it)",
            }
            detail = _http_failure(reply) + hints.get(reply.status or 0, "")
            return Check("fail", env_name, subject, detail)
        items = reply.json()
        if not isinstance(items, list):
            return Check(
                "fail", env_name, subject, f"{reply.summary()}: not a JSON list of runners"
            )
        found += [item for item in items if isinstance(item, dict)]
        if not reply.headers.get("x-next-page"):
            return found
    return Check("fail", env_name, f"runners GET {gitlab.api}{path}", f"over {_MAX_PAGES} pages")


def _runner_check(
    env: ResolvedEnvironment,
    gitlab: GitLab,
    listed: list[dict[str, Any]],
    runner_type: str,
    spec: RunnerType,
) -> Iterator[Check]:
    description = runner_description(env, runner_type)
    matches = [r for r in listed if r.get("description") == description]
    subject = f"runner {runner_type}"
    if len(matches) != 1:
        ids = ", ".join(f"#{r.get('id')}" for r in matches)
        yield Check(
            "fail",
            env.name,
            subject,
            f"{len(matches)} runners described {description!r}{f' ({ids})' if ids else ''}; "
            "the runners stack creates exactly one (not applied yet, or leftovers to delete)",
        )
        return
    runner = matches[0]
    subject = f"runner {runner_type} #{runner.get('id')}"
    # 'paused' replaces the deprecated 'active' (gitlab-org/gitlab#351109); old servers lack it.
    paused = runner["paused"] if "paused" in runner else runner.get("active") is False
    paused_by_config = spec.gitlab.paused
    if paused and not paused_by_config:
        yield Check(
            "fail",
            env.name,
            subject,
            f"{description!r} is paused in GitLab and picks up no jobs (the config says "
            f"runners.types.{runner_type}.gitlab.paused: false)",
        )
    reply = gitlab.get(f"/runners/{runner.get('id')}/managers")
    managers = reply.json() if reply.status == 200 else None
    if not isinstance(managers, list):
        why = _http_failure(reply) if reply.status != 200 else "not a JSON list of managers"
        yield Check("fail", env.name, f"{subject} GET {reply.url}", why)
        return
    online = sum(1 for m in managers if isinstance(m, dict) and m.get("status") == "online")
    counted = (
        f"{description!r}: {online} manager(s) online of {len(managers)} known, "
        f"{spec.replicas} replica(s) configured, {reply.ms} ms"
    )
    if paused and paused_by_config:
        yield Check("skip", env.name, subject, f"{counted}; paused as configured")
    elif online == 0:
        namespace = env.config.runners.namespace
        yield Check(
            "fail",
            env.name,
            subject,
            f"{counted}: no manager online; are the gitlab-runner-{runner_slug(runner_type)} "
            f"pods in {namespace} running and able to reach GitLab?",
        )
    elif online < spec.replicas:
        yield Check("warn", env.name, subject, f"{counted}: fewer online than replicas")
    else:
        yield Check("ok", env.name, subject, counted)
