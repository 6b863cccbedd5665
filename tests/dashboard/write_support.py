"""The fake GitLab the write side's tests share: the config project holding the example
organization.yaml, an operator (alice, also Maintainer of the runners' group, as pausing a group
runner needs), a viewer (bob), the dashboard's read token, and clients on it in-process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from config_model.loader import EXAMPLE_CONFIG
from dashboard.fakes.gitlab import FakeGitLab
from dashboard.fakes.gitlab_state import Token
from dashboard.gitlab_client import GitLabClient
from dashboard.session import Tokens
from tests.dashboard.web_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    GITLAB_URL,
    GROUP,
    PROJECT,
    PUBLIC_URL,
    READ_TOKEN,
    Clock,
)

CONFIG_FILE = "config/organization.yaml"
ORIGINAL = EXAMPLE_CONFIG.read_text()
# The docker type's concurrent line of ORIGINAL, the value the write tests edit.
DOCKER_LINE = (
    "      concurrent: 10                 # jobs at once per manager: the capacity ceiling"
)
WRITE_SCOPES = frozenset({"read_user", "read_api", "api"})
READ_SCOPES = frozenset({"read_user", "read_api"})


@dataclass
class WriteWorld:
    gitlab: FakeGitLab
    alice: int
    bob: int
    group: int
    project: int

    def tokens(self, user_id: int, scopes: frozenset[str] = WRITE_SCOPES) -> Tokens:
        """OAuth tokens the fake GitLab issued, as the session keeps them."""
        token = self.gitlab.issue_tokens(user_id, scopes, CLIENT_ID)
        return Tokens(
            access_token=token.value,
            refresh_token=token.refresh,
            expires_at=token.expires_at or 0.0,
            scopes=scopes,
        )

    def client(self, token: str | None = None) -> GitLabClient:
        transport = httpx.ASGITransport(app=self.gitlab.build_app())
        return GitLabClient(GITLAB_URL, token, transport=transport)

    def file(self, ref: str = "main") -> str:
        text = self.gitlab.file_text(self.project, ref, CONFIG_FILE)
        assert text is not None
        return text

    def push_to_main(self, content: str) -> None:
        """Someone else changes organization.yaml on main."""
        self.gitlab.commit_file(self.project, "main", CONFIG_FILE, content, author="carol")

    def writes(self) -> list[tuple[str, str]]:
        """(method, path) of every state-changing call GitLab received."""
        return [(m, p) for m, p in self.gitlab.requests if m in ("POST", "PUT", "DELETE")]

    def merge_requests(self) -> list[dict]:
        project = self.gitlab.project(self.project)
        assert project is not None
        return project.merge_requests


def write_world(clock: Clock, config_text: str = ORIGINAL) -> WriteWorld:
    gitlab = FakeGitLab(url=GITLAB_URL, clock=clock)
    gitlab.add_application(CLIENT_ID, CLIENT_SECRET, f"{PUBLIC_URL}/auth/callback")
    group = gitlab.add_group(GROUP)
    project = gitlab.add_project(PROJECT, files={CONFIG_FILE: config_text})
    alice, bob = gitlab.add_user("alice"), gitlab.add_user("bob")
    reader = gitlab.add_user("dashboard-reader")
    for user, group_level, project_level in ((alice, 40, 40), (bob, 20, 20), (reader, 20, 20)):
        gitlab.set_member_access(group, user, group_level)
        gitlab.set_member_access(project, user, project_level)
    gitlab.tokens[READ_TOKEN] = Token(READ_TOKEN, reader, frozenset({"read_api"}), None)
    gitlab.sign_in_as(alice)
    return WriteWorld(gitlab=gitlab, alice=alice, bob=bob, group=group, project=project)
