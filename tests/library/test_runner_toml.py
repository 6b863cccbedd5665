"""The ``[[runners]]`` entry: pod_spec patches, extra feature flags and validation."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.runners.runner_toml import (
    FEATURE_FLAGS,
    POD_SPEC_FLAG,
    RunnerTomlProps,
    render_runner_config,
)
from constructs_lib.validation import PropsError

SMALL = ComputeResources(cpu_request="1", memory_request="1Gi", cpu_limit="1", memory_limit="1Gi")
PATCH = {"name": "p", "patch_type": "strategic", "patch": '{"volumes": []}'}


def _props(**overrides: Any) -> RunnerTomlProps:
    args: dict[str, Any] = {
        "name": "acme-dev-nix",
        "runner_type": "nix",
        "job_namespace": "jobs",
        "image": "nixos/nix",
        "limit": 1,
        "build": SMALL,
        "helper": SMALL,
        "service": SMALL,
    }
    return RunnerTomlProps(**{**args, **overrides})


def test_pod_spec_patches_and_their_flag_are_rendered():
    text = render_runner_config(_props(pod_spec=[PATCH], feature_flags={POD_SPEC_FLAG: True}))
    [entry] = tomllib.loads(text)["runners"]
    assert entry["kubernetes"]["pod_spec"] == [PATCH]
    assert entry["feature_flags"] == {**FEATURE_FLAGS, POD_SPEC_FLAG: True}


def test_pod_spec_problems_are_reported_together():
    with pytest.raises(PropsError) as info:
        render_runner_config(
            _props(pod_spec=[PATCH, {"name": "q", "patch": "{}", "patch_type": "yaml"}])
        )
    assert info.value.problems == [
        "pod_spec[1]: needs name and patch, patch_type one of strategic, merge, json "
        "(got {'name': 'q', 'patch': '{}', 'patch_type': 'yaml'})",
        f"pod_spec: the runner ignores it unless feature_flags sets {POD_SPEC_FLAG}",
    ]
