"""runner_cleanup.py against an in-process fake of the Kubernetes pod and namespace API, and the
RunnerJobCleanup construct that ships it.

Long because it covers both halves of one feature: the script's decisions (age, phase, deletion
timestamp, per-job namespaces, paging, preconditions, failures, command line, the shipped file)
and the construct's RBAC, admission policy, CronJob and ConfigMap; the shared Kubernetes client
has its own tests in test_incluster.py.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.kubernetes.ops.incluster import KubeApi
from constructs_lib.runners.job_cleanup import (
    RUNNER_NAMESPACE_PER_JOB_PREFIX,
    RunnerJobCleanup,
    RunnerJobCleanupProps,
    cleanup_script,
)
from constructs_lib.runners.labels import JOB_POD_LABELS, job_pod_selector
from constructs_lib.runners.ops import runner_cleanup
from constructs_lib.runners.ops.runner_cleanup import Run, Spec, duration, parse_spec
from constructs_lib.validation import PropsError
from tests.support.fake_http import (
    FakeServer,
    Recorded,
    kube_status,
    no_proxies,  # noqa: F401 (autouse fixture)
    serving,
)
from tests.support.ops_scripts import run_shipped
from tests.support.synth_output import resources

SA_TOKEN = "KUBE-SA-TOKEN-SENTINEL"
NOW = 1_800_000_000
MINUTE, HOUR = 60, 3600
JOBS, DIND = "gitlab-runner-jobs", "gitlab-runner-dind"
JOB_LABELS = {**JOB_POD_LABELS, "attic-iac/runner-type": "docker"}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube(FakeServer):
    """List (labelSelector, limit, continue) and DELETE (uid preconditions) of pods and
    namespaces, like the API server."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.fail: dict[tuple[str, str], int] = {}  # (method, path) -> status
        self.replace_before_delete: set[str] = set()  # recreated (new uid) just before DELETE
        self.vanish_before_delete: set[str] = set()  # gone just before DELETE
        self._uid = 0

    def _next_uid(self) -> str:
        self._uid += 1
        return f"uid-{self._uid:04d}"

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = JOBS,
        created: float,
        phase: str = "Running",
        labels: dict[str, str] | None = None,
        deletion: float | None = None,
        finished: list[float] | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": self._next_uid(),
            "resourceVersion": "1",
            "creationTimestamp": _iso(created),
            "labels": JOB_LABELS if labels is None else labels,
        }
        if deletion is not None:
            metadata["deletionTimestamp"] = _iso(deletion)
            metadata["deletionGracePeriodSeconds"] = 30
        status: dict[str, Any] = {"phase": phase}
        if finished is not None:
            status["containerStatuses"] = [
                {"name": f"c{i}", "state": {"terminated": {"exitCode": 0, "finishedAt": _iso(t)}}}
                for i, t in enumerate(finished)
            ]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}
        self.pods[(namespace, name)] = pod
        return pod

    def add_namespace(
        self, name: str, *, created: float, deletion: float | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "uid": self._next_uid(),
            "creationTimestamp": _iso(created),
        }
        if deletion is not None:
            metadata["deletionTimestamp"] = _iso(deletion)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        self.namespaces[name] = namespace
        return namespace

    def lists(self) -> list[tuple[str, dict[str, list[str]]]]:
        found = []
        for request in self.requests:
            url = urllib.parse.urlsplit(request.path)
            if request.method == "GET":
                found.append((url.path, urllib.parse.parse_qs(url.query)))
        return found

    def deletes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "DELETE"]

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {SA_TOKEN}":
            return kube_status(401, "Unauthorized", "Unauthorized")
        url = urllib.parse.urlsplit(request.path)
        if (request.method, url.path) in self.fail:
            code = self.fail[(request.method, url.path)]
            return kube_status(code, "InternalError", f"injected failure {code}")
        pods = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?", url.path)
        namespaces = re.fullmatch(r"/api/v1/namespaces(?:/([^/]+))?", url.path)
        store: dict[Any, dict[str, Any]]
        key: Any
        if pods is not None:
            namespace, name = pods.groups()
            store, key, kind = self.pods, (namespace, name), "PodList"
            items = [p for (ns, _), p in sorted(self.pods.items()) if ns == namespace]
        elif namespaces is not None:
            (name,) = namespaces.groups()
            store, key, kind = self.namespaces, name, "NamespaceList"
            items = [n for _, n in sorted(self.namespaces.items())]
        else:
            return kube_status(404, "NotFound", "the server could not find the requested resource")
        if request.method == "GET" and name is None:
            return self._list(kind, items, urllib.parse.parse_qs(url.query))
        if request.method == "DELETE" and name is not None:
            return self._delete(store, key, name, request.body)
        return kube_status(405, "MethodNotAllowed", "method not allowed")

    @staticmethod
    def _list(
        kind: str, items: list[dict[str, Any]], query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        if "fieldSelector" in query:
            return kube_status(400, "BadRequest", "field selectors are not what we want here")
        wanted = [
            tuple(term.split("=", 1)) for term in query.get("labelSelector", [""])[0].split(",")
        ]
        items = [
            item
            for item in items
            if all(
                len(term) == 2 and item["metadata"].get("labels", {}).get(term[0]) == term[1]
                for term in wanted
                if term != ("",)
            )
        ]
        start = int(query.get("continue", ["0"])[0])
        limit = int(query["limit"][0])
        page = items[start : start + limit]
        more = start + limit < len(items)
        metadata = {"resourceVersion": "99", **({"continue": str(start + limit)} if more else {})}
        return 200, {"kind": kind, "apiVersion": "v1", "metadata": metadata, "items": page}

    def _delete(self, store: dict[Any, Any], key: Any, name: str, body: Any) -> tuple[int, Any]:
        if name in self.vanish_before_delete:
            store.pop(key, None)
        if name in self.replace_before_delete and key in store:
            store[key]["metadata"]["uid"] = self._next_uid()
        if key not in store:
            return kube_status(404, "NotFound", f'"{name}" not found')
        uid = ((body or {}).get("preconditions") or {}).get("uid")
        actual = store[key]["metadata"]["uid"]
        if uid is not None and uid != actual:
            return kube_status(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}",
            )
        return 200, store.pop(key)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with serving(FakeKube()) as server:
        yield server


def _spec(**overrides: Any) -> Spec:
    values: dict[str, Any] = {
        "job_namespaces": (JOBS, DIND),
        "label_selector": job_pod_selector(),
        "max_age_seconds": 4 * HOUR,
        "finished_after_seconds": 15 * MINUTE,
        "stuck_terminating_seconds": 10 * MINUTE,
        "namespace_prefix": None,
        **overrides,
    }
    return Spec(**values)


class Logs:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []


def _run(kube: FakeKube, spec: Spec | None = None, logs: Logs | None = None, **kwargs: Any) -> int:
    logs = logs or Logs()
    return Run(
        spec=spec or _spec(),
        kube=KubeApi(kube.url, SA_TOKEN, sleep=lambda _s: None),
        now=NOW,
        log=logs.out.append,
        log_error=logs.err.append,
        **kwargs,
    ).run()


def _deleted(kube: FakeKube) -> list[str]:
    return [urllib.parse.urlsplit(r.path).path for r in kube.deletes()]


def _pod_path(name: str, namespace: str = JOBS) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


# --------------------------------------------------------------------------------------------
# The script: what gets deleted


def test_old_running_pods_go_and_young_ones_stay(kube: FakeKube) -> None:
    old = kube.add_pod("old", created=NOW - 5 * HOUR)
    kube.add_pod("young", created=NOW - 1 * HOUR)
    kube.add_pod("pending", namespace=DIND, created=NOW - 4 * HOUR - 1, phase="Pending")
    logs = Logs()

    assert _run(kube, logs=logs) == 0

    assert _deleted(kube) == [_pod_path("old"), _pod_path("pending", DIND)]
    first = kube.deletes()[0]
    assert first.body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": old["metadata"]["uid"]},
    }
    assert (JOBS, "young") in kube.pods
    assert logs.out[0] == (
        f"pod {JOBS}/old: deleted (age 5h00m; Running, older than the max age 4h00m)"
    )
    assert logs.out[1].startswith(f"pod {DIND}/pending: deleted (age 4h00m; Pending,")
    assert logs.out[-1] == "summary: pods deleted 2, pods matched 3; failed API calls 0"
    assert logs.err == []


def test_finished_pods_go_some_time_after_they_finished(kube: FakeKube) -> None:
    kube.add_pod("done", created=NOW - HOUR, phase="Succeeded", finished=[NOW - 20 * MINUTE])
    # Created long ago, finished just now: the finish time counts, not the creation.
    kube.add_pod(
        "just-failed",
        created=NOW - 3 * HOUR,
        phase="Failed",
        finished=[NOW - 2 * HOUR, NOW - 5 * MINUTE],
    )
    # Without container finish times the creation time counts.
    kube.add_pod("no-status", created=NOW - 20 * MINUTE, phase="Succeeded")
    kube.add_pod("fresh", created=NOW - 10 * MINUTE, phase="Failed")
    logs = Logs()

    assert _run(kube, logs=logs) == 0

    assert _deleted(kube) == [_pod_path("done"), _pod_path("no-status")]
    assert "Succeeded 20m00s ago (limit 15m00s)" in logs.out[0]


def test_stuck_terminating_pods_are_force_deleted(kube: FakeKube) -> None:
    stuck = kube.add_pod("stuck", created=NOW - HOUR, deletion=NOW - 11 * MINUTE)
    # Old, but its deletion is recent: it is not deleted again (nor forced yet).
    kube.add_pod("leaving", created=NOW - 5 * HOUR, deletion=NOW - 9 * MINUTE)
    # deletionTimestamp is the end of the grace period: still in the future here.
    kube.add_pod("graceful", created=NOW - 5 * HOUR, deletion=NOW + 20 * MINUTE)
    logs = Logs()

    assert _run(kube, logs=logs) == 0

    (delete,) = kube.deletes()
    assert delete.path == _pod_path("stuck")
    assert delete.body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": stuck["metadata"]["uid"]},
        "gracePeriodSeconds": 0,
    }
    assert logs.out[0] == (
        f"pod {JOBS}/stuck: force-deleted (age 1h00m; still terminating 11m00s after its grace "
        "period ended (limit 10m00s))"
    )


def test_lists_are_read_page_by_page(kube: FakeKube) -> None:
    for i in range(5):
        kube.add_pod(f"old-{i}", created=NOW - 5 * HOUR)

    assert _run(kube, _spec(job_namespaces=(JOBS,)), page_size=2) == 0

    pages = [query for path, query in kube.lists()]
    assert [q["limit"] for q in pages] == [["2"], ["2"], ["2"]]
    assert [q.get("continue") for q in pages] == [None, ["2"], ["4"]]
    assert _deleted(kube) == [_pod_path(f"old-{i}") for i in range(5)]


def test_pods_are_selected_by_the_job_pod_labels(kube: FakeKube) -> None:
    kube.add_pod("job", created=NOW - 5 * HOUR)
    kube.add_pod("manager", created=NOW - 5 * HOUR, labels={"app": "gitlab-runner"})
    kube.add_pod(
        "other-component",
        created=NOW - 5 * HOUR,
        labels={**JOB_LABELS, "app.kubernetes.io/component": "runner-manager"},
    )

    assert _run(kube) == 0

    assert _deleted(kube) == [_pod_path("job")]
    for path, query in kube.lists():
        assert path in (f"/api/v1/namespaces/{JOBS}/pods", f"/api/v1/namespaces/{DIND}/pods")
        assert query["labelSelector"] == [job_pod_selector()]
        assert "fieldSelector" not in query


def test_a_replaced_pod_is_kept(kube: FakeKube) -> None:
    kube.add_pod("reused-name", created=NOW - 5 * HOUR)
    kube.replace_before_delete.add("reused-name")
    logs = Logs()

    assert _run(kube, logs=logs) == 0

    assert (JOBS, "reused-name") in kube.pods
    assert logs.out[0].startswith(f"pod {JOBS}/reused-name: replaced since listed, kept")
    assert logs.err == []


def test_a_pod_gone_before_its_delete_is_fine(kube: FakeKube) -> None:
    kube.add_pod("gone", created=NOW - 5 * HOUR)
    kube.vanish_before_delete.add("gone")
    logs = Logs()

    assert _run(kube, logs=logs) == 0

    assert logs.out[0].startswith(f"pod {JOBS}/gone: already gone")
    assert logs.err == []


def test_api_errors_fail_the_run_after_everything_else_was_done(kube: FakeKube) -> None:
    kube.add_pod("a", created=NOW - 5 * HOUR)
    kube.add_pod("b", created=NOW - 5 * HOUR)
    kube.add_pod("c", namespace=DIND, created=NOW - 5 * HOUR)
    kube.fail[("DELETE", _pod_path("a"))] = 500
    kube.fail[("GET", f"/api/v1/namespaces/{DIND}/pods")] = 403
    logs = Logs()

    assert _run(kube, logs=logs) == 1

    assert _deleted(kube) == [_pod_path("a"), _pod_path("b")]
    assert (JOBS, "b") not in kube.pods
    assert logs.err == [
        f"FAILED: deleting pod {JOBS}/a failed: HTTP 500: injected failure 500",
        f"FAILED: listing /api/v1/namespaces/{DIND}/pods failed: HTTP 403: injected failure 403",
    ]
    assert logs.out[-1].endswith("failed API calls 2")


def test_an_unreachable_api_fails_the_run() -> None:
    closed = FakeKube()  # never started: nothing listens on its port
    logs = Logs()

    assert _run(closed, logs=logs) == 1

    assert len(logs.err) == 2
    assert all("Kubernetes API unreachable" in line for line in logs.err)


def test_per_job_namespaces_are_matched_by_prefix_and_digits(kube: FakeKube) -> None:
    old = NOW - 5 * HOUR
    leaked = kube.add_namespace("ci-job-123", created=old)
    kube.add_namespace("ci-job-124", created=NOW - HOUR)
    kube.add_namespace("ci-job-9", created=old, deletion=NOW - HOUR)
    for name in (
        "ci-job-",
        "ci-job-abc",
        "ci-job-1x",
        "ci-job-12-3",
        "xci-job-1",
        "ci-jobs-1",
        JOBS,
        "kube-system",
    ):
        kube.add_namespace(name, created=old)
    logs = Logs()

    assert _run(kube, _spec(namespace_prefix="ci-job-"), logs=logs) == 0

    (delete,) = kube.deletes()
    assert delete.path == "/api/v1/namespaces/ci-job-123"
    assert delete.body["preconditions"] == {"uid": leaked["metadata"]["uid"]}
    assert "gracePeriodSeconds" not in delete.body
    namespace_lists = [q for path, q in kube.lists() if path == "/api/v1/namespaces"]
    assert len(namespace_lists) == 1
    assert "labelSelector" not in namespace_lists[0]
    assert logs.out[0] == (
        "namespace ci-job-123: deleted (age 5h00m; per-job namespace older than the max age 4h00m)"
    )
    assert logs.out[-1] == (
        "summary: namespaces deleted 1, namespaces matched 3, pods matched 0; failed API calls 0"
    )


def test_namespaces_are_not_listed_without_namespace_per_job(kube: FakeKube) -> None:
    kube.add_namespace("ci-job-1", created=NOW - 5 * HOUR)

    assert _run(kube) == 0

    assert all(path != "/api/v1/namespaces" for path, _ in kube.lists())
    assert kube.deletes() == []


def test_dry_run_deletes_nothing(kube: FakeKube) -> None:
    kube.add_pod("old", created=NOW - 5 * HOUR)
    kube.add_pod("stuck", created=NOW - HOUR, deletion=NOW - HOUR)
    kube.add_namespace("ci-job-1", created=NOW - 5 * HOUR)
    logs = Logs()

    assert _run(kube, _spec(namespace_prefix="ci-job-"), logs=logs, dry_run=True) == 0

    assert kube.deletes() == []
    assert [line.split(" (")[0] for line in logs.out[:-1]] == [
        f"pod {JOBS}/old: would delete",
        f"pod {JOBS}/stuck: would force-delete",
        "namespace ci-job-1: would delete",
    ]
    assert logs.out[-1].startswith("summary (dry run: nothing deleted): ")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (3599, "59m59s"), (7500, "2h05m"), (90000, "1d01h")],
)
def test_durations_read_well(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# --------------------------------------------------------------------------------------------
# The script: command line


def _write_spec(tmp_path: Path, **overrides: Any) -> Path:
    spec = {
        "job_namespaces": [JOBS],
        "label_selector": job_pod_selector(),
        "max_age_seconds": 4 * HOUR,
        "finished_after_seconds": 900,
        "stuck_terminating_seconds": 600,
        "namespace_per_job": None,
        **overrides,
    }
    path = tmp_path / "cleanup.json"
    path.write_text(json.dumps(spec))
    return path


def _cli(kube: FakeKube, tmp_path: Path, *extra: str, **spec: Any) -> int:
    (tmp_path / "sa-token").write_text(SA_TOKEN + "\n")
    return runner_cleanup.main(
        [
            str(_write_spec(tmp_path, **spec)),
            "--api-server",
            kube.url,
            "--sa-token-file",
            str(tmp_path / "sa-token"),
            *extra,
        ],
        now=lambda: NOW,
    )


def test_cli_uses_the_service_account_and_never_prints_its_token(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.add_pod("old", created=NOW - 5 * HOUR)
    kube.fail[("DELETE", _pod_path("old"))] = 401

    assert _cli(kube, tmp_path) == 1

    assert kube.requests
    assert all(r.headers["Authorization"] == f"Bearer {SA_TOKEN}" for r in kube.requests)
    captured = capsys.readouterr()
    assert "FAILED: deleting pod gitlab-runner-jobs/old failed: HTTP 401" in captured.err
    for text in (captured.out, captured.err):
        assert SA_TOKEN not in text
        assert "Bearer" not in text


def test_cli_dry_run(kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kube.add_pod("old", created=NOW - 5 * HOUR)

    assert _cli(kube, tmp_path, "--dry-run") == 0

    assert kube.deletes() == []
    assert f"pod {JOBS}/old: would delete" in capsys.readouterr().out


def test_cli_outside_a_pod_needs_api_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = runner_cleanup.main([str(_write_spec(tmp_path))], environ={})

    assert code == 2
    assert "pass --api-server" in capsys.readouterr().err


def test_invalid_spec_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _write_spec(
        tmp_path,
        job_namespaces=["Bad_NS"],
        label_selector=" ",
        max_age_seconds=600,
        finished_after_seconds=900,
        stuck_terminating_seconds=True,
        namespace_per_job={"prefix": "-x"},
        extra=1,
    )

    assert runner_cleanup.main([str(spec), "--api-server", "http://127.0.0.1:1"]) == 2

    err = capsys.readouterr().err
    for problem in (
        "unknown key 'extra'",
        "job_namespaces: 'Bad_NS' is not a namespace name",
        "label_selector must be a non-empty string",
        "stuck_terminating_seconds must be a positive integer (got True)",
        "finished_after_seconds must not exceed max_age_seconds",
        "namespace_per_job.prefix '-x' is not a namespace name prefix",
    ):
        assert problem in err


def test_shipped_script_runs_alone_on_a_bare_interpreter(kube: FakeKube, tmp_path: Path) -> None:
    """As in the pod: ``python3 runner_cleanup.py`` as the ConfigMap ships it, on its own."""
    now = time.time()  # the subprocess reads the real clock
    kube.add_pod("old", created=now - 5 * HOUR)
    kube.add_pod("young", created=now - MINUTE)
    (tmp_path / "sa-token").write_text(SA_TOKEN)
    spec = str(_write_spec(tmp_path))
    args = [spec, "--api-server", kube.url, "--sa-token-file", "sa-token"]

    result = run_shipped(cleanup_script(), "runner_cleanup.py", args, tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"pod {JOBS}/old: deleted" in result.stdout
    assert _deleted(kube) == [_pod_path("old")]
    assert SA_TOKEN not in result.stdout + result.stderr
    assert {r.headers["User-Agent"] for r in kube.requests} == {"attic-iac-runner-cleanup"}


# --------------------------------------------------------------------------------------------
# The construct


def _props(**overrides: Any) -> RunnerJobCleanupProps:
    values: dict[str, Any] = {
        "namespace": "gitlab-runners",
        "job_namespaces": [JOBS, DIND],
        "max_age_seconds": 4 * HOUR,
        **overrides,
    }
    return RunnerJobCleanupProps(**values)


def _synth(**overrides: Any) -> tuple[RunnerJobCleanup, dict[str, Any]]:
    stack = TerraformStack(CdktfTesting.app(), "test")
    cleanup = RunnerJobCleanup(stack, "Cleanup", _props(**overrides))
    return cleanup, json.loads(CdktfTesting.synth(stack))


def _one(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = list(resources(doc, rtype).values())
    assert len(found) == 1, f"expected one {rtype}, got {len(found)}"
    return found[0]


def _manifest(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [
        item["manifest"]
        for item in resources(doc, "kubernetes_manifest").values()
        if item["manifest"]["kind"] == kind
    ]
    return dict(found)


def test_roles_allow_exactly_get_list_delete_on_pods_in_each_job_namespace() -> None:
    _, doc = _synth()
    roles = {r["metadata"]["namespace"]: r for r in resources(doc, "kubernetes_role_v1").values()}
    assert set(roles) == {JOBS, DIND}
    for role in roles.values():
        assert role["rule"] == [
            {"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}
        ]
    bindings = resources(doc, "kubernetes_role_binding_v1").values()
    assert {b["metadata"]["namespace"] for b in bindings} == {JOBS, DIND}
    for binding in bindings:
        assert binding["role_ref"] == {
            "api_group": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "runner-cleanup",
        }
        (subject,) = binding["subject"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["namespace"] == "gitlab-runners"
        assert subject["name"].startswith("${kubernetes_service_account_v1.Cleanup_ServiceAccount")


def test_nothing_cluster_wide_without_namespace_per_job() -> None:
    _, doc = _synth()
    for rtype in (
        "kubernetes_cluster_role_v1",
        "kubernetes_cluster_role_binding_v1",
        "kubernetes_manifest",
    ):
        assert resources(doc, rtype) == {}, rtype


def test_namespace_per_job_adds_namespace_rights_narrowed_by_an_admission_policy() -> None:
    _, doc = _synth(namespace_per_job_prefix=RUNNER_NAMESPACE_PER_JOB_PREFIX)
    role = _one(doc, "kubernetes_cluster_role_v1")
    assert role["rule"] == [
        {"api_groups": [""], "resources": ["namespaces"], "verbs": ["list", "delete"]}
    ]
    binding = _one(doc, "kubernetes_cluster_role_binding_v1")
    assert binding["role_ref"]["name"] == role["metadata"]["name"]
    (subject,) = binding["subject"]
    assert subject["namespace"] == "gitlab-runners"
    # The policy is in force before the permission it narrows is granted.
    assert any("AdmissionPolicyBinding" in d for d in binding["depends_on"])

    policy = _manifest(doc, "ValidatingAdmissionPolicy")
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["DELETE"],
            "resources": ["namespaces"],
        }
    ]
    (match,) = spec["matchConditions"]
    assert match["expression"].startswith(
        "request.userInfo.username == 'system:serviceaccount:gitlab-runners:"
        "${kubernetes_service_account_v1.Cleanup_ServiceAccount"
    )
    (validation,) = spec["validations"]
    found = re.fullmatch(r"request\.name\.matches\('([^'\\]*)'\)", validation["expression"])
    assert found is not None, validation["expression"]
    # CEL's matches() finds the pattern anywhere (RE2), like re.search: the anchors matter.
    pattern = found.group(1)
    for name in ("ci-job-1", "ci-job-123456789"):
        assert re.search(pattern, name), name
    for name in ("kube-system", "gitlab-runners", "ci-job-", "ci-job-1x", "xci-job-1", "ci-job-a"):
        assert not re.search(pattern, name), name
    policy_binding = _manifest(doc, "ValidatingAdmissionPolicyBinding")
    assert policy_binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }


def test_cronjob_is_hardened() -> None:
    cleanup, doc = _synth()
    cron = _one(doc, "kubernetes_cron_job_v1")
    spec = cron["spec"]
    assert spec["schedule"] == "*/10 * * * *"
    assert spec["concurrency_policy"] == "Forbid"
    assert spec["starting_deadline_seconds"] > 0
    assert spec["successful_jobs_history_limit"] >= 1
    assert spec["failed_jobs_history_limit"] >= 1
    job = spec["job_template"]["spec"]
    assert job["backoff_limit"] in (0, 1)
    assert int(job["ttl_seconds_after_finished"]) > 0
    assert 0 < job["active_deadline_seconds"] < 10 * MINUTE
    pod = job["template"]["spec"]
    assert pod["automount_service_account_token"] is True
    assert pod["service_account_name"].startswith(
        "${kubernetes_service_account_v1.Cleanup_ServiceAccount"
    )
    assert pod["enable_service_links"] is False
    assert pod["restart_policy"] == "Never"
    assert pod["security_context"]["run_as_non_root"] is True
    assert pod["security_context"]["seccomp_profile"] == {"type": "RuntimeDefault"}
    (container,) = pod["container"]
    context = container["security_context"]
    assert context["run_as_non_root"] is True
    assert context["read_only_root_filesystem"] is True
    assert context["allow_privilege_escalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccomp_profile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert all(m["read_only"] is True for m in container["volume_mount"])
    assert container["command"] == [
        "python3",
        "/opt/runner-cleanup/runner_cleanup.py",
        "/opt/runner-cleanup/cleanup.json",
    ]
    assert job["template"]["metadata"]["labels"] == cleanup.labels
    account = _one(doc, "kubernetes_service_account_v1")
    assert account["automount_service_account_token"] is False
    assert account["metadata"]["name"] == cleanup.service_account_name


def test_cleanup_pods_are_not_job_pods() -> None:
    cleanup, _ = _synth()
    assert not JOB_POD_LABELS.items() <= cleanup.labels.items()


def test_config_map_ships_the_script_and_a_spec_it_accepts() -> None:
    _, doc = _synth(
        namespace_per_job_prefix="ci-job-", finished_after_seconds=1200, max_age_seconds=7200
    )
    data = _one(doc, "kubernetes_config_map_v1")["data"]
    assert data["runner_cleanup.py"] == cleanup_script()
    spec = parse_spec(json.loads(data["cleanup.json"]))
    assert spec == Spec(
        job_namespaces=(JOBS, DIND),
        label_selector=job_pod_selector(),
        max_age_seconds=7200,
        finished_after_seconds=1200,
        stuck_terminating_seconds=600,
        namespace_prefix="ci-job-",
    )
    _, plain = _synth()
    plain_spec = json.loads(_one(plain, "kubernetes_config_map_v1")["data"]["cleanup.json"])
    assert parse_spec(plain_spec).namespace_prefix is None


def test_invalid_props_are_reported_together() -> None:
    with pytest.raises(PropsError) as info:
        RunnerJobCleanup(
            TerraformStack(CdktfTesting.app(), "t"),
            "Cleanup",
            _props(
                namespace="Runners",
                job_namespaces=[],
                schedule="@hourly",
                max_age_seconds=600,
                finished_after_seconds=900,
                stuck_terminating_seconds=0,
                namespace_per_job_prefix="CI_",
            ),
        )
    problems = "\n".join(info.value.problems)
    for expected in (
        "namespace: 'Runners' is not a valid Kubernetes name",
        "job_namespaces: at least one namespace is needed",
        "schedule: '@hourly' must have 5 cron fields",
        "stuck_terminating_seconds: must be a positive number of seconds (got 0)",
        "finished_after_seconds: 900 exceeds max_age_seconds 600",
        "namespace_per_job_prefix: 'CI_' is not the start of a Kubernetes name",
    ):
        assert expected in problems
    assert len(info.value.problems) == 6


def test_a_prefix_that_matches_a_managed_namespace_is_rejected() -> None:
    with pytest.raises(PropsError) as info:
        _synth(namespace="ops-1", job_namespaces=["jobs", "jobs-2"], namespace_per_job_prefix="")
    assert "namespace_per_job_prefix: '' is not the start" in str(info.value)
    with pytest.raises(PropsError) as info:
        _synth(
            namespace="ops-1", job_namespaces=["jobs", "jobs-2"], namespace_per_job_prefix="ops-"
        )
    assert info.value.problems == [
        "namespace_per_job_prefix: 'ops-' would match namespace 'ops-1', which the cleanup would "
        "then delete"
    ]
    with pytest.raises(PropsError, match="job_namespaces: 'jobs' is listed twice"):
        _synth(job_namespaces=["jobs", "jobs"])
