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
            "is below what docker, nix, rocky8, rocky9 need at full concurrency (138",
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
    errors = config_errors(tmp_path, config_with(attic=attic, runners={"attic": {"token": "ro"}}))
    assert len(errors) == 1, errors
    assert errors[0].startswith("runners.attic.token: token 'ro' cannot pull and push 'main'")
