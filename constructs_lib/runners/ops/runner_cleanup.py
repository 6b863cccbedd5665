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

It runs on a stock Python (3.11 or newer) image, from a ConfigMap: standard library only. Its
Kubernetes API client is ``constructs_lib/kubernetes/ops/incluster.py``, which the construct
inlines in place of its import when it writes the ConfigMap, so the pod runs one self-contained
file. It never prints the service-account token or an Authorization header; the only response
bodies it prints are error bodies (the API's Status messages), truncated.

Exit codes: 0 every API call succeeded (or was answered 404/409 on delete); 1 at least one API
call failed (every other namespace and object is still processed); 2 the command line, the spec
or the service-account credentials are unusable.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constructs_lib.kubernetes.ops.incluster import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Clock,
    KubeApi,
    Log,
    OpsError,
    SpecError,
    add_kube_arguments,
    log,
    log_error,
    parse_time,
    read_json,
)

#: Objects per list page.
PAGE_SIZE = 250
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
        parse_time(((status.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for status in statuses
        if isinstance(status, dict)
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def pod_action(pod: Mapping[str, Any], spec: Spec, now: float) -> Action | None:
    """The DELETE a listed pod needs, or None to leave it alone."""
    meta = pod.get("metadata") or {}
    phase = str((pod.get("status") or {}).get("phase") or "Unknown")
    created = parse_time(meta.get("creationTimestamp"))
    if created is None or not meta.get("name") or not meta.get("uid"):
        return None
    reason = ""
    deadline = parse_time(meta.get("deletionTimestamp"))
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
    created = parse_time(meta.get("creationTimestamp"))
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
    """Every item of a list, page by page; ``OpsError`` if a page cannot be read."""
    token = ""
    while True:
        params = {**query, "limit": str(page_size)}
        if token:
            params["continue"] = token
        response = kube.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        payload = response.json()
        if response.status != 200 or not isinstance(payload, dict):
            raise OpsError(f"listing {path} failed: {response.describe()}")
        for item in payload.get("items") or []:
            if isinstance(item, dict):
                yield item
        token = str((payload.get("metadata") or {}).get("continue") or "")
        if not token:
            return


def delete(kube: KubeApi, action: Action) -> str:
    """Send one DELETE; the outcome for the log, or ``OpsError``."""
    response = kube.request("DELETE", action.path, action.body())
    if response.status in (200, 202):
        return "force-deleted" if action.force else "deleted"
    if response.status == 404:
        return "already gone"
    if response.status == 409:
        return "replaced since listed, kept"
    raise OpsError(f"deleting {action.label} failed: {response.describe()}")


@dataclass
class Run:
    """One cleanup pass: decides, acts, counts and logs."""

    spec: Spec
    kube: KubeApi
    now: float
    dry_run: bool = False
    page_size: int = PAGE_SIZE
    log: Log = log
    log_error: Log = log_error
    counts: Counter[str] = field(default_factory=Counter, init=False)
    failures: int = field(default=0, init=False)

    def act(self, action: Action) -> None:
        if self.dry_run:
            outcome = "would force-delete" if action.force else "would delete"
        else:
            try:
                outcome = delete(self.kube, action)
            except OpsError as err:
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
        except OpsError as err:
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
        except OpsError as err:
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
    add_kube_arguments(parser)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    now: Clock = time.time,
    environ: Mapping[str, str] | None = None,
) -> int:
    args = _parser().parse_args(argv)
    try:
        spec = parse_spec(read_json(args.spec))
        kube = KubeApi.from_arguments(args, environ, user_agent="attic-iac-runner-cleanup")
    except SpecError as err:
        log_error(f"error: {err}")
        return EXIT_USAGE
    return Run(spec=spec, kube=kube, now=now(), dry_run=args.dry_run).run()


if __name__ == "__main__":
    sys.exit(main())
