"""The ``release`` job of ``.gitlab-ci.yml``: on a vX.Y.Z tag, after the tests, it uploads both
distributions to the project's PyPI registry with the job token, and refuses a tag that is not
the version or a version the changelog does not describe.

Its script runs here as GitLab would, with stub ``make`` (copies the session's built
distributions into ``dist/``) and stub ``twine`` (records its arguments and credentials).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import constructs_lib
from tests.support.dists import Dist
from tests.support.repo_pipeline import (
    DEFAULT_BRANCH,
    MERGE_REQUEST,
    RELEASE_TAG,
    pipeline,
    resolved_jobs as jobs,
    shell,
)
from tests.support.shell_stubs import stub

VERSION = constructs_lib.__version__
REGISTRY = "https://gitlab.example.com/api/v4/projects/42/packages/pypi"


def test_release_runs_only_for_version_tags_and_after_the_tests():
    job = jobs()["release"]
    assert job["stage"] == "release"
    assert job["needs"] == ["test"]
    assert job["interruptible"] is False
    tagged = pipeline(RELEASE_TAG)
    assert tagged is not None
    assert tagged["release"]["when"] == "on_success"
    for context in (MERGE_REQUEST, DEFAULT_BRANCH):
        created = pipeline(context)
        assert created is not None
        assert "release" not in created


def test_release_authenticates_with_the_job_token_only():
    variables = jobs()["release"]["variables"]
    assert variables["TWINE_USERNAME"] == "gitlab-ci-token"
    assert variables["TWINE_PASSWORD"] == "$CI_JOB_TOKEN"
    assert variables["TWINE_REPOSITORY_URL"] == (
        "$CI_API_V4_URL/projects/$CI_PROJECT_ID/packages/pypi"
    )


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: env[m.group(1)], value)


@pytest.fixture
def workspace(tmp_path: Path, library_dist: Dist, app_dist: Dist) -> Path:
    """The job's checkout: a CHANGELOG, stub make and twine, the built distributions."""
    built = tmp_path / "built"
    built.mkdir()
    for file in (library_dist.wheel, library_dist.sdist, app_dist.wheel, app_dist.sdist):
        shutil.copy2(file, built)
    work = tmp_path / "checkout"
    stub(
        work / "bin" / "make",
        f'#!/bin/sh\n[ "$1" = dist ] && mkdir -p dist && cp {built}/* dist/\n',
    )
    log = work / "twine.jsonl"
    stub(
        work / ".venv" / "bin" / "twine",
        '#!/bin/sh\nprintf \'{"args": "%s", "user": "%s", "password": "%s", "url": "%s"}\\n\' '
        f'"$*" "$TWINE_USERNAME" "$TWINE_PASSWORD" "$TWINE_REPOSITORY_URL" >> {log}\n',
    )
    (work / "CHANGELOG.md").write_text(f"# Changelog\n\n## [{VERSION}] - 2026-12-05\n")
    return work


def _run(work: Path, tag: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    job = jobs()["release"]
    env = {
        "PATH": f"{work / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "CI_COMMIT_TAG": tag,
        "CI_JOB_TOKEN": "job-token-value",
        "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
        "CI_PROJECT_ID": "42",
    }
    env.update({name: _expand(value, env) for name, value in job["variables"].items()})
    done = shell(job["script"], env, work)
    log = work / "twine.jsonl"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_a_version_tag_uploads_both_distributions(workspace: Path):
    done, calls = _run(workspace, f"v{VERSION}")
    assert done.returncode == 0, done.stderr
    (call,) = calls
    uploaded = sorted(call["args"].split()[2:])
    assert call["args"].startswith("upload --non-interactive ")
    assert uploaded == sorted(
        f"dist/{name}"
        for name in (
            f"attic_iac_constructs-{VERSION}-py3-none-any.whl",
            f"attic_iac_constructs-{VERSION}.tar.gz",
            f"attic_iac-{VERSION}-py3-none-any.whl",
            f"attic_iac-{VERSION}.tar.gz",
        )
    )
    assert (call["user"], call["password"]) == ("gitlab-ci-token", "job-token-value")
    assert call["url"] == REGISTRY


def test_a_tag_that_is_not_the_version_uploads_nothing(workspace: Path):
    done, calls = _run(workspace, "v99.0.0")
    assert done.returncode != 0
    assert "is not the version in constructs_lib/__init__.py" in done.stderr
    assert calls == []


def test_a_version_without_a_changelog_section_uploads_nothing(workspace: Path):
    (workspace / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n")
    done, calls = _run(workspace, f"v{VERSION}")
    assert done.returncode != 0
    assert f"CHANGELOG.md has no section for {VERSION}" in done.stderr
    assert calls == []
