"""Fixtures shared by the tests of the in-cluster scripts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_http import serving
from tests.support.fake_kube import FakeKube


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    """A fake Kubernetes Secret API, served on 127.0.0.1 for one test."""
    with serving(FakeKube()) as server:
        yield server
