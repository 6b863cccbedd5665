"""Fixtures of the stack tests."""

from __future__ import annotations

from typing import Any

import pytest

from config_model.loader import LoadedConfig, ResolvedEnvironment, load_config
from tests.conftest import DATA
from tests.support.synth_output import SynthOutput


@pytest.fixture(scope="session")
def attic_environments(
    example_config: LoadedConfig, example_synth: SynthOutput, variants_synth: SynthOutput
) -> list[tuple[str, ResolvedEnvironment, dict[str, Any]]]:
    """Every environment of the example and the variants, with its attic stack."""
    variants = load_config(DATA / "variants.yaml")
    return [
        (name, env, synth.stack(f"attic-{name}"))
        for config, synth in ((example_config, example_synth), (variants, variants_synth))
        for name, env in config.environments.items()
    ]


@pytest.fixture(scope="session")
def dashboard_environments(
    example_config: LoadedConfig, example_synth: SynthOutput, variants_synth: SynthOutput
) -> list[tuple[str, ResolvedEnvironment, dict[str, Any]]]:
    """Every environment of the example and the variants that enables the dashboard, with its
    dashboard stack."""
    variants = load_config(DATA / "variants.yaml")
    return [
        (name, env, synth.stack(f"dashboard-{name}"))
        for config, synth in ((example_config, example_synth), (variants, variants_synth))
        for name, env in config.environments.items()
        if env.config.dashboard.enabled
    ]
