"""A sandbox to run a CI/CD component's job scripts for real (dash, bash) with stub commands on a
PATH of their own and a GitLab CI environment; the ``sandbox`` fixture (tests/tools/conftest.py)
opens one for each per-component test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.shell_stubs import link_tools, running

PASSWORD = "REGISTRY-PASSWORD-SENTINEL"
# What the scripts need besides shell builtins and the stubs, linked into a PATH of their own.
TOOLS = ("cat", "mkdir", "chmod", "rm", "tail", "sleep", "mktemp", "grep")


def expand(value: str, env: dict[str, str]) -> str:
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
        variables = {k: expand(str(v), base) for k, v in job.get("variables", {}).items()}
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


@contextmanager
def open_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A job's sandbox under ``tmp_path``; on leaving, kills the watch-store stub a failing test
    left behind (only that one, by its recorded pid)."""
    record, work, bin_dir = tmp_path / "record", tmp_path / "work", tmp_path / "bin"
    for directory in (record, work, bin_dir, tmp_path / "tmp"):
        directory.mkdir()
    link_tools(bin_dir, TOOLS)
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
    try:
        yield box
    finally:
        pid_file = record / "watch-store.pid"
        if pid_file.exists() and running(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)
