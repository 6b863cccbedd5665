"""The fake Kubernetes API: lists with resource versions, watches that stream events from a
version, bookmarks, 410 Expired after compaction, token and RBAC checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dashboard.fakes import k8s_objects as k8s
from dashboard.fakes.kubernetes import FakeKubernetes
from dashboard.fakes.serve import serve_in_thread

TOKEN = "sa-token"
PODS = "/api/v1/namespaces/ci/pods"


@pytest.fixture
def fake() -> FakeKubernetes:
    kube = FakeKubernetes(
        token=TOKEN,
        rbac={"pods": ["ci"], "deployments": ["ci"], "horizontalpodautoscalers": ["ci"]},
        bookmark_interval=0.2,
    )
    kube.put("pods", k8s.pod("ci", "a", labels={"role": "job"}))
    kube.put("pods", k8s.pod("ci", "b", labels={"role": "manager"}))
    return kube


@pytest.fixture
def api(fake: FakeKubernetes) -> Iterator[httpx.Client]:
    url, stop = serve_in_thread(fake.build_app())
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ) as client:
        yield client
    fake.close_watches()
    stop()


def events(response: httpx.Response, count: int) -> list[dict]:
    lines = response.iter_lines()
    return [json.loads(next(lines)) for _ in range(count)]


def test_list_has_the_kind_version_and_items(api):
    listed = api.get(PODS, params={"labelSelector": "role in (job,other)"}).json()
    assert listed["kind"] == "PodList"
    assert listed["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in listed["items"]] == ["a"]
    assert int(listed["metadata"]["resourceVersion"]) >= 3


def test_watch_streams_changes_after_the_version(api, fake):
    version = api.get(PODS).json()["metadata"]["resourceVersion"]
    with api.stream("GET", PODS, params={"watch": "1", "resourceVersion": version}) as watch:
        fake.put("pods", k8s.pod("ci", "c"))
        fake.put("pods", k8s.pod("ci", "c", phase="Succeeded"))
        fake.delete("pods", "ci", "a")
        seen = events(watch, 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "c"),
        ("MODIFIED", "c"),
        ("DELETED", "a"),
    ]
    assert seen[1]["object"]["status"]["phase"] == "Succeeded"
    assert seen[1]["object"]["kind"] == "Pod"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions)
    assert versions[0] > int(version)


def test_watch_replays_what_happened_since_an_older_version(api, fake):
    version = api.get(PODS).json()["metadata"]["resourceVersion"]
    fake.put("pods", k8s.pod("ci", "late"))
    with api.stream("GET", PODS, params={"watch": "true", "resourceVersion": version}) as watch:
        assert events(watch, 1)[0]["object"]["metadata"]["name"] == "late"


def test_watch_without_a_version_starts_with_every_object(api):
    with api.stream("GET", PODS, params={"watch": "1"}) as watch:
        seen = events(watch, 2)
    assert {(e["type"], e["object"]["metadata"]["name"]) for e in seen} == {
        ("ADDED", "a"),
        ("ADDED", "b"),
    }


def test_a_selected_object_leaving_the_selection_is_deleted_for_the_watch(api, fake):
    params = {"watch": "1", "resourceVersion": "0", "labelSelector": "role=job"}
    with api.stream("GET", PODS, params=params) as watch:
        fake.put("pods", k8s.pod("ci", "a", labels={"role": "done"}))
        seen = events(watch, 2)
    assert [e["type"] for e in seen] == ["ADDED", "DELETED"]


def test_bookmarks_carry_the_current_version(api, fake):
    params = {"watch": "1", "resourceVersion": str(fake.resource_version)}
    with api.stream("GET", PODS, params={**params, "allowWatchBookmarks": "true"}) as watch:
        bookmark = events(watch, 1)[0]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"] == {"resourceVersion": str(fake.resource_version)}


def test_compaction_expires_open_watches_and_old_versions(api, fake):
    old = str(fake.resource_version)
    with api.stream("GET", PODS, params={"watch": "1", "resourceVersion": old}) as watch:
        fake.put("pods", k8s.pod("ci", "c"))
        fake.compact()
        seen = events(watch, 2)
    assert seen[0]["type"] == "ADDED"
    assert seen[1]["type"] == "ERROR"
    assert seen[1]["object"]["code"] == 410
    assert seen[1]["object"]["reason"] == "Expired"
    with api.stream("GET", PODS, params={"watch": "1", "resourceVersion": old}) as watch:
        assert watch.status_code == 200
        assert events(watch, 1)[0]["object"]["message"].startswith("too old resource version")


def test_a_watch_ends_at_its_timeout(api):
    with api.stream("GET", PODS, params={"watch": "1", "timeoutSeconds": "0.3"}) as watch:
        assert len(list(watch.iter_lines())) == 2


def test_other_api_groups_and_single_objects(api, fake):
    fake.put("deployments", k8s.deployment("ci", "runner", replicas=2, ready=1))
    path = "/apis/apps/v1/namespaces/ci/deployments"
    assert api.get(path).json()["kind"] == "DeploymentList"
    single = api.get(f"{path}/runner").json()
    assert single["status"]["readyReplicas"] == 1
    assert api.get(f"{path}/missing").status_code == 404
    assert api.get("/api/v1/namespaces/ci/deployments").status_code == 404


def test_token_and_rbac_are_checked(api):
    assert api.get(PODS, headers={"Authorization": "Bearer wrong"}).status_code == 401
    forbidden = api.get("/api/v1/namespaces/kube-system/pods")
    assert forbidden.status_code == 403
    assert forbidden.json()["reason"] == "Forbidden"
    assert 'in the namespace "kube-system"' in forbidden.json()["message"]
    assert api.get("/api/v1/namespaces/ci/configmaps").status_code == 403


def test_injected_failures(api, fake):
    fake.fail_next(1)
    assert api.get(PODS).status_code == 503
    assert api.get(PODS).status_code == 200
    fake.set_outage(True)
    assert api.get(PODS).json()["code"] == 503
    fake.set_outage(False)
    assert api.get(PODS).status_code == 200
