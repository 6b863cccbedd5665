"""Bad ``runners`` sections: combinations that cannot work, alone or with the ``attic`` section."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.support.config_files import config_errors, config_with

_CACHES: dict[str, Any] = {
    "caches": [{"name": "main"}],
    "tokens": [
        {
            "name": "ci",
            "type": "ci",
            "namespace": "gitlab-runner-jobs",
            "permissions": {"pull": ["main"], "push": ["main"]},
        },
        {"name": "ro", "type": "read_only", "permissions": {"pull": ["main"]}},
    ],
}


@pytest.mark.parametrize(
    ("runners", "attic", "key", "message"),
    [
        ({"types": {"docker2": {}}}, {}, "runners.types.docker2", "unknown key"),
        (
            {"types": {"docker": {"privileged": True}}},
            {},
            "runners.types.docker.privileged",
            "only the dind type runs privileged job pods",
        ),
        (
            {"types": {"dind": {"privileged": False}}},
            {},
            "runners.types.dind.privileged",
            "dind needs privileged job pods",
        ),
        (
            {"types": {"docker": {"concurrent": 40}}},
            {},
            "runners.budgets.jobs.quota.limits.cpu",
            "is below what docker, nix, nix_protected, rocky8, rocky9 need at full concurrency "
            "(156",
        ),
        (
            {"types": {"nix": {"job_ceilings": {"cpu_limit": "16"}}}},
            {},
            "runners.types.nix.job_ceilings.cpu_limit",
            "is above runners.budgets.jobs.max.cpu (8)",
        ),
        (
            {"types": {"rocky9": {"job": {"memory_limit": "32Gi"}}}},
            {},
            "runners.types.rocky9.job.memory_limit",
            "is above runners.budgets.jobs.max.memory (16Gi)",
        ),
        (
            {
                "cleanup": {"max_age": "2 hours"},
                "token_source": "gitlab_api",
                "gitlab_api": {"group_id": 5},
            },
            {},
            "runners.cleanup.max_age",
            "must exceed runners.types.docker gitlab.maximum_timeout + poll_timeout (11400 s)",
        ),
        (
            {"token_source": "gitlab_api"},
            {},
            "runners.gitlab_api.group_id",
            "is required with runner_type group_type",
        ),
        (
            {"types": {"nix": {"gitlab": {"tags": ["nix"]}}}},
            {},
            "runners.types.nix.gitlab",
            "has no effect with token_source existing_secret",
        ),
        (
            {"namespace": "attic"},
            {},
            "runners.namespace",
            "is already used by attic.namespace",
        ),
        (
            {"agent_access": [{"project_id": 1, "group_id": 2}]},
            {},
            "runners.agent_access.0",
            "give exactly one of project_id or group_id",
        ),
        (
            {"attic": {"token": "ro"}},
            _CACHES,
            "runners.attic.token",
            "its Secret is delivered to attic, and nix jobs run in gitlab-runner-jobs",
        ),
        (
            {"attic": {"token": None, "caches": ["main"]}},
            _CACHES,
            "runners.attic.token",
            "caches main are private, so nix jobs need a token",
        ),
        (
            {"attic": {"token": "ci", "caches": ["other"]}},
            _CACHES,
            "runners.attic.caches",
            "is not declared in attic.caches (main)",
        ),
        (
            {"cache": {"enabled": True, "bucket": "runner-cache"}},
            {},
            "runners.cache.server_address",
            "is required when the runner cache is enabled",
        ),
    ],
)
def test_runner_combinations_that_cannot_work_are_rejected(
    tmp_path: Path, runners: dict[str, Any], attic: dict[str, Any], key: str, message: str
):
    errors = config_errors(tmp_path, config_with(runners=runners, attic=attic or None))
    assert any(line.startswith(f"{key}: {message}") for line in errors), errors


def test_a_read_only_token_cannot_be_the_push_token(tmp_path: Path):
    attic = copy.deepcopy(_CACHES)
    attic["tokens"][1]["namespace"] = "gitlab-runner-jobs"
    runners = {"attic": {"token": "ro", "push_token": "ro"}}
    errors = config_errors(tmp_path, config_with(attic=attic, runners=runners))
    assert len(errors) == 1, errors
    assert errors[0].startswith("runners.attic.push_token: token 'ro' cannot pull and push 'main'")


def _pull_and_push_tokens() -> dict[str, Any]:
    attic = copy.deepcopy(_CACHES)
    attic["tokens"][1]["namespace"] = "gitlab-runner-jobs"
    return attic


@pytest.mark.parametrize(
    ("runners", "key", "message"),
    [
        # The token every nix job mounts (merge requests too) must not push: cache poisoning.
        (
            {"attic": {"token": "ci"}},
            "runners.attic.token",
            "token 'ci' may push main, and every nix job mounts it, merge requests and "
            "unprotected branches included",
        ),
        (
            {
                "attic": {"token": "ro", "push_token": "ci"},
                "types": {"nix_protected": {"enabled": False}},
            },
            "runners.attic.push_token",
            "is mounted only into nix_protected jobs, and runners.types.nix_protected is disabled",
        ),
        (
            {
                "token_source": "gitlab_api",
                "gitlab_api": {"group_id": 5},
                "types": {"nix_protected": {"gitlab": {"access_level": "not_protected"}}},
            },
            "runners.types.nix_protected.gitlab.access_level",
            "the runner that gets the Attic push token takes only jobs of protected branches "
            "and tags; allowed: ref_protected",
        ),
        (
            {"attic": {"token": None, "unprotected_push": True}},
            "runners.attic.unprotected_push",
            "needs runners.attic.token",
        ),
        (
            {"attic": {"token": "ro", "push_cache": "main"}},
            "runners.attic.push_cache",
            "pushing needs runners.attic.push_token",
        ),
    ],
)
def test_only_protected_refs_push_unless_the_config_says_otherwise(
    tmp_path: Path, runners: dict[str, Any], key: str, message: str
):
    errors = config_errors(tmp_path, config_with(attic=_pull_and_push_tokens(), runners=runners))
    assert any(line.startswith(f"{key}: {message}") for line in errors), errors


@pytest.mark.parametrize(
    "wiring",
    [
        {"token": "ro", "push_token": "ci"},  # the default split
        {"token": "ci", "unprotected_push": True},  # the documented opt-out
    ],
)
def test_the_split_and_the_opt_out_are_valid(tmp_path: Path, wiring: dict[str, Any]):
    from config_model.loader import load_config
    from tests.support.config_files import write_config

    load_config(
        write_config(
            tmp_path, config_with(attic=_pull_and_push_tokens(), runners={"attic": wiring})
        )
    )
