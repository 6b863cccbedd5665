"""Every synthesized stack: GitLab state backend, cluster providers, dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config_model.loader import EXAMPLE_CONFIG, LoadedConfig
from stacks.app import STACK_KINDS, apply_order
from tests.conftest import DATA, HEAVY_PROVIDERS, CliRun, synth_in_fresh_process
from tests.support.synth_output import SynthOutput


def test_one_stack_per_kind_and_environment(
    example_synth: SynthOutput, example_config: LoadedConfig
):
    expected = {f"{k.name}-{env}" for k in STACK_KINDS for env in example_config.environments}
    assert set(example_synth.stack_names()) == expected
    assert expected == {
        f"{kind}-{env}"
        for kind in ("platform", "runners", "attic", "dashboard")
        for env in ("dev", "staging", "prod")
    }


def test_every_stack_uses_gitlab_http_backend_with_locking(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for name, doc in synth.stacks():
            backend = doc["terraform"]["backend"]
            assert list(backend) == ["http"], name
            http = backend["http"]
            assert re.fullmatch(
                r"https://[^/]+(/[^/]+)*/api/v4/projects/\d+/terraform/state/" + re.escape(name),
                http["address"],
            ), http["address"]
            assert http == {
                "address": http["address"],
                "lock_address": http["address"] + "/lock",
                "unlock_address": http["address"] + "/lock",
                "lock_method": "POST",
                "unlock_method": "DELETE",
                "retry_wait_min": 5,
                "username": "gitlab-ci-token",
            }, name


def test_backend_address_is_built_from_the_config(example_synth: SynthOutput):
    http = example_synth.stack("platform-prod")["terraform"]["backend"]["http"]
    assert http["address"] == (
        "https://gitlab.com/api/v4/projects/12345678/terraform/state/platform-prod"
    )


def test_gitlab_under_a_relative_url_and_numeric_project_id(variants_synth: SynthOutput):
    http = variants_synth.stack("platform-full")["terraform"]["backend"]["http"]
    assert http["address"] == (
        "https://gitlab.example.org/gitlab/api/v4/projects/42/terraform/state/platform-full"
    )


def test_providers_use_only_the_environment_context(
    example_synth: SynthOutput, example_config: LoadedConfig
):
    for env_name, env in example_config.environments.items():
        doc = example_synth.stack(f"platform-{env_name}")
        context = env.settings.cluster_context
        assert doc["provider"]["kubernetes"] == [{"config_context": context}]
        assert doc["provider"]["helm"] == [{"kubernetes": {"config_context": context}}]


def test_providers_are_pinned_to_the_prebuilt_package_versions(example_synth: SynthOutput):
    required = example_synth.stack("platform-prod")["terraform"]["required_providers"]
    assert set(required) == {"kubernetes", "helm"}
    for spec in required.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"]), spec


def test_stack_kinds_only_depend_on_earlier_kinds():
    seen: set[str] = set()
    for kind in STACK_KINDS:
        assert set(kind.depends_on) <= seen, kind
        seen.add(kind.name)


def test_apply_order_lists_platform_first_per_environment(example_config: LoadedConfig):
    assert apply_order(example_config) == [
        f"{kind}-{env}"
        for env in ("dev", "staging", "prod")
        for kind in ("platform", "runners", "attic", "dashboard")
    ]
    assert apply_order(example_config, "prod") == [
        "platform-prod",
        "runners-prod",
        "attic-prod",
        "dashboard-prod",
    ]


def test_manifest_records_stack_dependencies(example_synth: SynthOutput):
    stacks = example_synth.manifest["stacks"]
    for name, stack in stacks.items():
        kind = name.rsplit("-", 1)[0]
        declared = next(k for k in STACK_KINDS if k.name == kind).depends_on
        env = name.removeprefix(f"{kind}-")
        assert sorted(stack["dependencies"]) == sorted(f"{d}-{env}" for d in declared)


def _heavy_providers(run: CliRun) -> str:
    return "\n".join(f"{p} {p in run.providers_loaded}" for p in HEAVY_PROVIDERS)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (EXAMPLE_CONFIG, "aws False\ncloudflare False\ngitlab True"),
        (DATA / "variants.yaml", "aws True\ncloudflare True\ngitlab True"),
        (DATA / "existing-secret.yaml", "aws False\ncloudflare False\ngitlab False"),
    ],
    ids=[
        "example-with-runner-api",
        "variants-with-buckets-and-dns",
        "runner-tokens-from-existing-secrets",
    ],
)
def test_heavy_providers_are_imported_only_when_used(
    config: Path, expected: str, request: pytest.FixtureRequest, tmp_path: Path
):
    """AWS only for bucket creation, Cloudflare only for DNS records, GitLab only to create
    runners. Each config is synthesized by ``attic-iac synth`` in a fresh process (the
    session's shared synths are: their record is read)."""
    shared = {EXAMPLE_CONFIG: "example_cli_synth", DATA / "variants.yaml": "variants_cli_synth"}
    if config in shared:
        run, _ = request.getfixturevalue(shared[config])
    else:
        run = synth_in_fresh_process(config, tmp_path / "cdktf.out")
    assert run.code == 0, run.stderr
    assert _heavy_providers(run) == expected
