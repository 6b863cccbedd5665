"""The nix runner's flywheel.sh, run for real in dash, bash (also in POSIX mode) and busybox sh
against stub ``attic`` and ``nix`` commands: start watch-store, push at stop, and never fail the
job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.flywheel_shells import FLYWHEEL, SHELLS, TOKEN, shell_path, token_file
from tests.support.shell_stubs import ATTIC_STUB, link_tools, running, stub

# What a POSIX shell needs besides its builtins, linked into a PATH of its own per test.
TOOLS = ("mkdir", "chmod", "rm", "tail", "sleep", "mktemp")


NIX_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/nix.calls"
[ -n "${FAKE_NIX_FAIL:-}" ] && { echo "error: unable to start any build" >&2; exit 1; }
echo "$FAKE_CLIENT"
"""


@dataclass
class Job:
    """A job's working directory, stubs and environment for flywheel.sh."""

    tmp_path: Path
    shell: list[str]
    env: dict[str, str]
    record: Path
    work: Path

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shell_path(self.shell), *self.shell[1:], str(FLYWHEEL), *args],
            env={**self.env, **extra_env},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self, program: str) -> list[str]:
        path = self.record / f"{program}.calls"
        return path.read_text().splitlines() if path.exists() else []

    def watch_store_pid(self) -> int:
        return int((self.record / "watch-store.pid").read_text())


def _job(
    tmp_path: Path, shell: list[str], *, attic_on_path: bool, nix_on_path: bool, **env: str
) -> Job:
    record = tmp_path / "record"
    record.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "tmp").mkdir()
    bin_dir = link_tools(tmp_path / "bin", TOOLS)
    client = tmp_path / "store" / "attic-client"
    stub(client / "bin" / "attic", ATTIC_STUB)
    if attic_on_path:
        stub(bin_dir / "attic", ATTIC_STUB)
    if nix_on_path:
        stub(bin_dir / "nix", NIX_STUB)
    base = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "RECORD": str(record),
        "FAKE_CLIENT": str(client),
        "ATTIC_ENDPOINT": "http://attic.example:8080/",
        "ATTIC_PUSH_CACHE": "ci",
        "ATTIC_TOKEN_FILE": str(token_file(tmp_path)),
    }
    return Job(tmp_path, shell, {**base, **env}, record, work)


@pytest.fixture
def cleanup() -> Iterator[list[Job]]:
    """Kill watch-store stubs a failing test left behind (only ours, by their recorded pid)."""
    jobs: list[Job] = []
    yield jobs
    for job in jobs:
        pid_file = job.record / "watch-store.pid"
        if pid_file.exists() and running(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("shell", SHELLS)
def test_flywheel_round_trip(tmp_path: Path, shell: list[str], cleanup: list[Job]) -> None:
    job = _job(tmp_path, shell, attic_on_path=True, nix_on_path=False)
    cleanup.append(job)

    started = time.monotonic()
    start = job.run("start")
    # watch-store keeps running, yet the step returns: it holds none of the job's pipes.
    assert time.monotonic() - started < 10
    assert start.returncode == 0, start.stdout + start.stderr
    pid = job.watch_store_pid()
    assert running(pid)
    assert job.calls("attic") == [
        f"login attic-flywheel http://attic.example:8080/ {TOKEN}",
        "watch-store attic-flywheel:ci",
    ]
    (job.work / "result").symlink_to(tmp_path / "store")
    (job.work / "result-dev").symlink_to(tmp_path / "store")
    (job.work / "result-gone").symlink_to(tmp_path / "nowhere")
    (job.work / "results.json").write_text("{}")

    stop = job.run("stop")

    assert stop.returncode == 0
    assert job.calls("attic")[2:] == ["push attic-flywheel:ci result result-dev"]
    assert not running(pid)
    assert "pushed 2 path(s)" in stop.stdout
    assert "watch-store stopped" in stop.stdout
    assert "watch-store: TERM" in stop.stdout  # the log tail
    assert TOKEN not in start.stdout + start.stderr + stop.stdout + stop.stderr
    # A second stop (after_script, once the script already stopped) does nothing.
    again = job.run("stop")
    assert again.returncode == 0
    assert "not started" in again.stdout
    assert len(job.calls("attic")) == 3


def test_stop_pushes_the_given_paths(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    cleanup.append(job)
    (job.work / "result").symlink_to(tmp_path / "store")
    assert job.run("start").returncode == 0

    stop = job.run("stop", "/nix/store/aaaa-hello", "/nix/store/bbbb-world")

    assert stop.returncode == 0
    assert job.calls("attic")[-1] == (
        "push attic-flywheel:ci /nix/store/aaaa-hello /nix/store/bbbb-world"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_stop_kills_a_watch_store_that_ignores_term_within_the_bound(
    tmp_path: Path, shell: list[str], cleanup: list[Job]
) -> None:
    job = _job(
        tmp_path,
        shell,
        attic_on_path=True,
        nix_on_path=False,
        FAKE_IGNORE_TERM="1",
        ATTIC_FLYWHEEL_STOP_WAIT="2",
    )
    cleanup.append(job)
    assert job.run("start").returncode == 0
    pid = job.watch_store_pid()

    started = time.monotonic()
    stop = job.run("stop")
    seconds = time.monotonic() - started

    assert stop.returncode == 0
    assert 2 <= seconds < 8
    assert not running(pid)
    assert "ignored TERM for 2s and was killed" in stop.stdout


ZOMBIE_PARENT = """
import ctypes, subprocess, sys
# Orphans become our children and are never reaped, as under a job container's PID 1 that
# does not reap: a stopped watch-store then stays a zombie, which still answers kill -0.
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
for step in ("start", "stop"):
    done = subprocess.run(sys.argv[1:] + [step], capture_output=True, text=True, timeout=60)
    print(done.returncode, done.stdout)
"""


def test_stop_counts_an_unreaped_watch_store_as_stopped(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    cleanup.append(job)

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", ZOMBIE_PARENT, shell_path(job.shell), str(FLYWHEEL)],
        env=job.env,
        cwd=job.work,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Without the zombie check, stop would wait the full 15 s and then report a kill.
    assert time.monotonic() - started < 10
    assert "summary: nothing to push" in result.stdout
    assert "watch-store stopped" in result.stdout


@pytest.mark.parametrize(
    ("extra", "bound"),
    [
        ({"FAKE_PUSH_EXIT": "1"}, 5),
        ({"FAKE_PUSH_SECONDS": "30", "ATTIC_FLYWHEEL_PUSH_TIMEOUT": "2"}, 10),
    ],
    ids=["push-fails", "push-hangs"],
)
def test_a_failed_or_hanging_push_never_fails_the_job(
    tmp_path: Path, cleanup: list[Job], extra: dict[str, str], bound: int
) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False, **extra)
    cleanup.append(job)
    assert job.run("start").returncode == 0
    pid = job.watch_store_pid()

    started = time.monotonic()
    stop = job.run("stop", "/nix/store/aaaa-hello")

    assert time.monotonic() - started < bound
    assert stop.returncode == 0
    assert "push FAILED" in stop.stdout
    assert not running(pid)


@pytest.mark.parametrize("shell", SHELLS)
def test_client_is_substituted_never_built(
    tmp_path: Path, shell: list[str], cleanup: list[Job]
) -> None:
    job = _job(tmp_path, shell, attic_on_path=False, nix_on_path=True)
    cleanup.append(job)

    start = job.run("start")

    assert start.returncode == 0
    [call] = job.calls("nix")
    assert call.split() == [
        "build",
        "--max-jobs",
        "0",
        "--no-link",
        "--print-out-paths",
        "nixpkgs#attic-client",
    ]
    # The substituted client did the login and runs watch-store.
    assert job.calls("attic")[1] == "watch-store attic-flywheel:ci"
    assert running(job.watch_store_pid())
    assert job.run("stop").returncode == 0


def test_client_installable_can_be_pinned(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(
        tmp_path,
        ["dash"],
        attic_on_path=False,
        nix_on_path=True,
        ATTIC_CLIENT="github:zhaofengli/attic/abc123#attic-client",
    )
    cleanup.append(job)
    assert job.run("start").returncode == 0
    assert job.calls("nix")[0].endswith(" github:zhaofengli/attic/abc123#attic-client")
    assert job.run("stop").returncode == 0


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("nix_on_path", "extra", "said"),
    [
        (False, {}, "no attic client and no nix"),
        (True, {"FAKE_NIX_FAIL": "1"}, "unable to start any build"),
    ],
    ids=["no-attic-no-nix", "client-not-in-any-cache"],
)
def test_without_a_client_start_and_stop_exit_0(
    tmp_path: Path, shell: list[str], nix_on_path: bool, extra: dict[str, str], said: str
) -> None:
    job = _job(tmp_path, shell, attic_on_path=False, nix_on_path=nix_on_path, **extra)

    start = job.run("start")
    stop = job.run("stop")

    assert (start.returncode, stop.returncode) == (0, 0)
    assert said in start.stdout
    assert "not started" in stop.stdout
    assert not (job.record / "watch-store.pid").exists()


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ATTIC_PUSH_CACHE": ""}, "only pulls"),
        ({"ATTIC_TOKEN_FILE": "/nonexistent/token"}, "no readable push token"),
        ({"ATTIC_TOKEN_FILE": ""}, "no readable push token"),
    ],
    ids=["no-push-cache", "token-missing", "token-unset"],
)
def test_without_push_settings_start_and_stop_explain_and_do_nothing(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=True, **env)

    start = job.run("start")
    stop = job.run("stop")

    assert (start.returncode, stop.returncode) == (0, 0)
    assert said in start.stdout
    assert said in stop.stdout
    assert job.calls("attic") == []
    assert job.calls("nix") == []


def test_usage_error_is_not_silent(tmp_path: Path) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    result = job.run("push")
    assert result.returncode == 2
    assert "usage" in result.stdout
