#!/usr/bin/env python3
"""Delete GitLab runner job pods, and per-job namespaces, that outlived their job.

Usage::

    python3 runner_cleanup.py cleanup.json [--dry-run]

The spec is a JSON object (the ``RunnerJobCleanup`` construct writes it):

``job_namespaces``
    namespaces whose job pods are checked.
``label_selector``
    selects runner job pods; sent to the API as ``labelSelector``.
``max_age_seconds``
    a matching pod created longer ago than this is deleted whatever its phase (a leaked or hung
    job; keep it above the longest job timeout).
``finished_after_seconds``
    a ``Succeeded`` or ``Failed`` pod is deleted this long after its last container finished
    (after its creation when no container reports a finish time).
``stuck_terminating_seconds``
    a pod still present this long after its ``deletionTimestamp`` (the end of its grace period)
    is force-deleted with ``gracePeriodSeconds: 0``.
``namespace_per_job``
    ``null``, or ``{"prefix": "ci-job-"}``: namespaces named ``<prefix><digits>`` created longer
    ago than ``max_age_seconds`` are deleted (the runner's ``namespace_per_job`` names them
    ``ci-job-<job id>`` and carries no labels, so the name is all there is to match).

Kubernetes has no field selector for a pod's age, its phase's age or its deletion timestamp, so
pods are listed by label (paginated with ``limit``/``continue``) and filtered here. Every DELETE
carries ``preconditions.uid``, so an object that was replaced by a new one of the same name since
it was listed is never deleted. No ``resourceVersion`` precondition is sent: each decision rests
on facts that cannot change (creation time, a terminal phase, a set deletion timestamp), and a
running pod's resourceVersion changes with every status update. A DELETE answered 404 (already
gone) or 409 (replaced) is logged and is not a failure.

This file is mounted from a ConfigMap and runs on a stock Python (3.11 or newer) image: standard
library only. It never prints the service-account token or an Authorization header; the only
response bodies it prints are error bodies, truncated.

Exit codes: 0 every API call succeeded (or was answered 404/409 on delete); 1 at least one API
call failed (every other namespace and object is still processed); 2 the command line, the spec
or the service-account credentials are unusable.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_SA_TOKEN_FILE = SA_DIR / "token"
DEFAULT_CA_FILE = SA_DIR / "ca.crt"

#: Objects per list page.
PAGE_SIZE = 250
#: Error bodies are printed up to this many characters.
MAX_BODY_CHARS = 300
FINISHED_PHASES = ("Succeeded", "Failed")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME_PREFIX = re.compile(r"^[a-z0-9][-a-z0-9]{0,61}$")
_SPEC_KEYS = (
    "job_namespaces",
    "label_selector",
    "max_age_seconds",
    "finished_after_seconds",
    "stuck_terminating_seconds",
    "namespace_per_job",
)

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Log = Callable[[str], None]


def _log(line: str) -> None:
    print(line, flush=True)


def _log_error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ApiError(Exception):
    """An API call failed; the message says which and why (never contains a credential)."""


class SpecError(Exception):
    """The spec, the command line or a credential file is unusable; lists every problem."""


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None if it is empty or not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None

    def describe(self) -> str:
        """``HTTP <status>: <message>`` for logs (the Status message if any; truncated)."""
        payload = self.json()
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            text = payload["message"]
        else:
            text = self.body.decode("utf-8", errors="replace")
        text = " ".join(text.split())
        if len(text) > MAX_BODY_CHARS:
            text = text[:MAX_BODY_CHARS] + "..."
        return f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: the Authorization header must not travel to another host."""

    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


class KubeApi:
    """JSON requests to the Kubernetes API with the pod's service-account token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        sleep: Sleep = time.sleep,
        retries: int = 2,
        retry_delay: float = 1.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._sleep = sleep
        self._retries = retries
        self._retry_delay = retry_delay
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def from_environment(
        cls,
        api_server: str | None,
        sa_token_file: Path,
        ca_file: Path,
        environ: Mapping[str, str] = os.environ,
    ) -> KubeApi:
        if api_server is None:
            host = environ.get("KUBERNETES_SERVICE_HOST")
            port = environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise SpecError(
                    "KUBERNETES_SERVICE_HOST is not set (not in a pod?); pass --api-server"
                )
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"
            api_server = f"https://{host}:{port}"
        try:
            token = sa_token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise SpecError(f"service-account token {sa_token_file}: cannot read: {err}") from None
        if not token:
            raise SpecError(f"service-account token {sa_token_file} is empty")
        context = None
        if api_server.startswith("https://"):
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as err:
                raise SpecError(f"CA file {ca_file}: {err}; pass --ca-file") from None
        elif not api_server.startswith("http://"):
            raise SpecError(f"--api-server {api_server!r} must be an http(s) URL")
        return cls(api_server, token, context=context)

    def request(self, method: str, path: str, body: object = None) -> Response:
        """One call; connection failures are retried, HTTP errors come back as Responses."""
        headers = {
            "Accept": "application/json",
            "User-Agent": "attic-iac-runner-cleanup",
            "Authorization": f"Bearer {self._token}",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in range(self._retries + 1):
            req = urllib.request.Request(
                self._base + path, data=data, method=method, headers=headers
            )
            try:
                with self._opener.open(req, timeout=self._timeout) as resp:
                    return Response(resp.status, resp.read())
            except urllib.error.HTTPError as err:
                try:
                    return Response(err.code, err.read())
                finally:
                    err.close()
            except (OSError, http.client.HTTPException) as err:
                reason = err.reason if isinstance(err, urllib.error.URLError) else err
                if attempt == self._retries:
                    raise ApiError(
                        f"{method} {path}: Kubernetes API unreachable: {reason}"
                    ) from None
                self._sleep(self._retry_delay)
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Spec


@dataclass(frozen=True)
class Spec:
    job_namespaces: tuple[str, ...]
    label_selector: str
    max_age_seconds: int
    finished_after_seconds: int
    stuck_terminating_seconds: int
    #: ``None`` when the runner does not use ``namespace_per_job``.
    namespace_prefix: str | None

    def is_job_namespace(self, name: str) -> bool:
        """Whether ``name`` is ``<prefix><digits>``."""
        prefix = self.namespace_prefix
        return prefix is not None and re.fullmatch(f"{re.escape(prefix)}[0-9]+", name) is not None


def _positive_int(data: Mapping[str, Any], key: str, problems: list[str]) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{key} must be a positive integer (got {value!r})")
        return 0
    return value


def parse_spec(data: object) -> Spec:
    """Validate the spec; ``SpecError`` lists every problem."""
    if not isinstance(data, dict):
        raise SpecError("spec: expected a JSON object")
    problems = [f"unknown key {key!r}" for key in data if key not in _SPEC_KEYS]
    problems += [
        f"missing {key!r}" for key in _SPEC_KEYS if key not in data and key != "namespace_per_job"
    ]
    namespaces = data.get("job_namespaces")
    if not isinstance(namespaces, list) or not namespaces:
        problems.append("job_namespaces must be a non-empty list")
        namespaces = []
    for namespace in namespaces:
        if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
            problems.append(f"job_namespaces: {namespace!r} is not a namespace name")
    selector = data.get("label_selector")
    # An empty selector matches every pod in the namespace.
    if not isinstance(selector, str) or not selector.strip():
        problems.append("label_selector must be a non-empty string")
        selector = ""
    max_age = _positive_int(data, "max_age_seconds", problems)
    finished_after = _positive_int(data, "finished_after_seconds", problems)
    stuck = _positive_int(data, "stuck_terminating_seconds", problems)
    if max_age and finished_after > max_age:
        problems.append("finished_after_seconds must not exceed max_age_seconds")
    per_job = data.get("namespace_per_job")
    prefix = None
    if per_job is not None:
        raw = per_job.get("prefix") if isinstance(per_job, dict) else None
        if not isinstance(per_job, dict) or set(per_job) != {"prefix"}:
            problems.append('namespace_per_job must be null or {"prefix": "<prefix>"}')
        elif not isinstance(raw, str) or not _NAME_PREFIX.match(raw):
            problems.append(f"namespace_per_job.prefix {raw!r} is not a namespace name prefix")
        else:
            prefix = raw
    if problems:
        raise SpecError("invalid spec:\n  " + "\n  ".join(problems))
    return Spec(
        job_namespaces=tuple(namespaces),
        label_selector=str(selector),
        max_age_seconds=max_age,
        finished_after_seconds=finished_after,
        stuck_terminating_seconds=stuck,
        namespace_prefix=prefix,
    )


# --------------------------------------------------------------------------------------------
# Deciding


@dataclass(frozen=True)
class Action:
    """One DELETE to send."""

    kind: str  # "pod" or "namespace"
    namespace: str  # "" for a namespace
    name: str
    uid: str
    #: Seconds since the object was created.
    age: float
    reason: str
    force: bool = False

    @property
    def label(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def path(self) -> str:
        if self.kind == "pod":
            return f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        return f"/api/v1/namespaces/{self.name}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": self.uid},
        }
        if self.force:
            body["gracePeriodSeconds"] = 0
        return body


def _time(value: object) -> float | None:
    """An RFC 3339 timestamp as epoch seconds, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def duration(seconds: float) -> str:
    """``3d04h``, ``2h05m``, ``15m00s`` or ``42s``."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _finished_at(pod: Mapping[str, Any]) -> float | None:
    """When the last container of a finished pod terminated, if any container says."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    times = [
        _time(((status.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for status in statuses
        if isinstance(status, dict)
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def pod_action(pod: Mapping[str, Any], spec: Spec, now: float) -> Action | None:
    """The DELETE a listed pod needs, or None to leave it alone."""
    meta = pod.get("metadata") or {}
    phase = str((pod.get("status") or {}).get("phase") or "Unknown")
    created = _time(meta.get("creationTimestamp"))
    if created is None or not meta.get("name") or not meta.get("uid"):
        return None
    reason = ""
    deadline = _time(meta.get("deletionTimestamp"))
    if deadline is not None:
        # deletionTimestamp is when the grace period ends, not when deletion was asked for.
        # A pod that is terminating is only ever force-deleted, never deleted again.
        overdue = now - deadline
        if overdue > spec.stuck_terminating_seconds:
            reason = (
                f"still terminating {duration(overdue)} after its grace period ended "
                f"(limit {duration(spec.stuck_terminating_seconds)})"
            )
    elif phase in FINISHED_PHASES:
        since = now - (_finished_at(pod) or created)
        if since > spec.finished_after_seconds:
            reason = (
                f"{phase} {duration(since)} ago (limit {duration(spec.finished_after_seconds)})"
            )
    elif now - created > spec.max_age_seconds:
        reason = f"{phase}, older than the max age {duration(spec.max_age_seconds)}"
    if not reason:
        return None
    return Action(
        kind="pod",
        namespace=str(meta.get("namespace") or ""),
        name=str(meta["name"]),
        uid=str(meta["uid"]),
        age=now - created,
        reason=reason,
        force=deadline is not None,
    )


def namespace_action(namespace: Mapping[str, Any], spec: Spec, now: float) -> Action | None:
    """The DELETE a per-job namespace needs, or None."""
    meta = namespace.get("metadata") or {}
    name = str(meta.get("name") or "")
    created = _time(meta.get("creationTimestamp"))
    if (
        not spec.is_job_namespace(name)
        or created is None
        or not meta.get("uid")
        # Already being deleted: the namespace controller finishes it.
        or meta.get("deletionTimestamp")
        or now - created <= spec.max_age_seconds
    ):
        return None
    return Action(
        kind="namespace",
        namespace="",
        name=name,
        uid=str(meta["uid"]),
        age=now - created,
        reason=f"per-job namespace older than the max age {duration(spec.max_age_seconds)}",
    )


# --------------------------------------------------------------------------------------------
# Acting


def list_all(
    kube: KubeApi, path: str, query: Mapping[str, str], page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every item of a list, page by page; ``ApiError`` if a page cannot be read."""
    token = ""
    while True:
        params = {**query, "limit": str(page_size)}
        if token:
            params["continue"] = token
        response = kube.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        payload = response.json()
        if response.status != 200 or not isinstance(payload, dict):
            raise ApiError(f"listing {path} failed: {response.describe()}")
        for item in payload.get("items") or []:
            if isinstance(item, dict):
                yield item
        token = str((payload.get("metadata") or {}).get("continue") or "")
        if not token:
            return


def delete(kube: KubeApi, action: Action) -> str:
    """Send one DELETE; the outcome for the log, or ``ApiError``."""
    response = kube.request("DELETE", action.path, action.body())
    if response.status in (200, 202):
        return "force-deleted" if action.force else "deleted"
    if response.status == 404:
        return "already gone"
    if response.status == 409:
        return "replaced since listed, kept"
    raise ApiError(f"deleting {action.label} failed: {response.describe()}")


@dataclass
class Run:
    """One cleanup pass: decides, acts, counts and logs."""

    spec: Spec
    kube: KubeApi
    now: float
    dry_run: bool = False
    page_size: int = PAGE_SIZE
    log: Log = _log
    log_error: Log = _log_error
    counts: Counter[str] = field(default_factory=Counter, init=False)
    failures: int = field(default=0, init=False)

    def act(self, action: Action) -> None:
        if self.dry_run:
            outcome = "would force-delete" if action.force else "would delete"
        else:
            try:
                outcome = delete(self.kube, action)
            except ApiError as err:
                self.fail(str(err))
                return
        self.counts[f"{action.kind}s {outcome}"] += 1
        self.log(f"{action.label}: {outcome} (age {duration(action.age)}; {action.reason})")

    def fail(self, message: str) -> None:
        self.failures += 1
        self.log_error(f"FAILED: {message}")

    def pods(self, namespace: str) -> None:
        path = f"/api/v1/namespaces/{namespace}/pods"
        try:
            pods = list(
                list_all(
                    self.kube, path, {"labelSelector": self.spec.label_selector}, self.page_size
                )
            )
        except ApiError as err:
            self.fail(str(err))
            return
        self.counts["pods matched"] += len(pods)
        for pod in pods:
            action = pod_action(pod, self.spec, self.now)
            if action is not None:
                self.act(action)

    def namespaces(self) -> None:
        try:
            found = [
                ns
                for ns in list_all(self.kube, "/api/v1/namespaces", {}, self.page_size)
                if self.spec.is_job_namespace(str((ns.get("metadata") or {}).get("name") or ""))
            ]
        except ApiError as err:
            self.fail(str(err))
            return
        self.counts["namespaces matched"] += len(found)
        for namespace in found:
            action = namespace_action(namespace, self.spec, self.now)
            if action is not None:
                self.act(action)

    def run(self) -> int:
        for namespace in self.spec.job_namespaces:
            self.pods(namespace)
        if self.spec.namespace_prefix is not None:
            self.namespaces()
        counts = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items()))
        mode = " (dry run: nothing deleted)" if self.dry_run else ""
        self.log(f"summary{mode}: {counts or 'nothing matched'}; failed API calls {self.failures}")
        return EXIT_FAILED if self.failures else EXIT_OK


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner_cleanup.py",
        description="Delete GitLab runner job pods and per-job namespaces that outlived their job.",
    )
    parser.add_argument("spec", type=Path, help="cleanup spec JSON file")
    parser.add_argument("--dry-run", action="store_true", help="log what would be deleted only")
    parser.add_argument(
        "--api-server",
        help="Kubernetes API base URL (default https://$KUBERNETES_SERVICE_HOST:"
        "$KUBERNETES_SERVICE_PORT)",
    )
    parser.add_argument("--sa-token-file", type=Path, default=DEFAULT_SA_TOKEN_FILE)
    parser.add_argument("--ca-file", type=Path, default=DEFAULT_CA_FILE)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    now: Clock = time.time,
    environ: Mapping[str, str] | None = None,
) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            data = json.loads(args.spec.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SpecError(f"{args.spec}: cannot read JSON: {err}") from None
        spec = parse_spec(data)
        kube = KubeApi.from_environment(
            args.api_server,
            args.sa_token_file,
            args.ca_file,
            os.environ if environ is None else environ,
        )
    except SpecError as err:
        _log_error(f"error: {err}")
        return EXIT_USAGE
    return Run(spec=spec, kube=kube, now=now(), dry_run=args.dry_run).run()


if __name__ == "__main__":
    sys.exit(main())
