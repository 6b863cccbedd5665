"""The nix runner's flywheel scripts (setup.sh, flywheel.sh), the shells they run in and the
token they read; shared by the tests of the scripts and of the runner settings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

OPS = REPO / "constructs_lib" / "runners" / "ops"
SETUP = OPS / "setup.sh"
FLYWHEEL = OPS / "flywheel.sh"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.FLYWHEEL-TOKEN-SENTINEL.c2ln"


def _shells() -> list[Any]:
    found = [
        pytest.param(["dash"], id="dash"),
        pytest.param(["bash"], id="bash"),
        # nixos/nix has no /bin/bash: gitlab-runner falls back to /bin/sh, bash in POSIX mode.
        pytest.param(["bash", "--posix"], id="bash-posix"),
    ]
    if shutil.which("busybox"):
        found.append(pytest.param(["busybox", "sh"], id="busybox"))
    return found


SHELLS = _shells()


def shell_path(shell: list[str]) -> str:
    """The shell's executable on this host."""
    found = shutil.which(shell[0])
    assert found
    return found


def token_file(tmp_path: Path, content: str = f"{TOKEN}\n") -> Path:
    """A token file like the mounted Secret's, under ``tmp_path``."""
    path = tmp_path / "token"
    path.write_text(content)
    return path


def config_lines(nix_config: str | None) -> dict[str, str]:
    """``NIX_CONFIG`` as setting -> value."""
    assert nix_config is not None
    lines = {}
    for line in nix_config.splitlines():
        key, _, value = line.partition(" = ")
        lines[key] = value
    return lines
