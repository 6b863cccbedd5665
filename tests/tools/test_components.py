"""The GitLab CI/CD components (templates/*/template.yml): current with their generator, valid
against GitLab's CI schema once inputs are interpolated as GitLab does, documented in
templates/README.md, and their scripts run for real (dash, bash) against stub nix, attic,
curl, docker, skopeo and kubectl commands."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from constructs_lib import versions
from constructs_lib.runners.flywheel_scripts import flywheel_scripts
from iac_tools.ci_components import FLYWHEEL_DELIMITER, components, main, render, stale, write
from tests.conftest import REPO
from tests.support.gitlab_ci import resolve_extends

NAMES = ("nix-build", "docker-build", "k8s-deploy")
INPUT = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
# Required inputs, as a consumer would give them.
EXAMPLES: dict[str, Any] = {
    "server": "https://attic.example.com/",
    "cache": "ci",
    "agent": "platform/agents:production",
    "namespace": "web",
    "environment": "production",
}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.COMPONENT-TOKEN-SENTINEL.c2ln"
PASSWORD = "REGISTRY-PASSWORD-SENTINEL"
KEY = "ci:Q2FjaGUtY2ktcHVibGljLWtleS1mb3ItdGVzdHMtb25seQ=="
# What the scripts need besides shell builtins and the stubs, linked into a PATH of their own.
TOOLS = ("cat", "mkdir", "chmod", "rm", "tail", "sleep", "mktemp", "grep")


# --------------------------------------------------------------------------------------------
# Templates as GitLab reads them


def _documents(name: str) -> list[Any]:
    return list(yaml.safe_load_all((REPO / "templates" / name / "template.yml").read_text()))


def _spec(name: str) -> dict[str, dict[str, Any]]:
    inputs: dict[str, dict[str, Any]] = _documents(name)[0]["spec"]["inputs"]
    return inputs


def _values(name: str, **overrides: Any) -> dict[str, Any]:
    """Every input's value: the override, else the default, else the example."""
    values = {}
    for key, spec in _spec(name).items():
        if key in overrides:
            values[key] = overrides[key]
        elif "default" in spec:
            values[key] = spec["default"]
        else:
            values[key] = EXAMPLES[key]
    unknown = set(overrides) - set(values)
    assert not unknown, f"not inputs of {name}: {unknown}"
    return values


def _text(value: Any) -> str:
    """An input inside a longer string: GitLab writes Ruby's to_s (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(node: Any, values: dict[str, Any]) -> Any:
    """GitLab's interpolation: a node that is one block becomes the typed value; blocks inside
    a longer string become text. Keys are interpolated too."""
    if isinstance(node, dict):
        return {interpolate(k, values): interpolate(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(item, values) for item in node]
    if isinstance(node, str):
        whole = INPUT.fullmatch(node)
        if whole:
            return copy.deepcopy(values[whole.group(1)])
        return INPUT.sub(lambda m: _text(values[m.group(1)]), node)
    return node


def _jobs(name: str, **inputs: Any) -> dict[str, Any]:
    jobs: dict[str, Any] = interpolate(_documents(name)[1], _values(name, **inputs))
    return jobs


def _visible(jobs: dict[str, Any]) -> list[str]:
    return [name for name in jobs if not name.startswith(".")]


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
    docs = _documents(name)
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
    assert _errors(spec_schema, _documents(name)[0]["spec"]) == []


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
    jobs = _jobs(name, **inputs)

    assert _errors(ci_schema, jobs) == []
    for job_name in _visible(jobs):
        job = resolve_extends(jobs, job_name)
        assert _errors(ci_schema, {job_name: job}) == []
        # GitLab takes only strings and integers as variable values (booleans are refused).
        bad = {k: v for k, v in job["variables"].items() if type(v) not in (str, int)}
        assert bad == {}


def test_the_schema_check_catches_a_bad_job(ci_schema: dict[str, Any]) -> None:
    jobs = _jobs("nix-build")
    [job] = jobs.values()
    job["tags"] = []
    job["interruptible"] = "yes"
    assert len(_errors(ci_schema, jobs)) >= 2
    # An input left uninterpolated as the whole value is a string where an array belongs.
    raw = _documents("nix-build")[1]
    assert any("tags" in e for e in _errors(ci_schema, raw))


@pytest.mark.parametrize("name", NAMES)
def test_every_input_is_declared_described_and_used(name: str) -> None:
    spec = _spec(name)
    text = json.dumps(_documents(name)[1])

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
    nix, k8s = _spec("nix-build"), _spec("k8s-deploy")
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
        first, second = _jobs(name, job_name="one"), _jobs(name, job_name="two")
        assert _visible(first) == ["one"]
        assert not set(first) & set(second)


# --------------------------------------------------------------------------------------------
# Images, defaults, flywheel embedding


def _pinned_refs() -> set[str]:
    pins = [v for v in vars(versions).values() if isinstance(v, versions.ImagePin)]
    return {pin.ref for pin in pins if pin.digest}


@pytest.mark.parametrize(("name", "inputs"), INPUT_CASES)
def test_every_image_is_a_pinned_digest(name: str, inputs: dict[str, Any]) -> None:
    jobs = _jobs(name, **inputs)
    for job_name in _visible(jobs):
        job = resolve_extends(jobs, job_name)
        images = [job["image"]] + [s["name"] for s in job.get("services", [])]
        for image in images:
            assert image in _pinned_refs()
            assert "@sha256:" in image
            assert ":latest" not in image


def test_images_and_tags_fit_the_fleet() -> None:
    nix = resolve_extends(_jobs("nix-build"), "nix-build")
    docker = resolve_extends(_jobs("docker-build"), "docker-build")
    nix_image = resolve_extends(_jobs("docker-build", mode="nix"), "docker-build")
    deploy = resolve_extends(_jobs("k8s-deploy"), "k8s-deploy")

    assert (nix["image"], nix["tags"]) == (versions.NIX_IMAGE.ref, ["nix"])
    assert (docker["image"], docker["tags"]) == (versions.DOCKER_CLI_IMAGE.ref, ["dind"])
    # The fleet's dind runner starts the daemon itself: no second service by default.
    assert docker["services"] == []
    assert (nix_image["image"], nix_image["tags"]) == (versions.NIX_IMAGE.ref, ["nix"])
    assert "services" not in nix_image
    assert (deploy["image"], deploy["tags"]) == (versions.KUBECTL_IMAGE.ref, ["docker"])


def test_job_settings() -> None:
    nix = resolve_extends(_jobs("nix-build", stage="nix"), "nix-build")
    assert nix["needs"] == []
    assert nix["stage"] == "nix"
    assert nix["interruptible"] is True
    docker = resolve_extends(_jobs("docker-build"), "docker-build")
    assert (docker["stage"], docker["interruptible"]) == ("build", True)
    deploy = resolve_extends(_jobs("k8s-deploy", environment="staging"), "k8s-deploy")
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


def test_nix_build_carries_the_runner_scripts_verbatim() -> None:
    scripts = flywheel_scripts()
    job = resolve_extends(_jobs("nix-build"), "nix-build")

    assert scripts["setup.sh"] in job["before_script"]
    writer = job["before_script"][-1]
    assert writer.startswith(f"cat >\"$FLYWHEEL_DIR/flywheel.sh\" <<'{FLYWHEEL_DELIMITER}'")
    body = writer.split("\n", 1)[1]
    assert body == scripts["flywheel.sh"] + FLYWHEEL_DELIMITER + "\n"
    for text in scripts.values():
        # The heredoc ends at the first delimiter line; GitLab would interpolate $[[.
        assert FLYWHEEL_DELIMITER not in text.splitlines()
        assert "$[[" not in text


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
    spec = _spec(name)

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


# --------------------------------------------------------------------------------------------
# Running the scripts


def _stub(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _expand(value: str, env: dict[str, str]) -> str:
    """The runner expands $VAR and ${VAR} in job variables."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass
class Step:
    code: int
    output: str
    seconds: float


@dataclass
class Sandbox:
    """A job's directories, stub commands and CI environment."""

    root: Path
    record: Path
    work: Path
    bin: Path
    ci_env: dict[str, str]

    def env(self, job: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
        base = {
            "PATH": str(self.bin),
            "HOME": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "RECORD": str(self.record),
            **self.ci_env,
            **extra,
        }
        variables = {k: _expand(str(v), base) for k, v in job.get("variables", {}).items()}
        return {**base, **variables}

    def run(
        self,
        job: dict[str, Any],
        keys: tuple[str, ...],
        *,
        shell: tuple[str, ...] = ("dash",),
        flags: str = "-e",
        env: dict[str, str] | None = None,
    ) -> Step:
        """Run the job's ``keys`` (e.g. before_script and script) in one shell, as GitLab."""
        lines = [line for key in keys for line in job.get(key, [])]
        script = f"set {flags}\n" + "\n".join(lines)
        started = time.monotonic()
        found = shutil.which(shell[0])
        assert found
        # The scripts run flywheel.sh with sh: the shell under test, as /bin/sh in the image.
        link = self.bin / "sh"
        link.unlink(missing_ok=True)
        link.symlink_to(found)
        result = subprocess.run(
            [found, *shell[1:], "-c", script],
            env=self.env(job, env or {}),
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        return Step(result.returncode, result.stdout + result.stderr, time.monotonic() - started)

    def calls(self, program: str) -> list[str]:
        path = self.record / f"{program}.calls"
        return path.read_text().splitlines() if path.exists() else []


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return not text.rsplit(") ", 1)[1].startswith("Z")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    record, work, bin_dir = tmp_path / "record", tmp_path / "work", tmp_path / "bin"
    for directory in (record, work, bin_dir, tmp_path / "tmp"):
        directory.mkdir()
    for name in TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is needed by the test"
        (bin_dir / name).symlink_to(found)
    box = Sandbox(
        tmp_path,
        record,
        work,
        bin_dir,
        {
            "CI_PROJECT_DIR": str(work),
            "CI_PROJECT_URL": "https://gitlab.example.com/group/app",
            "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
            "CI_COMMIT_SHORT_SHA": "01234567",
            "CI_DEFAULT_BRANCH": "main",
            "CI_REGISTRY": "registry.example.com",
            "CI_REGISTRY_IMAGE": "registry.example.com/group/app",
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": PASSWORD,
            "CI_PROJECT_PATH_SLUG": "group-app",
        },
    )
    yield box
    # Only the watch-store stub a failing test left behind, by its recorded pid.
    pid_file = record / "watch-store.pid"
    if pid_file.exists() and _running(pid := int(pid_file.read_text())):
        os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# nix-build with stub nix, attic and curl

NIX_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/nix.calls"
printf '%s' "$NIX_CONFIG" > "$RECORD/nix.config"
if [ -f "$RECORD/watch-store.pid" ]; then
    echo "build while watch-store runs" >> "$RECORD/events"
fi
if [ -n "${FAKE_BUILD_EXIT:-}" ]; then
    echo "error: builder for '/nix/store/x-hello.drv' failed" >&2
    exit "$FAKE_BUILD_EXIT"
fi
echo "building hello" >&2
echo /nix/store/aaaa-hello
echo /nix/store/bbbb-hello-man
"""

ATTIC_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/attic.calls"
case $1 in
    watch-store)
        echo $$ > "$RECORD/watch-store.pid"
        trap 'echo "watch-store: TERM"; exit 0' TERM
        while :; do sleep 1; done
        ;;
    push)
        waited=0
        while [ "$waited" -lt "${FAKE_PUSH_SECONDS:-0}" ]; do sleep 1; waited=$((waited + 1)); done
        echo "pushed $*"
        ;;
esac
"""

# setup.sh's key fetch: curl ... -K - URL, the Authorization header in the config on stdin.
CURL_STUB = """#!/bin/sh
for url do :; done
if grep -q Authorization; then auth=yes; else auth=no; fi
printf '%s auth=%s\\n' "$url" "$auth" >> "$RECORD/curl.calls"
case $url in
    */_api/v1/cache-config/ci) printf '{"public_key":"%s","is_public":false}' "$FAKE_KEY" ;;
    *) exit 22 ;;
esac
"""

SERVER = "http://attic.test:8080"


def _nix_sandbox(box: Sandbox) -> None:
    _stub(box.bin / "nix", NIX_STUB)
    _stub(box.bin / "attic", ATTIC_STUB)
    _stub(box.bin / "curl", CURL_STUB)
    box.ci_env["FAKE_KEY"] = KEY


def _nix_job(**inputs: Any) -> dict[str, Any]:
    values = {"server": SERVER, "cache": "ci", "push_timeout": 30, **inputs}
    return resolve_extends(_jobs("nix-build", **values), "nix-build")


def _config(box: Sandbox) -> dict[str, str]:
    lines = (box.record / "nix.config").read_text().splitlines()
    return dict(line.split(" = ", 1) for line in lines)


def _watch_store_stopped(box: Sandbox) -> bool:
    return not _running(int((box.record / "watch-store.pid").read_text()))


@pytest.mark.parametrize(
    "shell", [("dash",), ("bash",), ("bash", "--posix")], ids=["dash", "bash", "bash-posix"]
)
def test_nix_build_pulls_builds_and_pushes(sandbox: Sandbox, shell: tuple[str, ...]) -> None:
    _nix_sandbox(sandbox)
    job = _nix_job(nix_args="--keep-going --impure", installable=".#hello")
    flags = "-eo pipefail" if shell[0] == "bash" else "-e"

    step = sandbox.run(
        job, ("before_script", "script"), shell=shell, flags=flags, env={"ATTIC_TOKEN": TOKEN}
    )
    after = sandbox.run(job, ("after_script",), shell=shell, flags=flags)

    assert step.code == 0, step.output
    assert after.code == 0, after.output
    [build] = sandbox.calls("nix")
    assert build.split() == [
        "build",
        "--print-build-logs",
        "--print-out-paths",
        "--keep-going",
        "--impure",
        ".#hello",
    ]
    config = _config(sandbox)
    assert config["extra-substituters"] == f"{SERVER}/ci?priority=30"
    assert config["extra-trusted-public-keys"] == KEY
    assert config["fallback"] == "true"
    netrc = Path(config["netrc-file"])
    assert netrc.read_text() == f"machine attic.test password {TOKEN}\n"
    assert sandbox.calls("curl") == [f"{SERVER}/_api/v1/cache-config/ci auth=yes"]
    assert sandbox.calls("attic") == [
        f"login attic-flywheel {SERVER}/ {TOKEN}",
        "watch-store attic-flywheel:ci",
        "push attic-flywheel:ci /nix/store/aaaa-hello /nix/store/bbbb-hello-man",
    ]
    # watch-store ran in the background during the build and was stopped after the push.
    assert (sandbox.record / "events").read_text() == "build while watch-store runs\n"
    assert _watch_store_stopped(sandbox)
    assert "watch-store stopped" in step.output
    assert "nix-build: built /nix/store/aaaa-hello" in step.output
    token_file = sandbox.root / "tmp" / "attic-nix-build" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert TOKEN not in step.output + after.output
    # after_script found the flywheel already stopped, and pushed nothing more.
    assert "already stopped" in after.output
    assert len(sandbox.calls("attic")) == 3


def test_nix_build_reads_a_file_type_token_variable(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)
    token_file = sandbox.root / "variable-file"
    token_file.write_text(f"{TOKEN}\n")
    job = _nix_job(token_variable="CACHE_TOKEN")

    step = sandbox.run(
        job,
        ("before_script", "script"),
        env={"CACHE_TOKEN": str(token_file), "ATTIC_TOKEN": "not-this-one"},
    )

    assert step.code == 0, step.output
    assert sandbox.calls("attic")[0] == f"login attic-flywheel {SERVER}/ {TOKEN}"
    assert TOKEN not in step.output


def test_nix_build_job_variables_win_over_the_runners_attic_environment(sandbox: Sandbox) -> None:
    """The fleet's nix runner sets ATTIC_* in its environment: the inputs must still rule."""
    _nix_sandbox(sandbox)
    runner = {
        "ATTIC_ENDPOINT": "http://runner-attic:8080/",
        "ATTIC_CACHES": "main",
        "ATTIC_PUSH_CACHE": "main",
        "ATTIC_TOKEN_FILE": "/run/attic-token/token",
    }

    step = sandbox.run(
        _nix_job(), ("before_script", "script"), env={**runner, "ATTIC_TOKEN": TOKEN}
    )

    assert step.code == 0, step.output
    assert sandbox.calls("attic")[1:] == [
        "watch-store attic-flywheel:ci",
        "push attic-flywheel:ci /nix/store/aaaa-hello /nix/store/bbbb-hello-man",
    ]


def test_a_hanging_push_is_cut_off_and_the_job_still_succeeds(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)
    job = _nix_job(push_timeout=2)

    step = sandbox.run(
        job, ("before_script", "script"), env={"ATTIC_TOKEN": TOKEN, "FAKE_PUSH_SECONDS": "60"}
    )

    assert step.code == 0, step.output
    assert step.seconds < 20
    assert "push FAILED" in step.output
    assert sandbox.calls("attic")[-1].startswith("push attic-flywheel:ci")
    assert _watch_store_stopped(sandbox)


def test_a_failed_build_fails_the_job_and_still_stops_watch_store(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)
    job = _nix_job()

    step = sandbox.run(
        job, ("before_script", "script"), env={"ATTIC_TOKEN": TOKEN, "FAKE_BUILD_EXIT": "3"}
    )
    after = sandbox.run(job, ("after_script",))

    assert step.code == 3
    assert "the build failed (exit 3)" in step.output
    assert _watch_store_stopped(sandbox)
    # Nothing built, nothing to push: watch-store had already pushed whatever finished.
    assert not any(call.startswith("push") for call in sandbox.calls("attic"))
    assert "nothing to push" in step.output
    assert after.code == 0
    assert TOKEN not in step.output + after.output


def test_after_script_stops_watch_store_when_the_script_is_cut_short(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)
    job = _nix_job()
    # A cancelled job: the flywheel started, the build never finished.
    started = {**job, "script": job["script"][:1]}

    step = sandbox.run(started, ("before_script", "script"), env={"ATTIC_TOKEN": TOKEN})
    pid = int((sandbox.record / "watch-store.pid").read_text())
    assert step.code == 0, step.output
    assert _running(pid)
    (sandbox.work / "result").symlink_to(sandbox.root)

    after = sandbox.run(job, ("after_script",))

    assert after.code == 0, after.output
    assert not _running(pid)
    assert "watch-store stopped" in after.output
    # It never pushes in after_script (its timeout is short), not even ./result.
    assert not any(call.startswith("push") for call in sandbox.calls("attic"))


@pytest.mark.parametrize("token", ["", None], ids=["empty", "unset"])
def test_without_a_token_it_pulls_anonymously_and_never_pushes(
    sandbox: Sandbox, token: str | None
) -> None:
    _nix_sandbox(sandbox)
    env = {} if token is None else {"ATTIC_TOKEN": token}

    step = sandbox.run(_nix_job(), ("before_script", "script"), env=env)
    after = sandbox.run(_nix_job(), ("after_script",))

    assert step.code == 0, step.output
    assert after.code == 0
    assert sandbox.calls("nix")[0].startswith("build ")
    assert sandbox.calls("attic") == []
    assert sandbox.calls("curl") == [f"{SERVER}/_api/v1/cache-config/ci auth=no"]
    config = _config(sandbox)
    assert config["extra-trusted-public-keys"] == KEY
    assert "netrc-file" not in config
    assert "$ATTIC_TOKEN is empty" in step.output


def test_push_false_pulls_with_the_token_and_never_pushes(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)

    step = sandbox.run(
        _nix_job(push=False), ("before_script", "script"), env={"ATTIC_TOKEN": TOKEN}
    )

    assert step.code == 0, step.output
    assert sandbox.calls("attic") == []
    assert "netrc-file" in _config(sandbox)
    assert sandbox.calls("curl") == [f"{SERVER}/_api/v1/cache-config/ci auth=yes"]
    assert "push is off" in step.output


def test_debug_trace_never_prints_the_token(sandbox: Sandbox) -> None:
    _nix_sandbox(sandbox)

    step = sandbox.run(
        _nix_job(), ("before_script", "script"), flags="-ex", env={"ATTIC_TOKEN": TOKEN}
    )

    assert step.code == 0, step.output
    assert "+ sh " in step.output  # the job's own commands are traced
    assert TOKEN not in step.output


# --------------------------------------------------------------------------------------------
# docker-build with stub docker, nix and skopeo

DOCKER_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/docker.calls"
case $1 in
    info) [ -z "${FAKE_NO_DAEMON:-}" ] ;;
    login) cat > "$RECORD/docker.stdin" ;;
esac
"""

SKOPEO_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/skopeo.calls"
case " $* " in
    *" login "*) cat > "$RECORD/skopeo.login" ;;
    *" docker-archive:/dev/stdin "*) cat > "$RECORD/skopeo.stdin" ;;
esac
"""

IMAGE_NIX_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/nix.calls"
case " $* " in
    *" --max-jobs 0 "*) printf '%s\\n' "$FAKE_SKOPEO_MAN" "$FAKE_SKOPEO" ;;
    *) echo "$FAKE_ARCHIVE" ;;
esac
"""


def _docker_job(**inputs: Any) -> dict[str, Any]:
    return resolve_extends(_jobs("docker-build", **inputs), "docker-build")


@pytest.mark.parametrize(
    ("branch", "latest"),
    [("main", True), ("feature", False), (None, False)],
    ids=["default-branch", "other-branch", "merge-request"],
)
def test_docker_build_builds_pushes_and_tags_latest_on_the_default_branch(
    sandbox: Sandbox, branch: str | None, latest: bool
) -> None:
    _stub(sandbox.bin / "docker", DOCKER_STUB)
    job = _docker_job(build_args="--build-arg VERSION=1 --target runtime", context="app")
    env = {} if branch is None else {"CI_COMMIT_BRANCH": branch}

    step = sandbox.run(job, ("script",), env=env)

    assert step.code == 0, step.output
    image = "registry.example.com/group/app"
    calls = sandbox.calls("docker")
    assert calls[:2] == [
        "info",
        "login --username gitlab-ci-token --password-stdin registry.example.com",
    ]
    assert calls[2].split() == [
        "build",
        "--pull",
        "--file",
        "Dockerfile",
        "--tag",
        f"{image}:01234567",
        "--label",
        "org.opencontainers.image.source=https://gitlab.example.com/group/app",
        "--label",
        "org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567",
        "--build-arg",
        "VERSION=1",
        "--target",
        "runtime",
        "app",
    ]
    pushed = [f"push {image}:01234567"]
    if latest:
        pushed += [f"tag {image}:01234567 {image}:latest", f"push {image}:latest"]
    assert calls[3:] == pushed
    assert (sandbox.record / "docker.stdin").read_text() == f"{PASSWORD}\n"
    assert PASSWORD not in "\n".join(calls) + step.output
    assert job["variables"]["DOCKER_HOST"] == "tcp://docker:2376"


def test_docker_build_latest_can_be_turned_off(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "docker", DOCKER_STUB)
    job = _docker_job(latest=False, image="registry.example.com/other", tag="v1")

    step = sandbox.run(job, ("script",), env={"CI_COMMIT_BRANCH": "main"})

    assert step.code == 0, step.output
    assert sandbox.calls("docker")[3:] == ["push registry.example.com/other:v1"]


def test_docker_build_gives_up_on_a_missing_daemon_within_the_bound(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "docker", DOCKER_STUB)

    step = sandbox.run(_docker_job(daemon_wait=2), ("script",), env={"FAKE_NO_DAEMON": "1"})

    assert step.code == 1
    assert step.seconds < 10
    assert "no Docker daemon at tcp://docker:2376 after 2s" in step.output
    assert set(sandbox.calls("docker")) == {"info"}


@pytest.mark.parametrize("kind", ["layered", "stream"])
def test_docker_build_pushes_a_nix_built_image_with_skopeo(sandbox: Sandbox, kind: str) -> None:
    _stub(sandbox.bin / "nix", IMAGE_NIX_STUB)
    skopeo = sandbox.root / "store" / "skopeo"
    _stub(skopeo / "bin" / "skopeo", SKOPEO_STUB)
    archive = sandbox.root / "store" / "image.tar.gz"
    if kind == "stream":
        _stub(archive, "#!/bin/sh\necho IMAGE-TAR-STREAM\n")
    else:
        archive.write_text("IMAGE-TAR")
        archive.chmod(0o444)
    job = _docker_job(mode="nix", installable=".#image", nix_args="--impure")
    env = {
        "FAKE_ARCHIVE": str(archive),
        "FAKE_SKOPEO": str(skopeo),
        "FAKE_SKOPEO_MAN": str(sandbox.root / "store" / "skopeo-man"),
        "CI_COMMIT_BRANCH": "main",
    }

    step = sandbox.run(job, ("script",), env=env)

    assert step.code == 0, step.output
    assert sandbox.calls("nix") == [
        "build --print-build-logs --print-out-paths --impure .#image",
        "build --max-jobs 0 --no-link --print-out-paths nixpkgs#skopeo",
    ]
    image = "registry.example.com/group/app"
    source = "docker-archive:/dev/stdin" if kind == "stream" else f"docker-archive:{archive}"
    assert sandbox.calls("skopeo") == [
        "login --username gitlab-ci-token --password-stdin registry.example.com",
        f"--insecure-policy copy {source} docker://{image}:01234567",
        f"--insecure-policy copy docker://{image}:01234567 docker://{image}:latest",
    ]
    assert (sandbox.record / "skopeo.login").read_text() == f"{PASSWORD}\n"
    if kind == "stream":
        assert (sandbox.record / "skopeo.stdin").read_text() == "IMAGE-TAR-STREAM\n"
    assert PASSWORD not in step.output


def test_docker_build_nix_mode_fails_without_skopeo_in_any_cache(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "nix", IMAGE_NIX_STUB)
    archive = sandbox.root / "image.tar.gz"
    archive.write_text("IMAGE-TAR")
    env = {"FAKE_ARCHIVE": str(archive), "FAKE_SKOPEO": "", "FAKE_SKOPEO_MAN": "/nowhere"}

    step = sandbox.run(_docker_job(mode="nix"), ("script",), env=env)

    assert step.code == 1
    assert "no skopeo" in step.output


# --------------------------------------------------------------------------------------------
# k8s-deploy with a stub kubectl

KUBECTL_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/kubectl.calls"
case "$1 $*" in
    *--dry-run=server*) [ -z "${FAKE_DRY_RUN_FAIL:-}" ] || { echo "invalid" >&2; exit 1; } ;;
    apply*) printf '%s\\n' $FAKE_APPLIED ;;
    get*) printf '%s\\n' $FAKE_SELECTED ;;
    rollout*)
        case " $FAKE_NOT_READY " in *" $3 "*) echo "timed out waiting for $3" >&2; exit 1 ;; esac
        echo "$3 successfully rolled out"
        ;;
esac
"""

APPLIED = "namespace/web service/web deployment.apps/web statefulset.apps/db configmap/settings"


def _deploy_env(**extra: str) -> dict[str, str]:
    return {"KUBECONFIG": "/builds/agent.kubeconfig", "FAKE_APPLIED": APPLIED, **extra}


def _apply_args(manifests: str = "k8s/") -> list[str]:
    return [
        "--server-side",
        "--field-manager=group-app",
        "--namespace=web",
        "--recursive",
        f"--filename={manifests}",
    ]


def test_k8s_deploy_applies_server_side_and_waits_for_the_applied_workloads(
    sandbox: Sandbox,
) -> None:
    _stub(sandbox.bin / "kubectl", KUBECTL_STUB)

    deploy = resolve_extends(_jobs("k8s-deploy"), "k8s-deploy")
    step = sandbox.run(deploy, ("script",), env=_deploy_env())

    assert step.code == 0, step.output
    calls = [call.split() for call in sandbox.calls("kubectl")]
    assert calls == [
        ["config", "use-context", EXAMPLES["agent"]],
        ["apply", *_apply_args(), "--dry-run=server"],
        ["apply", *_apply_args(), "--output=name"],
        ["rollout", "status", "deployment.apps/web", "--namespace=web", "--timeout=5m"],
        ["rollout", "status", "statefulset.apps/db", "--namespace=web", "--timeout=5m"],
    ]
    assert "--prune" not in " ".join(sandbox.calls("kubectl"))


def test_k8s_deploy_waits_for_the_selected_workloads_and_forces_when_asked(
    sandbox: Sandbox,
) -> None:
    _stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(
        _jobs(
            "k8s-deploy",
            rollout_selector="app.kubernetes.io/part-of=shop",
            force_conflicts=True,
            manifests="deploy/prod",
            rollout_timeout="90s",
        ),
        "k8s-deploy",
    )

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_SELECTED="daemonset.apps/agent"))

    assert step.code == 0, step.output
    calls = [call.split() for call in sandbox.calls("kubectl")]
    assert calls[2] == ["apply", *_apply_args("deploy/prod"), "--force-conflicts", "--output=name"]
    assert calls[3:] == [
        [
            "get",
            "deployment,statefulset,daemonset",
            "--namespace=web",
            "--selector=app.kubernetes.io/part-of=shop",
            "--output=name",
        ],
        ["rollout", "status", "daemonset.apps/agent", "--namespace=web", "--timeout=90s"],
    ]


def test_k8s_deploy_fails_when_a_workload_does_not_roll_out(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(_jobs("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_NOT_READY="deployment.apps/web"))

    assert step.code == 1
    assert "not rolled out within 5m: deployment.apps/web" in step.output
    # The other workload is still waited for, so the log names every one that failed.
    assert sandbox.calls("kubectl")[-1].startswith("rollout status statefulset.apps/db")


def test_k8s_deploy_applies_nothing_when_the_dry_run_fails(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(_jobs("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_DRY_RUN_FAIL="1"))

    assert step.code != 0
    assert not any("--output=name" in call for call in sandbox.calls("kubectl"))


def test_k8s_deploy_without_an_agent_kubeconfig_explains(sandbox: Sandbox) -> None:
    _stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(_jobs("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env={"FAKE_APPLIED": APPLIED})

    assert step.code == 1
    assert "ci_access" in step.output
    assert sandbox.calls("kubectl") == []
