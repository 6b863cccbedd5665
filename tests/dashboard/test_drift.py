"""Drift against live state built from what the stacks really declare: none when the cluster
and GitLab hold exactly that, one item per changed live value, a problem for an invalid
desired config."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG
from config_model.organization import OrganizationConfig
from constructs_lib.attic.attic_server import AtticServerProps
from constructs_lib.runners.labels import DESIRED_ANNOTATION, RUNNER_TYPE_LABEL
from dashboard import drift
from dashboard.drift import DriftMonitor, load_desired, run_desired, run_drift
from dashboard.gitlab_client import GitLabError, RepositoryFile
from dashboard.model import Deployment, EnvironmentState, Hpa, Runner, SourceHealth
from dashboard.observability import Metrics
from dashboard.store import FleetStore
from tests.support.synth_output import SynthOutput, helm_releases, namespace_name, resources

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TEXT = EXAMPLE_CONFIG.read_text()
NAME = Path("config/organization.yaml")
_NS_REF = re.compile(r"\$\{kubernetes_namespace_v1\.[A-Za-z0-9_]+\.metadata\[0\]\.name\}")


def _resolve(doc: dict[str, Any], text: str) -> str:
    return _NS_REF.sub(lambda m: namespace_name(doc, m.group(0)), text)


def declared_deployments(doc: dict[str, Any]) -> tuple[Deployment, ...]:
    """Each manager Deployment as the chart renders it from the release the stack declares."""
    found = []
    for release in helm_releases(doc).values():
        values = yaml.safe_load(release["values"][0])
        image = values["image"]
        found.append(
            Deployment(
                namespace=namespace_name(doc, release["namespace"]),
                name=release["name"],
                runner_type=values["podLabels"][RUNNER_TYPE_LABEL],
                replicas=values["replicas"],
                ready=values["replicas"],
                available=values["replicas"],
                updated=values["replicas"],
                labels={"chart": f"{release['chart']}-{release['version']}"},
                annotations={
                    k: _resolve(doc, v) for k, v in values["deploymentAnnotations"].items()
                },
                images=(f"{image['registry']}/{image['image']}:{image['tag']}",),
            )
        )
    return tuple(found)


def declared_runners(doc: dict[str, Any]) -> tuple[Runner, ...]:
    """The runner records the GitLab provider creates."""
    return tuple(
        Runner(
            id=index,
            description=runner["description"],
            runner_type=None,
            status="online",
            paused=runner["paused"],
            tags=tuple(runner["tag_list"]),
            version="19.3.1",
            contacted_at=T0,
            running_jobs=0,
            ip_address=None,
            run_untagged=runner["untagged"],
            locked=runner["locked"],
            access_level=runner["access_level"],
            maximum_timeout=runner["maximum_timeout"],
        )
        for index, runner in enumerate(resources(doc, "gitlab_user_runner").values(), start=1)
    )


def declared_hpas(doc: dict[str, Any]) -> tuple[Hpa, ...]:
    found = []
    for hpa in resources(doc, "kubernetes_horizontal_pod_autoscaler_v2").values():
        spec = hpa["spec"]
        found.append(
            Hpa(
                namespace=namespace_name(doc, hpa["metadata"]["namespace"]),
                name=hpa["metadata"]["name"],
                current=spec["min_replicas"],
                desired=spec["min_replicas"],
                min=spec["min_replicas"],
                max=spec["max_replicas"],
                target="cpu",
            )
        )
    return tuple(found)


def healthy(name: str) -> SourceHealth:
    return SourceHealth(
        name=name,  # type: ignore[arg-type]
        configured=True,
        ok=True,
        failing_since=None,
        last_error=None,
        last_success=T0,
    )


def live_state(synth: SynthOutput, env: str) -> EnvironmentState:
    runners, attic = synth.stack(f"runners-{env}"), synth.stack(f"attic-{env}")
    return EnvironmentState(
        environment=env,
        runners=declared_runners(runners),
        jobs=(),
        deployments=declared_deployments(runners),
        pods=(),
        hpas=declared_hpas(attic),
        events=(),
        type_metrics={},
        scaling_series={},
        cache=None,
        sources={name: healthy(name) for name in ("gitlab", "kubernetes", "prometheus")},
        version=1,
        updated_at=T0,
    )


METRICS = Metrics()


def monitor_for(env: str, clock=lambda: T0) -> DriftMonitor:
    return DriftMonitor(environment=env, gauge=METRICS.drift_items, clock=clock)


def report_for(state: EnvironmentState, text: str = TEXT, env: str = "dev"):
    monitor = monitor_for(env)
    monitor.set_desired(load_desired(text, path=NAME, environment=env, revision="abc123"))
    return monitor.report(state)


def replace_one(items: tuple, match, **changes) -> tuple:
    (index,) = [i for i, item in enumerate(items) if match(item)]
    return (*items[:index], dataclasses.replace(items[index], **changes), *items[index + 1 :])


def fields(report) -> list[tuple[str, str, str, str, str]]:
    return [(i.kind, i.object, i.field, i.desired, i.live) for i in report.items]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_no_drift_when_live_is_what_the_stacks_declare(example_synth, env):
    state = live_state(example_synth, env)

    report = report_for(state, env=env)

    assert report.items == ()
    assert report.problems == ()
    assert report.unchecked == ()
    assert report.revision == "abc123"
    # The comparison really covered the fleet: six managers, six runners, the API HPA.
    assert len(state.deployments) == 6
    assert len(state.runners) == 6
    assert [h.name for h in state.hpas if h.name == drift.ATTIC_API_NAME] == ["attic"]


def test_manager_replicas_changed(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        deployments=replace_one(state.deployments, lambda d: d.runner_type == "docker", replicas=3),
    )

    assert fields(report_for(state)) == [
        (
            "runner_manager",
            "Deployment gitlab-runners/gitlab-runner-docker",
            "replicas",
            "1",
            "3",
        )
    ]


def test_a_runner_tag_changed(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        runners=replace_one(
            state.runners, lambda r: r.description == "acme dev nix", tags=("nix", "gpu")
        ),
    )

    ((kind, obj, field, desired, live),) = fields(report_for(state))
    assert (kind, field, desired, live) == ("gitlab_runner", "tags", "nix", "gpu, nix")
    assert obj.endswith("'acme dev nix'")


def test_a_paused_runner(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        runners=replace_one(
            state.runners, lambda r: r.description == "acme dev rocky9", paused=True
        ),
    )

    ((kind, _, field, desired, live),) = fields(report_for(state))
    assert (kind, field, desired, live) == ("gitlab_runner", "paused", "false", "true")


def test_a_chart_version_changed(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        deployments=replace_one(
            state.deployments,
            lambda d: d.runner_type == "dind",
            labels={"chart": "gitlab-runner-0.91.0"},
        ),
    )

    assert fields(report_for(state)) == [
        (
            "runner_manager",
            "Deployment gitlab-runners/gitlab-runner-dind",
            "chart",
            "gitlab-runner-0.92.0",
            "gitlab-runner-0.91.0",
        )
    ]


def test_an_image_changed(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        deployments=replace_one(
            state.deployments,
            lambda d: d.runner_type == "nix",
            images=("gitlab/gitlab-runner:latest",),
        ),
    )

    ((_, _, field, desired, live),) = fields(report_for(state))
    assert field == "image"
    assert live == "gitlab/gitlab-runner:latest"
    assert desired.startswith("docker.io/gitlab/gitlab-runner:alpine-v19.3.1@sha256:")


def test_a_merged_but_unapplied_change_is_drift(example_synth):
    state = live_state(example_synth, "dev")
    text = TEXT.replace("rocky8: {concurrent: 4}", "rocky8: {concurrent: 6, enabled: false}")

    assert sorted(fields(report_for(state, text))) == [
        ("gitlab_runner", "runner #5 'acme dev rocky8'", "registered", "false", "true"),
        (
            "runner_manager",
            "Deployment gitlab-runners/gitlab-runner-rocky8",
            "exists",
            "false",
            "true",
        ),
    ]
    text = TEXT.replace("rocky8: {concurrent: 4}", "rocky8: {concurrent: 6}")
    assert fields(report_for(state, text)) == [
        ("runner_manager", "Deployment gitlab-runners/gitlab-runner-rocky8", "concurrent", "6", "4")
    ]


def test_attic_api_bounds(example_synth):
    state = live_state(example_synth, "prod")
    state = dataclasses.replace(
        state, hpas=replace_one(state.hpas, lambda h: h.name == "attic", max=4)
    )

    assert fields(report_for(state, env="prod")) == [
        ("attic_api", "HorizontalPodAutoscaler attic/attic", "max_replicas", "10", "4")
    ]


def test_an_invalid_desired_config_is_a_problem_not_a_crash(example_synth):
    state = live_state(example_synth, "dev")
    text = TEXT.replace("rocky8: {concurrent: 4}", "rocky8: {concurrent: many}")

    line = text.splitlines().index("    rocky8: {concurrent: many}") + 1

    report = report_for(state, text)

    assert report.items == ()
    assert report.count == 1
    assert report.problems == (
        "runners.types.rocky8.concurrent: input should be a valid integer, unable to parse "
        f"string as an integer (got 'many') [config/organization.yaml:{line}]",
    )
    value = METRICS.registry.get_sample_value(
        "attic_iac_dashboard_drift_items", {"environment": "dev", "kind": "config"}
    )
    assert value == 1


def test_yaml_that_does_not_parse_is_a_problem_too(dev_config):
    report = report_for(live_state_empty(dev_config), "organization: [\n")

    assert report.problems
    assert report.problems[0].startswith("<file>: YAML syntax error")


def live_state_empty(config: OrganizationConfig) -> EnvironmentState:
    """The state a fresh store holds before any source has answered."""
    return FleetStore(environment="dev", config=config, clock=lambda: T0).state()


def test_a_source_without_data_is_not_compared(dev_config):
    report = report_for(live_state_empty(dev_config))

    assert report.items == ()
    assert report.unchecked == (
        "kubernetes: no data yet, its objects are not compared",
        "gitlab: no data yet, its objects are not compared",
    )


def test_a_deployment_without_the_stamp_is_noted_not_drift(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state,
        deployments=replace_one(
            state.deployments, lambda d: d.runner_type == "docker", annotations={}
        ),
    )

    report = report_for(state)

    assert report.items == ()
    assert report.unchecked == (
        "Deployment gitlab-runners/gitlab-runner-docker: no valid attic-iac.io/desired annotation "
        "(applied before the stacks stamped it): chart, image, concurrent and job namespace not "
        "compared",
    )


def test_since_is_when_the_item_first_appeared_and_the_metric_counts_by_kind(example_synth):
    now = [T0]
    monitor = monitor_for("staging", clock=lambda: now[0])
    monitor.set_desired(load_desired(TEXT, path=NAME, environment="staging", revision="r1"))
    good = live_state(example_synth, "staging")
    bad = dataclasses.replace(
        good,
        version=2,
        deployments=replace_one(good.deployments, lambda d: d.runner_type == "docker", replicas=0),
    )

    assert monitor.report(bad).items[0].since == T0
    now[0] = T0 + timedelta(minutes=5)
    assert monitor.report(dataclasses.replace(bad, version=3)).items[0].since == T0
    assert (
        METRICS.registry.get_sample_value(
            "attic_iac_dashboard_drift_items", {"environment": "staging", "kind": "runner_manager"}
        )
        == 1
    )
    assert monitor.report(dataclasses.replace(good, version=4)).items == ()
    now[0] = T0 + timedelta(minutes=9)
    assert monitor.report(dataclasses.replace(bad, version=5)).items[0].since == now[0]


def test_the_report_as_json(example_synth):
    state = live_state(example_synth, "dev")
    state = dataclasses.replace(
        state, hpas=replace_one(state.hpas, lambda h: h.name == "attic", min=2)
    )

    assert report_for(state).to_json() == {
        "environment": "dev",
        "revision": "abc123",
        "checked_at": T0.isoformat(),
        "count": 1,
        "compared": True,
        "items": [
            {
                "kind": "attic_api",
                "object": "HorizontalPodAutoscaler attic/attic",
                "field": "min_replicas",
                "desired": "1",
                "live": "2",
                "since": T0.isoformat(),
            }
        ],
        "problems": [],
        "unchecked": [],
    }


def test_the_dashboards_copies_of_library_constants():
    assert drift.DESIRED_ANNOTATION == DESIRED_ANNOTATION
    assert AtticServerProps.__dataclass_fields__["name"].default == drift.ATTIC_API_NAME


class FileSource:
    """Answers GET .../repository/files like GitLab, from a list of (content, blob) or errors."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    async def file(self, project, path, *, ref):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        content, blob = answer
        return RepositoryFile(
            path=path, ref=ref, content=content, blob_id=blob, commit_id="c", last_commit_id=blob
        )


def test_the_desired_config_is_read_from_the_default_branch_and_reread_on_change():
    monitor = monitor_for("dev")
    source = FileSource(
        [
            (TEXT, "b1"),
            GitLabError(503, "GET /projects/x/repository/files/y: 503 Service Unavailable"),
            (TEXT, "b1"),
            (TEXT.replace("max_replicas: 3}", "max_replicas: 4}"), "b2"),
        ]
    )
    seen: list[tuple] = []

    async def sleep(_seconds):
        assert monitor.desired is not None
        seen.append((monitor.desired.revision, monitor.desired_error))
        if not source.answers:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(
            run_desired(
                monitor,
                source,  # type: ignore[arg-type]
                project="infra/config",
                path="config/organization.yaml",
                branch="main",
                interval=30,
                sleep=sleep,
            )
        )

    assert seen == [
        ("b1", None),
        ("b1", "GET /projects/x/repository/files/y: 503 Service Unavailable"),
        ("b1", None),
        ("b2", None),
    ]
    assert monitor.desired is not None
    assert monitor.desired.facts is not None
    assert monitor.desired.facts.attic_max_replicas == 4


def test_drift_is_recomputed_on_its_own_so_the_gauge_moves_without_viewers(example_synth):
    monitor = monitor_for("prod")
    monitor.set_desired(load_desired(TEXT, path=NAME, environment="prod", revision="r"))
    good = live_state(example_synth, "prod")
    bad = dataclasses.replace(
        good, version=2, hpas=replace_one(good.hpas, lambda h: h.name == "attic", max=4)
    )
    states = iter([good, bad])
    seen: list[float | None] = []

    def sample() -> float | None:
        return METRICS.registry.get_sample_value(
            "attic_iac_dashboard_drift_items", {"environment": "prod", "kind": "attic_api"}
        )

    async def sleep(_seconds):
        seen.append(sample())
        if len(seen) == 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run_drift(monitor, lambda: next(states), interval=30, sleep=sleep))

    assert seen == [0, 1]
