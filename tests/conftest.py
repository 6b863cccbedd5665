"""Session fixtures: each config is synthesized once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacks.loader import EXAMPLE_CONFIG, LoadedConfig, load_config
from stacks.synth import synthesize
from tests.synth_output import SynthOutput

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def refdata_dir() -> Path | None:
    """``$ATTIC_IAC_REFDATA`` or ``../shared/refdata`` beside the repo; None if absent."""
    candidate = Path(os.environ.get("ATTIC_IAC_REFDATA") or REPO.parent / "shared" / "refdata")
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def refdata() -> Path:
    found = refdata_dir()
    if found is None:
        pytest.skip("reference data not found: set ATTIC_IAC_REFDATA or put shared/ beside the repo")
    return found


@pytest.fixture(scope="session")
def example_config() -> LoadedConfig:
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def example_synth(example_config: LoadedConfig, tmp_path_factory: pytest.TempPathFactory) -> SynthOutput:
    out = tmp_path_factory.mktemp("example") / "cdktf.out"
    synthesize(example_config, out)
    return SynthOutput(out)


@pytest.fixture(scope="session")
def variants_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthOutput:
    """A config whose environments switch on what the example leaves off."""
    out = tmp_path_factory.mktemp("variants") / "cdktf.out"
    synthesize(load_config(DATA / "variants.yaml"), out)
    return SynthOutput(out)


@pytest.fixture(scope="session")
def all_synths(example_synth: SynthOutput, variants_synth: SynthOutput) -> list[SynthOutput]:
    return [example_synth, variants_synth]
