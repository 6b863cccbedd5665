"""``attic-iac health`` on the runners: each runner this config creates, found through GitLab's
API with its managers' status, against a real local HTTP server; and bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, load_config
from iac_tools.health import attic_target, runners_path
from tests.support.health_server import TOKEN, FakeServer, errors, ms, run, write_config

pytestmark = pytest.mark.usefixtures("health_env")

GROUP_RUNNERS = "/api/v4/groups/1234/runners"


def _runner(runner_id: int, description: str, *, paused: bool = False) -> dict[str, Any]:
    return {
        "id": runner_id,
        "description": description,
        "paused": paused,
        "active": not paused,
        "runner_type": "group_type",
        "status": "online",
    }


def _managers(*statuses: str) -> list[dict[str, Any]]:
    return [
        {"id": n, "system_id": f"r_{n}", "status": status, "contacted_at": "2026-01-01T00:00:00Z"}
        for n, status in enumerate(statuses, 1)
    ]


@pytest.fixture
def gitlab(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A healthy Attic and a group whose dev runners are all up (nix: 2 managers)."""
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    fake.attic()
    fake.on(
        GROUP_RUNNERS,
        body=[
            _runner(7, "acme prod docker"),
            _runner(11, "acme dev docker"),
            _runner(12, "acme dev nix"),
            _runner(13, "someone else's runner", paused=True),
        ],
    )
    fake.on("/api/v4/runners/11/managers", body=_managers("online"))
    fake.on("/api/v4/runners/12/managers", body=_managers("online", "online", "offline"))
    return fake


def run_dev(capsys: pytest.CaptureFixture[str], config: Path, fake: FakeServer, *args: str):
    return run(
        capsys, config, "--env", "dev", "--attic-url", fake.url, "--gitlab-url", fake.url, *args
    )


def test_runners_with_online_managers_pass(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert re.search(
        r"^ok   dev runner docker #11 'acme dev docker': 1 manager\(s\) online of 1 known, "
        r"1 replica\(s\) configured, \d+ ms$",
        out,
        re.M,
    ), out
    assert (
        "ok   dev runner nix #12 'acme dev nix': 2 manager(s) online of 3 known, 2 replica(s)"
        in out
    )
    api = [seen for seen in gitlab.requests if seen.path.startswith("/api/")]
    assert [urlsplit(seen.path).path for seen in api] == [
        GROUP_RUNNERS,
        "/api/v4/runners/11/managers",
        "/api/v4/runners/12/managers",
    ]
    assert parse_qs(urlsplit(api[0].path).query) == {
        "type": ["group_type"],
        "per_page": ["100"],
        "page": ["1"],
    }
    assert all(seen.headers["private-token"] == TOKEN for seen in api)
    assert all("private-token" not in seen.headers for seen in gitlab.requests[:3])
    assert TOKEN not in out + err


def test_a_runner_without_online_managers_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/11/managers", body=_managers("offline", "stale"))
    gitlab.on("/api/v4/runners/12/managers", body=[])
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    lines = errors(err)
    assert len(lines) == 2
    assert lines[0].startswith(
        "error: dev runner docker #11 'acme dev docker': 0 manager(s) online of 2 known"
    )
    assert lines[1].startswith(
        "error: dev runner nix #12 'acme dev nix': 0 manager(s) online of 0 known"
    )
    assert all(
        "are the gitlab-runner-" in line and " pods in gitlab-runners running" in line
        for line in lines
    )
    assert "ok   dev attic GET" in out


def test_fewer_online_managers_than_replicas_is_a_warning(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/12/managers", body=_managers("online", "offline"))
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert (
        "warn dev runner nix #12 'acme dev nix': 1 manager(s) online of 2 known, 2 replica(s)"
        in out
    )
    assert "fewer online than replicas" in out
    assert out.splitlines()[-1] == "health: 4 ok, 1 warning(s), 0 failed, 1 skipped"


def test_a_paused_runner_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on(
        GROUP_RUNNERS,
        body=[_runner(11, "acme dev docker", paused=True), _runner(12, "acme dev nix")],
    )
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith("error: dev runner docker #11 'acme dev docker' is paused in GitLab")
    # its managers are still reported
    assert "ok   dev runner docker #11 'acme dev docker': 1 manager(s) online" in out


def test_older_gitlab_reports_paused_as_inactive(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    inactive = {"id": 11, "description": "acme dev docker", "active": False}
    gitlab.on(GROUP_RUNNERS, body=[inactive, _runner(12, "acme dev nix")])
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    assert "is paused in GitLab" in err


def test_a_runner_paused_by_the_config_is_skipped(
    gitlab: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    runners = yaml.safe_load(EXAMPLE_CONFIG.read_text())["runners"]
    runners["types"] = {
        "docker": {"gitlab": {"paused": True, "description": "docker runner of dev"}},
        **{
            name: {"enabled": False}
            for name in ("dind", "nix", "nix_protected", "rocky8", "rocky9")
        },
    }
    runners["attic"] = {"enabled": False}
    config = write_config(tmp_path, runners=runners)
    gitlab.on(GROUP_RUNNERS, body=[_runner(21, "docker runner of dev", paused=True)])
    gitlab.on("/api/v4/runners/21/managers", body=[])
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert re.search(
        r"^skip dev runner docker #21 'docker runner of dev': 0 manager\(s\) online of 0 known, "
        r"1 replica\(s\) configured, \d+ ms; paused as configured$",
        out,
        re.MULTILINE,
    ), out


@pytest.mark.parametrize("count", [0, 2])
def test_a_runner_must_be_listed_exactly_once(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str], count: int
):
    body = [_runner(12, "acme dev nix")] + [
        _runner(30 + n, "acme dev docker") for n in range(count)
    ]
    gitlab.on(GROUP_RUNNERS, body=body)
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"error: dev runner docker {count} runners described 'acme dev docker'")
    if count:
        assert "(#30, #31)" in line


def test_runner_listing_is_paged(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    query = f"{GROUP_RUNNERS}?type=group_type&per_page=100"
    gitlab.on(
        f"{query}&page=1", body=[_runner(11, "acme dev docker")], headers={"X-Next-Page": "2"}
    )
    gitlab.on(f"{query}&page=2", body=[_runner(12, "acme dev nix")], headers={"X-Next-Page": ""})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert "ok   dev runner docker #11" in out
    assert "ok   dev runner nix #12" in out


def test_a_failing_managers_call_fails_that_runner_only(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/12/managers", 403, {"message": "403 Forbidden"})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    assert errors(err) == [
        f"error: dev runner nix #12 GET {gitlab.url}/api/v4/runners/12/managers "
        f'403 {ms(err)} ms: expected 200; body: {{"message": "403 Forbidden"}}'
    ]
    assert "ok   dev runner docker #11" in out


def test_a_listing_that_is_not_a_list_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on(GROUP_RUNNERS, body={"message": "maintenance"})
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.endswith(" ms: not a JSON list of runners")


def test_a_rejected_token_is_one_error_and_never_printed(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    # a server echoing the credential back must not get it into the output either
    gitlab.on(GROUP_RUNNERS, 401, {"message": f"401 Unauthorized {TOKEN}"})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"error: dev runners GET {gitlab.url}{GROUP_RUNNERS}?type=group_type")
    assert "401" in line
    assert "GITLAB_TOKEN rejected" in line
    assert "***" in line
    assert TOKEN not in out + err
    assert not any("/managers" in path for path in gitlab.paths())


def test_without_a_token_the_runner_check_is_skipped(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    code, out, err = run_dev(capsys, config, fake)
    assert code == 0, err
    assert out.count("runners") == 1
    assert "skip dev runners not checked: $GITLAB_TOKEN is not set" in out
    assert not any(path.startswith("/api/") for path in fake.paths())


def test_runners_from_existing_secrets_are_skipped(
    gitlab: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = write_config(tmp_path, runners={"token_source": "existing_secret", "gitlab_api": {}})
    data = yaml.safe_load(config.read_text())
    for spec in data["runners"]["types"].values():
        spec.pop("gitlab", None)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert "skip dev runners token_source is existing_secret" in out
    assert not any(path.startswith("/api/") for path in gitlab.paths())


@pytest.mark.parametrize(
    ("attic", "expected"),
    [
        ({}, ("https://attic.dev.example.com/", "attic.dev.example.com")),
        (
            {"ingress": {"host": "cache.example.org"}},
            ("https://cache.example.org/", "cache.example.org"),
        ),
        (
            {"api": {"endpoint": "https://nix.example.net/attic/"}},
            ("https://nix.example.net/attic/", "attic.dev.example.com"),
        ),
    ],
)
def test_the_public_url_is_derived_like_the_attic_stack(
    tmp_path: Path, attic: dict[str, Any], expected: tuple[str, str]
):
    base = yaml.safe_load(EXAMPLE_CONFIG.read_text())["attic"]
    config = load_config(write_config(tmp_path, attic={**base, **attic}))
    assert attic_target(config.environments["dev"], None) == expected


@pytest.mark.parametrize(
    ("gitlab_api", "path"),
    [
        ({"runner_type": "group_type", "group_id": "77"}, "/groups/77/runners?type=group_type"),
        (
            {"runner_type": "project_type", "project_id": "88"},
            "/projects/88/runners?type=project_type",
        ),
        ({"runner_type": "instance_type"}, "/runners/all?type=instance_type"),
    ],
)
def test_runners_are_listed_in_the_scope_they_are_created_in(
    tmp_path: Path, gitlab_api: dict[str, str], path: str
):
    config = load_config(write_config(tmp_path, runners={"gitlab_api": gitlab_api}))
    assert runners_path(config.environments["dev"]) == f"{path}&per_page=100"


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, nothing sent


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--env", "qa"], "--env: unknown environment (got 'qa'; allowed: dev, staging, prod)"),
        (["--attic-url", "URL"], "--attic-url: give --env too"),
        (["--env", "dev", "--attic-url", "ftp://x"], "--attic-url: must be an http(s):// URL"),
        (["--gitlab-url", "gitlab.com"], "--gitlab-url: must be an http(s):// URL"),
        (["--timeout", "0"], "--timeout: must be more than 0 seconds"),
        (["--timeout", "nan"], "--timeout: must be more than 0 seconds"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    fake: FakeServer,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    problem: str,
):
    fake.attic()
    args = [fake.url if a == "URL" else a for a in args]
    code, out, err = run(capsys, config, *args)
    assert code == 2
    assert out == ""
    assert errors(err)[0].startswith(f"error: {problem}")
    assert fake.requests == []
