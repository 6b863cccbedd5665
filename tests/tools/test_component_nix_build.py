"""The nix-build component (templates/nix-build): the runner scripts it carries, and its job run
for real (dash, bash) against stub nix, attic and curl."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.runners.flywheel_scripts import flywheel_scripts
from iac_tools.ci_nix_build import FLYWHEEL_DELIMITER
from tests.support.component_sandbox import Sandbox
from tests.support.component_templates import jobs_of
from tests.support.gitlab_ci import resolve_extends
from tests.support.shell_stubs import ATTIC_STUB, running, stub

TOKEN = "eyJhbGciOiJIUzI1NiJ9.COMPONENT-TOKEN-SENTINEL.c2ln"
KEY = "ci:Q2FjaGUtY2ktcHVibGljLWtleS1mb3ItdGVzdHMtb25seQ=="


def test_nix_build_carries_the_runner_scripts_verbatim() -> None:
    scripts = flywheel_scripts()
    job = resolve_extends(jobs_of("nix-build"), "nix-build")

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
    stub(box.bin / "nix", NIX_STUB)
    stub(box.bin / "attic", ATTIC_STUB)
    stub(box.bin / "curl", CURL_STUB)
    box.ci_env["FAKE_KEY"] = KEY


def _nix_job(**inputs: Any) -> dict[str, Any]:
    values = {"server": SERVER, "cache": "ci", "push_timeout": 30, **inputs}
    return resolve_extends(jobs_of("nix-build", **values), "nix-build")


def _config(box: Sandbox) -> dict[str, str]:
    lines = (box.record / "nix.config").read_text().splitlines()
    return dict(line.split(" = ", 1) for line in lines)


def _watch_store_stopped(box: Sandbox) -> bool:
    return not running(int((box.record / "watch-store.pid").read_text()))


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
    assert running(pid)
    (sandbox.work / "result").symlink_to(sandbox.root)

    after = sandbox.run(job, ("after_script",))

    assert after.code == 0, after.output
    assert not running(pid)
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
