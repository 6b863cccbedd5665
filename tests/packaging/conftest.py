"""Fixtures of the packaging tests: both distributions, built once per session."""

from __future__ import annotations

import pytest

from tests.support.dists import LIBRARY, REPO, Dist, build_dist, build_tool_missing


@pytest.fixture(scope="session")
def library_dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """attic-iac-constructs, built from library/ (sdist, then the wheel from the sdist)."""
    missing = build_tool_missing()
    if missing:
        pytest.fail(missing)
    return build_dist(LIBRARY, tmp_path_factory.mktemp("library-dist"))


@pytest.fixture(scope="session")
def app_dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """attic-iac, built from the repository root."""
    missing = build_tool_missing()
    if missing:
        pytest.fail(missing)
    return build_dist(REPO, tmp_path_factory.mktemp("app-dist"))
