"""Whole-stack JSON snapshots: any change to what OpenTofu would see shows up in review.

Update after an intended change with ``make snapshots-update`` and read the diff.
"""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.support.synth_output import SynthOutput


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.with_defaults(extension_class=JSONSnapshotExtension)


def _without_metadata(value: Any) -> Any:
    """Drop cdktf's ``//`` metadata (construct paths live in the address inventory)."""
    if isinstance(value, dict):
        return {k: _without_metadata(v) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [_without_metadata(v) for v in value]
    return value


@pytest.mark.parametrize(
    "stack",
    [
        f"{kind}-{env}"
        for kind in ("platform", "runners", "attic", "dashboard")
        for env in ("dev", "staging", "prod")
    ],
)
def test_example_stack(example_synth: SynthOutput, snapshot_json: SnapshotAssertion, stack: str):
    assert _without_metadata(example_synth.stack(stack)) == snapshot_json


@pytest.mark.parametrize(
    "stack",
    [
        f"{kind}-{env}"
        for kind in ("platform", "runners", "attic", "dashboard")
        for env in ("full", "external", "nobackup", "incluster")
    ],
)
def test_variant_stack(variants_synth: SynthOutput, snapshot_json: SnapshotAssertion, stack: str):
    assert _without_metadata(variants_synth.stack(stack)) == snapshot_json
