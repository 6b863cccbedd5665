"""Change requests against the fake GitLab: exactly the edited values change, on a new branch,
through a merge request; a stale or invalid change writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.changes import (
    ChangeRequest,
    ConfigProject,
    Requester,
    draft,
    submit,
)
from dashboard.gitlab_client import GitLabClient, RepositoryFile
from tests.dashboard.web_support import PROJECT, PUBLIC_URL, Clock
from tests.dashboard.write_support import (
    CONFIG_FILE,
    DOCKER_LINE,
    ORIGINAL,
    WriteWorld,
    write_world,
)

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TARGET = ConfigProject(
    project=PROJECT, file_path=CONFIG_FILE, default_branch="main", public_url=PUBLIC_URL
)


@pytest.fixture
def world() -> WriteWorld:
    return write_world(Clock())


@pytest.fixture
def alice(world: WriteWorld) -> GitLabClient:
    return world.client(world.tokens(world.alice).access_token)


def request(last_commit_id: str, **overrides) -> ChangeRequest:
    fields = {
        "target": TARGET,
        "requester": Requester(user_id=1, username="alice"),
        "environment": "dev",
        "scope": "base",
        "values": {"runners.types.docker.concurrent": "12"},
        "reason": "docker jobs queue at 9 a.m.",
        "last_commit_id": last_commit_id,
    }
    return ChangeRequest(**{**fields, **overrides})


async def test_the_merge_request_holds_the_file_with_only_the_edited_value(world, alice):
    preview = await draft(
        alice,
        TARGET,
        environment="dev",
        scope="base",
        values={"runners.types.docker.concurrent": "12"},
    )
    assert preview.submittable

    outcome = await submit(alice, request(preview.last_commit_id), now=NOW)

    assert outcome.result == "created", outcome.message
    (merge_request,) = world.merge_requests()
    branch = merge_request["source_branch"]
    assert branch.startswith("dashboard/dev/alice-20261201-120000-")
    assert merge_request["target_branch"] == "main"
    assert merge_request["title"] == (
        "dev: set runners.types.docker.concurrent to 12 (runner dashboard)"
    )
    assert merge_request["author"]["username"] == "alice"
    assert outcome.merge_request_url == merge_request["web_url"]
    assert world.file(branch) == ORIGINAL.replace(DOCKER_LINE, DOCKER_LINE.replace("10", "12"))
    assert world.file("main") == ORIGINAL  # never pushed to the default branch
    assert merge_request["state"] == "opened"  # never merged


async def test_the_description_says_who_what_why_and_links_back(world, alice):
    preview = await draft(
        alice,
        TARGET,
        environment="dev",
        scope="environment",
        values={"runners.types.docker.concurrent": "12"},
    )
    reason = "@all see ```this``` [link](https://evil.example)"

    await submit(
        alice, request(preview.last_commit_id, scope="environment", reason=reason), now=NOW
    )

    (merge_request,) = world.merge_requests()
    description = merge_request["description"]
    assert description.startswith(
        f"Requested by @alice from the runner dashboard ({PUBLIC_URL}/e/dev/drift)."
    )
    assert "**Applies to:** environment `dev` only (`environments.dev.overrides`)" in description
    # The reason sits in a fence no backtick run inside it can close: no mention, no link.
    assert f"````text\n{reason}\n````" in description
    assert (
        "| `runners.types.docker.concurrent` | 10 | 12 "
        "| `environments.dev.overrides.runners.types.docker.concurrent` |"
    ) in description
    assert "+            concurrent: 12" in description
    assert "The dashboard never merges" in description


async def test_a_stale_preview_is_a_conflict_and_writes_nothing(world, alice):
    preview = await draft(alice, TARGET, environment="dev", scope="base", values={})
    world.push_to_main(ORIGINAL.replace("rocky9: {concurrent: 4}", "rocky9: {concurrent: 5}"))
    before = world.writes()

    outcome = await submit(alice, request(preview.last_commit_id), now=NOW)

    assert outcome.result == "conflict"
    assert outcome.message.startswith(
        "organization.yaml changed on the default branch since your preview (now at commit "
    )
    assert world.writes() == before
    assert world.merge_requests() == []


class StaleReads(GitLabClient):
    """Reads the file as it was, while main moved on: only GitLab's own last_commit_id check
    can catch this one."""

    def __init__(self, inner: GitLabClient, old: RepositoryFile) -> None:
        super().__init__(inner.base_url, None, http=inner._http)
        self._inner, self._old = inner, old

    async def file(self, project, path, *, ref):
        return self._old

    async def create_commit(self, *args, **kwargs):
        return await self._inner.create_commit(*args, **kwargs)


async def test_gitlab_refusing_a_stale_last_commit_id_is_a_conflict(world, alice):
    old = await alice.file(PROJECT, CONFIG_FILE, ref="main")
    world.push_to_main(ORIGINAL.replace("rocky9: {concurrent: 4}", "rocky9: {concurrent: 5}"))

    outcome = await submit(StaleReads(alice, old), request(old.last_commit_id), now=NOW)

    assert outcome.result == "conflict"
    assert world.merge_requests() == []
    assert world.file("main") != ORIGINAL  # the other change stands


async def test_an_invalid_value_gets_the_loaders_message_and_no_write(world, alice):
    before = world.writes()
    preview = await draft(
        alice,
        TARGET,
        environment="prod",
        scope="environment",
        values={"runners.types.docker.concurrent": "0"},
    )
    outcome = await submit(
        alice,
        request(
            preview.last_commit_id,
            environment="prod",
            scope="environment",
            values={"runners.types.docker.concurrent": "0"},
        ),
        now=NOW,
    )

    assert not preview.submittable
    (message,) = preview.messages["runners.types.docker.concurrent"]
    assert message.startswith(
        "environments.prod.overrides.runners.types.docker.concurrent: input should be greater "
        "than or equal to 1 (got 0) [config/organization.yaml:"
    )
    assert outcome.result == "invalid"
    assert outcome.draft is not None
    assert outcome.draft.messages == preview.messages
    assert world.writes() == before


async def test_no_reason_no_read_no_write(world, alice):
    before = list(world.gitlab.requests)

    outcome = await submit(alice, request("x", reason="  "), now=NOW)

    assert (outcome.result, outcome.message) == ("invalid", "say why: the reason is required")
    assert list(world.gitlab.requests) == before


async def test_nothing_changed_opens_nothing(world, alice):
    preview = await draft(
        alice,
        TARGET,
        environment="dev",
        scope="base",
        values={"runners.types.docker.concurrent": "10"},
    )

    outcome = await submit(
        alice,
        request(preview.last_commit_id, values={"runners.types.docker.concurrent": "10"}),
        now=NOW,
    )

    assert outcome.result == "unchanged"
    assert world.merge_requests() == []


async def test_a_file_that_does_not_validate_cannot_be_edited_from_the_browser(alice):
    world = write_world(Clock(), ORIGINAL.replace("url: https://gitlab.com", "url: http://x"))
    client = world.client(world.tokens(world.alice).access_token)

    preview = await draft(client, TARGET, environment="dev", scope="base", values={})

    assert preview.current == {}
    assert preview.general[0].startswith("gitlab.url: must be an https:// URL")
