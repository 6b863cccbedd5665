"""Fixtures shared by the tools' tests: the sandbox a CI/CD component's job scripts run in, and
the local server and config ``attic-iac health`` is checked against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.component_sandbox import Sandbox, open_sandbox
from tests.support.health_server import FakeServer, serving, write_config


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A job's directories, stub PATH and CI environment under ``tmp_path``."""
    with open_sandbox(tmp_path) as box:
        yield box


@pytest.fixture
def health_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy, no GitLab token and no config from the caller's environment."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "GITLAB_TOKEN", "ATTIC_IAC_CONFIG"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(FakeServer()) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)
