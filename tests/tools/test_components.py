"""The GitLab CI/CD components (templates/*/template.yml): current with their generator, valid
against GitLab's CI schema once inputs are interpolated as GitLab does, with pinned images,
and documented in templates/README.md. Each component's scripts run for real in a test module
of its own (test_component_nix_build.py, test_component_docker_build.py,
test_component_k8s_deploy.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from constructs_lib import versions
from iac_tools.ci_components import components, main, render, stale, write
from tests.conftest import REPO
from tests.support.component_templates import (
    EXAMPLES,
    INPUT,
    NAMES,
    documents,
    jobs_of,
    spec_of,
    visible,
)
from tests.support.gitlab_ci import resolve_extends


@pytest.fixture(scope="module")
def ci_schema(refdata: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((refdata / "gitlab" / "ci.json").read_text())
    return schema


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(instance)
    ]


# --------------------------------------------------------------------------------------------
# Generated, and current


def test_the_committed_templates_are_the_generated_ones() -> None:
    assert [c.name for c in components()] == list(NAMES)
    assert stale() == []
    for component in components():
        assert (REPO / component.path).read_text() == render(component)
    assert main(["--check"]) == 0


def test_check_notices_a_hand_edit_and_write_repairs_it(tmp_path: Path) -> None:
    assert main(["--write", "--root", str(tmp_path)]) == 0
    assert stale(tmp_path) == []
    edited = tmp_path / "templates" / "k8s-deploy" / "template.yml"
    edited.write_text(edited.read_text().replace("--server-side", "--client-side"))
    (tmp_path / "templates" / "nix-build" / "template.yml").unlink()

    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert sorted(p.parent.name for p in stale(tmp_path)) == ["k8s-deploy", "nix-build"]
    assert sorted(p.parent.name for p in write(tmp_path)) == sorted(NAMES)
    assert main(["--check", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_a_template_is_a_spec_header_then_jobs(name: str) -> None:
    text = (REPO / "templates" / name / "template.yml").read_text()
    docs = documents(name)
    assert len(docs) == 2
    assert list(docs[0]) == ["spec"]
    assert list(docs[0]["spec"]) == ["inputs"]
    # Only the jobs document follows the separator.
    assert text.count("\n---\n") == 1
    assert all(isinstance(job, dict) for job in docs[1].values())


def _scalars(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(key)
            yield from _scalars(value)


@pytest.mark.parametrize("name", NAMES)
def test_multi_line_strings_are_literal_blocks(name: str) -> None:
    text = (REPO / "templates" / name / "template.yml").read_text()
    multi_line = [
        node
        for document in yaml.compose_all(text)
        for node in _scalars(document)
        if "\n" in node.value
    ]
    assert multi_line
    assert {node.style for node in multi_line} == {"|"}


# --------------------------------------------------------------------------------------------
# GitLab's CI schema


@pytest.mark.parametrize("name", NAMES)
def test_header_validates_against_the_ci_schema(ci_schema: dict[str, Any], name: str) -> None:
    spec_schema = {**ci_schema["properties"]["spec"], "definitions": ci_schema["definitions"]}
    assert _errors(spec_schema, documents(name)[0]["spec"]) == []


INPUT_CASES = [
    ("nix-build", {}),
    ("nix-build", {"push": False, "runner_tags": ["nix", "large"], "job_name": "build:docs"}),
    ("docker-build", {}),
    ("docker-build", {"mode": "nix"}),
    (
        "docker-build",
        {"services": [{"name": versions.DOCKER_DIND_IMAGE.ref, "alias": "docker"}]},
    ),
    ("k8s-deploy", {}),
    ("k8s-deploy", {"force_conflicts": True, "rollout_selector": "app=web"}),
]


@pytest.mark.parametrize(("name", "inputs"), INPUT_CASES)
def test_jobs_validate_against_the_ci_schema(
    ci_schema: dict[str, Any], name: str, inputs: dict[str, Any]
) -> None:
    jobs = jobs_of(name, **inputs)

    assert _errors(ci_schema, jobs) == []
    for job_name in visible(jobs):
        job = resolve_extends(jobs, job_name)
        assert _errors(ci_schema, {job_name: job}) == []
        # GitLab takes only strings and integers as variable values (booleans are refused).
        bad = {k: v for k, v in job["variables"].items() if type(v) not in (str, int)}
        assert bad == {}


def test_the_schema_check_catches_a_bad_job(ci_schema: dict[str, Any]) -> None:
    jobs = jobs_of("nix-build")
    [job] = jobs.values()
    job["tags"] = []
    job["interruptible"] = "yes"
    assert len(_errors(ci_schema, jobs)) >= 2
    # An input left uninterpolated as the whole value is a string where an array belongs.
    raw = documents("nix-build")[1]
    assert any("tags" in e for e in _errors(ci_schema, raw))


@pytest.mark.parametrize("name", NAMES)
def test_every_input_is_declared_described_and_used(name: str) -> None:
    spec = spec_of(name)
    text = json.dumps(documents(name)[1])

    used = set(INPUT.findall(text))
    assert used == set(spec)
    for key, input_spec in spec.items():
        assert input_spec["description"], key
        assert input_spec["type"] in ("string", "boolean", "number", "array"), key
        if "default" in input_spec and "regex" in input_spec:
            assert re.search(input_spec["regex"], input_spec["default"]), key
    # No interpolation functions, nothing but plain input blocks.
    assert text.count("$[[") == len(INPUT.findall(text))


def test_input_regexes_reject_what_they_protect() -> None:
    nix, k8s = spec_of("nix-build"), spec_of("k8s-deploy")
    assert re.search(nix["cache"]["regex"], "team+dev")
    for bad in ("", "-ci", "ci cache", "a" * 51, "ci/../x"):
        assert not re.search(nix["cache"]["regex"], bad), bad
    for bad in ("ATTIC TOKEN", "1TOKEN", "X;rm -rf /", "$ATTIC_TOKEN"):
        assert not re.search(nix["token_variable"]["regex"], bad), bad
    assert re.search(nix["server"]["regex"], "http://attic.attic.svc:8080/")
    assert not re.search(nix["server"]["regex"], "attic.example.com")
    assert re.search(k8s["agent"]["regex"], "group/sub/agents:prod")
    assert not re.search(k8s["agent"]["regex"], "prod")
    assert not re.search(k8s["namespace"]["regex"], "Web_App")
    assert re.search(k8s["rollout_timeout"]["regex"], "1h30m")


def test_job_names_come_from_an_input_so_a_component_can_be_included_twice() -> None:
    for name in NAMES:
        first, second = jobs_of(name, job_name="one"), jobs_of(name, job_name="two")
        assert visible(first) == ["one"]
        assert not set(first) & set(second)


# --------------------------------------------------------------------------------------------
# Images, defaults, flywheel embedding


def _pinned_refs() -> set[str]:
    pins = [v for v in vars(versions).values() if isinstance(v, versions.ImagePin)]
    return {pin.ref for pin in pins if pin.digest}


@pytest.mark.parametrize(("name", "inputs"), INPUT_CASES)
def test_every_image_is_a_pinned_digest(name: str, inputs: dict[str, Any]) -> None:
    jobs = jobs_of(name, **inputs)
    for job_name in visible(jobs):
        job = resolve_extends(jobs, job_name)
        images = [job["image"]] + [s["name"] for s in job.get("services", [])]
        for image in images:
            assert image in _pinned_refs()
            assert "@sha256:" in image
            assert ":latest" not in image


def test_images_and_tags_fit_the_fleet() -> None:
    nix = resolve_extends(jobs_of("nix-build"), "nix-build")
    docker = resolve_extends(jobs_of("docker-build"), "docker-build")
    nix_image = resolve_extends(jobs_of("docker-build", mode="nix"), "docker-build")
    deploy = resolve_extends(jobs_of("k8s-deploy"), "k8s-deploy")

    assert (nix["image"], nix["tags"]) == (versions.NIX_IMAGE.ref, ["nix"])
    assert (docker["image"], docker["tags"]) == (versions.DOCKER_CLI_IMAGE.ref, ["dind"])
    # The fleet's dind runner starts the daemon itself: no second service by default.
    assert docker["services"] == []
    assert (nix_image["image"], nix_image["tags"]) == (versions.NIX_IMAGE.ref, ["nix"])
    assert "services" not in nix_image
    assert (deploy["image"], deploy["tags"]) == (versions.KUBECTL_IMAGE.ref, ["docker"])


def test_job_settings() -> None:
    nix = resolve_extends(jobs_of("nix-build", stage="nix"), "nix-build")
    assert nix["needs"] == []
    assert nix["stage"] == "nix"
    assert nix["interruptible"] is True
    docker = resolve_extends(jobs_of("docker-build"), "docker-build")
    assert (docker["stage"], docker["interruptible"]) == ("build", True)
    deploy = resolve_extends(jobs_of("k8s-deploy", environment="staging"), "k8s-deploy")
    assert deploy["stage"] == "deploy"
    assert deploy["interruptible"] is False
    assert deploy["resource_group"] == "staging"
    assert deploy["environment"] == {
        "name": "staging",
        "action": "start",
        "kubernetes": {"agent": EXAMPLES["agent"]},
    }
    for job in (nix, docker, deploy):
        assert job["timeout"]


# --------------------------------------------------------------------------------------------
# templates/README.md


def _readme_section(name: str) -> str:
    text = (REPO / "templates" / "README.md").read_text()
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {name}' in templates/README.md"
    return match.group(1)


def _default_cell(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "*required*"
    value = spec["default"]
    if value == "":
        return '`""`'
    if isinstance(value, bool | list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


@pytest.mark.parametrize("name", NAMES)
def test_readme_documents_every_input_and_has_a_working_example(name: str) -> None:
    section = _readme_section(name)
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+?) \| .+ \|$", section, re.M)
    spec = spec_of(name)

    assert [row[0] for row in rows] == list(spec)
    for key, kind, default in rows:
        assert (kind, default) == (spec[key]["type"], _default_cell(spec[key])), key
    examples = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert examples
    for example in examples:
        includes = [i for i in yaml.safe_load(example)["include"] if "component" in i]
        assert includes
        for include in includes:
            assert re.fullmatch(
                rf"\$CI_SERVER_FQDN/<group>/<project>/{name}@<version>", include["component"]
            )
            given = include.get("inputs", {})
            assert set(given) <= set(spec)
            assert {k for k, s in spec.items() if "default" not in s} <= set(given)


def test_readme_shows_the_pinned_dind_service() -> None:
    assert versions.DOCKER_DIND_IMAGE.ref in _readme_section("docker-build")
