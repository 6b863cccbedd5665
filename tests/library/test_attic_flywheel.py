"""The nix runner's Attic wiring: the runner settings (flywheel_job_settings) and the
ConfigMap construct that ships setup.sh and flywheel.sh. The scripts themselves run for real in
test_attic_flywheel_setup_sh.py and test_attic_flywheel_sh.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.runners.attic_flywheel import (
    FLYWHEEL_DIR,
    TOKEN_DIR,
    FlywheelJobSettings,
    flywheel_job_settings,
)
from constructs_lib.runners.flywheel_scripts import (
    AtticFlywheelScripts,
    AtticFlywheelScriptsProps,
    flywheel_scripts,
)
from constructs_lib.validation import PropsError
from tests.support.flywheel_shells import FLYWHEEL, SETUP, config_lines
from tests.support.runner_pod import patched_pod_spec, pod_volumes
from tests.support.synth_output import resources

# --------------------------------------------------------------------------------------------
# flywheel_job_settings


def _settings(**overrides: Any) -> FlywheelJobSettings:
    args: dict[str, Any] = {
        "endpoint": "https://attic.example.com/",
        "caches": ["main", "ci"],
        "push_cache": "ci",
        "token_secret": "attic-ci-token",
        "config_map": "attic-flywheel",
    }
    args.update(overrides)
    return flywheel_job_settings(**args)


def test_settings_environment_order_and_static_nix_config() -> None:
    settings = _settings(priority=25)

    names = [item.split("=", 1)[0] for item in settings.environment]
    assert names == [
        "ATTIC_ENDPOINT",
        "ATTIC_CACHES",
        "ATTIC_PUSH_CACHE",
        "ATTIC_TOKEN_FILE",
        "NIX_CONFIG",
    ]
    env = dict(item.split("=", 1) for item in settings.environment)
    assert env["ATTIC_CACHES"] == "main ci"
    assert env["ATTIC_PUSH_CACHE"] == "ci"
    assert env["ATTIC_TOKEN_FILE"] == f"{TOKEN_DIR}/token"
    lines = config_lines(env["NIX_CONFIG"])
    assert lines["extra-substituters"] == (
        "https://attic.example.com/main?priority=25 https://attic.example.com/ci?priority=25"
    )
    assert lines["fallback"] == "true"
    assert lines["connect-timeout"] == "5"
    assert lines["extra-experimental-features"] == "nix-command flakes"
    assert settings.pre_build_script == (
        f"if [ -r {FLYWHEEL_DIR}/setup.sh ]; then . {FLYWHEEL_DIR}/setup.sh; fi"
    )


def test_settings_pull_only_without_token() -> None:
    settings = _settings(push_cache=None, token_secret=None)

    names = [item.split("=", 1)[0] for item in settings.environment]
    assert names == ["ATTIC_ENDPOINT", "ATTIC_CACHES", "NIX_CONFIG"]
    assert set(settings.volumes) == {"config_map"}
    assert settings.pod_spec == ()
    assert settings.feature_flags == {}


def test_token_volume_is_optional_through_a_pod_spec_patch() -> None:
    """The runner (19.3) renders the Secret volume without 'optional'; the strategic patch,
    active with the feature flag, adds it to the volume of the same name."""
    settings = _settings()
    kubernetes = {"volumes": dict(settings.volumes), "pod_spec": list(settings.pod_spec)}
    entry = {"feature_flags": dict(settings.feature_flags), "kubernetes": kubernetes}
    built = {"volumes": pod_volumes(kubernetes)}
    patched = patched_pod_spec(entry, built)
    [token] = [v for v in patched["volumes"] if "secret" in v]
    assert token == {
        "name": "attic-ci-token",
        "secret": {
            "secretName": "attic-ci-token",
            "items": [{"key": "token", "path": "token"}],
            "optional": True,
        },
    }
    [scripts] = [v for v in patched["volumes"] if "configMap" in v]
    assert "optional" not in scripts["configMap"]  # the scripts come with this stack
    # Without the flag the runner ignores the patch.
    assert patched_pod_spec({**entry, "feature_flags": {}}, built) == built


# gitlab-runner common/config.go, KubernetesConfigMap / KubernetesSecret toml tags.
VOLUME_KEYS = {"name", "mount_path", "sub_path", "read_only", "items"}


def test_settings_volumes_are_runner_toml() -> None:
    settings = _settings()

    assert set(settings.volumes) == {"config_map", "secret"}
    for entries in settings.volumes.values():
        for entry in entries:
            assert set(entry) <= VOLUME_KEYS
            assert entry["read_only"] is True
    [scripts] = settings.volumes["config_map"]
    assert (scripts["name"], scripts["mount_path"]) == ("attic-flywheel", FLYWHEEL_DIR)
    [token] = settings.volumes["secret"]
    assert token == {
        "name": "attic-ci-token",
        "mount_path": TOKEN_DIR,
        "read_only": True,
        "items": {"token": "token"},
    }
    # Round trip through TOML the way the runner's config is written and read.
    runner = {
        "runners": [
            {
                "environment": list(settings.environment),
                "pre_build_script": settings.pre_build_script,
                "kubernetes": {"volumes": settings.volumes},
            }
        ]
    }
    [back] = tomllib.loads(tomli_w.dumps(runner))["runners"]
    assert back["environment"] == list(settings.environment)
    assert back["kubernetes"]["volumes"]["secret"] == [token]
    assert back["kubernetes"]["volumes"]["config_map"] == [scripts]


def test_pre_build_script_does_not_end_the_job_when_the_scripts_are_absent() -> None:
    script = _settings().pre_build_script
    result = subprocess.run(
        ["dash", "-ec", f"{script}\necho still-here"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )
    assert Path(FLYWHEEL_DIR).exists() or result.stdout == "still-here\n"


def test_settings_validation_lists_every_problem() -> None:
    with pytest.raises(PropsError) as caught:
        flywheel_job_settings(
            endpoint="https://attic.example.com",
            caches=["main", "bad name", "main"],
            push_cache="other",
            token_secret=None,
            config_map="Attic_Flywheel",
            priority=40,
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "endpoint: 'https://attic.example.com'",
        "caches: 'bad name' is not a cache name",
        "caches: 'main' is listed twice",
        "config_map: 'Attic_Flywheel'",
        "priority: 40",
        "push_cache: 'other' is not one of caches",
        "push_cache: pushing to 'other' needs a token_secret",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 7


def test_settings_reject_empty_caches_and_clashing_volume_names() -> None:
    with pytest.raises(PropsError) as caught:
        _settings(caches=[], push_cache=None, token_secret="same", config_map="same")
    assert caught.value.problems == [
        "caches: at least one cache is needed",
        "token_secret: 'same' is also config_map; gitlab-runner names each volume after its "
        "object, so the two must differ",
    ]


# --------------------------------------------------------------------------------------------
# AtticFlywheelScripts


def test_scripts_config_map_holds_both_scripts() -> None:
    stack = TerraformStack(CdktfTesting.app(), "test")
    scripts = AtticFlywheelScripts(
        stack, "Flywheel", AtticFlywheelScriptsProps(namespace="gitlab-runner-jobs")
    )
    doc = json.loads(CdktfTesting.synth(stack))

    [config_map] = resources(doc, "kubernetes_config_map_v1").values()
    metadata = config_map["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("attic-flywheel", "gitlab-runner-jobs")
    assert metadata["labels"]["app.kubernetes.io/part-of"] == "gitlab-runners"
    # Terraform reads '${' and '%{' as templates: the data carries them escaped, and the
    # object gets the scripts exactly as written.
    data = {
        key: text.replace("$${", "${").replace("%%{", "%{")
        for key, text in config_map["data"].items()
    }
    assert data == {"setup.sh": SETUP.read_text(), "flywheel.sh": FLYWHEEL.read_text()}
    assert flywheel_scripts() == data
    assert "${" in SETUP.read_text()
    assert re.search(r"(?<!\$)\$\{", config_map["data"]["setup.sh"]) is None
    assert scripts.name == "attic-flywheel"
    assert TOKEN_DIR not in config_map["data"]["setup.sh"]  # the token path comes from env


def test_scripts_config_map_validation() -> None:
    stack = TerraformStack(CdktfTesting.app(), "test")
    with pytest.raises(PropsError) as caught:
        AtticFlywheelScripts(
            stack, "Flywheel", AtticFlywheelScriptsProps(namespace="Jobs", name="a.b")
        )
    assert len(caught.value.problems) == 2
