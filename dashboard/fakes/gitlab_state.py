"""The fake GitLab's state: users, groups, projects, runners, jobs, OAuth apps and tokens,
with the methods tests (and the demo) change it by while the fake serves.

Thread-safe: the fake usually serves from another thread than the test changing it.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from dashboard.fakes.gitlab_repo import Repository

RunnerStatus = Literal["online", "offline", "stale", "never_contacted"]
ACCESS_TOKEN_LIFETIME = 7200
CODE_LIFETIME = 600
# Requests remembered for tests (bounded: the demo runs for days).
REQUEST_LOG = 10_000


def iso(when: datetime | None) -> str | None:
    """GitLab's time format: ISO 8601 in UTC with milliseconds and ``Z``."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeUser:
    id: int
    username: str
    name: str
    admin: bool = False


@dataclass
class FakeGroup:
    id: int
    full_path: str
    members: dict[int, int] = field(default_factory=dict)


@dataclass
class FakeProject:
    id: int
    path_with_namespace: str
    repository: Repository
    members: dict[int, int] = field(default_factory=dict)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeRunner:
    id: int
    group_id: int | None
    description: str
    status: RunnerStatus
    paused: bool
    tags: list[str]
    version: str | None
    contacted_at: datetime | None
    ip_address: str | None
    runner_type: str = "group_type"
    run_untagged: bool = False
    locked: bool = False
    access_level: str = "not_protected"
    maximum_timeout: int | None = 10800


@dataclass
class FakeJob:
    id: int
    runner_id: int
    project_id: int
    name: str
    status: str
    stage: str
    queued_duration: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass
class OAuthApp:
    client_id: str
    secret: str
    redirect_uri: str
    scopes: frozenset[str]
    name: str


@dataclass
class Token:
    value: str
    user_id: int
    scopes: frozenset[str]
    expires_at: float | None
    client_id: str | None = None
    refresh: str | None = None
    revoked: bool = False


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    user_id: int
    scopes: frozenset[str]
    challenge: str
    expires_at: float


class GitLabState:
    """GitLab's state: users, groups, projects, runners, jobs, OAuth apps and tokens."""

    def __init__(
        self, *, url: str = "http://gitlab.invalid", clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}
        self.projects: dict[int, FakeProject] = {}
        self.runners: dict[int, FakeRunner] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.apps: dict[str, OAuthApp] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, AuthCode] = {}
        self.form_tokens: set[str] = set()
        self.signed_in: int | None = None
        self.requests: deque[tuple[str, str]] = deque(maxlen=REQUEST_LOG)
        self._ids = itertools.count(1)
        self._fail_next: list[int] = []
        self._outage: int | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def next_id(self) -> int:
        return next(self._ids)

    # --- people and places ----------------------------------------------------------------

    def add_user(self, username: str, *, name: str | None = None, admin: bool = False) -> int:
        with self.lock:
            user = FakeUser(self.next_id(), username, name or username.title(), admin)
            self.users[user.id] = user
            return user.id

    def add_group(self, full_path: str, *, group_id: int | None = None) -> int:
        with self.lock:
            group = FakeGroup(group_id or self.next_id(), full_path)
            self.groups[group.id] = group
            return group.id

    def add_project(
        self,
        path_with_namespace: str,
        *,
        files: dict[str, str],
        project_id: int | None = None,
        default_branch: str = "main",
    ) -> int:
        with self.lock:
            repo = Repository.create(
                files, default_branch=default_branch, author="root", now=self.now()
            )
            project = FakeProject(project_id or self.next_id(), path_with_namespace, repo)
            self.projects[project.id] = project
            return project.id

    def set_member_access(self, target: int | str, user_id: int, level: int | None) -> None:
        """Make ``user_id`` a member of a group or project at ``level`` (None: remove)."""
        with self.lock:
            place = self.group(target) or self.project(target)
            if place is None:
                raise KeyError(f"no group or project {target!r}")
            if level is None:
                place.members.pop(user_id, None)
            else:
                place.members[user_id] = level

    def group(self, key: int | str) -> FakeGroup | None:
        """A group by id or full path."""
        with self.lock:
            return next(
                (g for g in self.groups.values() if str(key) in (str(g.id), g.full_path)), None
            )

    def project(self, key: int | str) -> FakeProject | None:
        """A project by id or full path."""
        with self.lock:
            return next(
                (
                    p
                    for p in self.projects.values()
                    if str(key) in (str(p.id), p.path_with_namespace)
                ),
                None,
            )

    def access_level(self, user: FakeUser, place: FakeGroup | FakeProject) -> int:
        """The user's level there (administrators act as owners)."""
        return 50 if user.admin else place.members.get(user.id, 0)

    # --- OAuth ----------------------------------------------------------------------------

    def add_application(
        self,
        client_id: str,
        secret: str,
        redirect_uri: str,
        *,
        scopes: str = "read_user read_api api",
        name: str = "Runner dashboard",
    ) -> None:
        with self.lock:
            self.apps[client_id] = OAuthApp(
                client_id, secret, redirect_uri, frozenset(scopes.split()), name
            )

    def sign_in_as(self, user_id: int | None) -> None:
        """Who the consent page says is signed in (None: nobody)."""
        with self.lock:
            self.signed_in = user_id

    def personal_token(self, user_id: int, scopes: str = "read_api") -> str:
        """A token that never expires, as a personal, group or project access token."""
        value = "glpat-" + secrets.token_urlsafe(20)
        with self.lock:
            self.tokens[value] = Token(value, user_id, frozenset(scopes.split()), None)
        return value

    def issue_tokens(self, user_id: int, scopes: frozenset[str], client_id: str) -> Token:
        """A new OAuth access token with its refresh token."""
        with self.lock:
            token = Token(
                secrets.token_hex(32),
                user_id,
                scopes,
                self.clock() + ACCESS_TOKEN_LIFETIME,
                client_id,
                secrets.token_hex(32),
            )
            self.tokens[token.value] = token
            return token

    def expire_access_tokens(self) -> None:
        """Every OAuth access token expires now (refresh tokens stay valid)."""
        with self.lock:
            for token in self.tokens.values():
                if token.expires_at is not None:
                    token.expires_at = self.clock() - 1

    # --- runners and jobs -----------------------------------------------------------------

    def add_runner(
        self,
        group: int | str | None,
        description: str,
        *,
        status: RunnerStatus = "online",
        paused: bool = False,
        tags: list[str] | None = None,
        version: str | None = "18.6.1",
        ip_address: str | None = "10.42.0.17",
        runner_type: str = "group_type",
        access_level: str = "not_protected",
    ) -> int:
        with self.lock:
            owner = self.group(group) if group is not None else None
            runner = FakeRunner(
                id=self.next_id(),
                group_id=owner.id if owner else None,
                description=description,
                status=status,
                paused=paused,
                tags=list(tags or []),
                version=version,
                contacted_at=None if status == "never_contacted" else self.now(),
                ip_address=ip_address,
                runner_type=runner_type,
                access_level=access_level,
            )
            self.runners[runner.id] = runner
            return runner.id

    def set_runner_status(self, runner_id: int, status: RunnerStatus) -> None:
        with self.lock:
            runner = self.runners[runner_id]
            runner.status = status
            if status == "online":
                runner.contacted_at = self.now()

    def set_runner_paused(self, runner_id: int, paused: bool) -> None:
        with self.lock:
            self.runners[runner_id].paused = paused

    def add_job(
        self,
        runner_id: int,
        project_id: int,
        *,
        name: str = "build",
        status: str = "running",
        stage: str = "build",
        queued_duration: float | None = 3.0,
        created_at: datetime | None = None,
        duration: float | None = None,
    ) -> int:
        """A job the runner picked up; ``duration`` given: it finished that long after it
        started."""
        with self.lock:
            created = created_at or self.now()
            started = created.timestamp() + (queued_duration or 0)
            job = FakeJob(
                id=self.next_id(),
                runner_id=runner_id,
                project_id=project_id,
                name=name,
                status=status,
                stage=stage,
                queued_duration=queued_duration,
                created_at=created,
                started_at=datetime.fromtimestamp(started, UTC),
                finished_at=None
                if duration is None
                else datetime.fromtimestamp(started + duration, UTC),
            )
            self.jobs[job.id] = job
            return job.id

    def set_job_status(self, job_id: int, status: str) -> None:
        with self.lock:
            job = self.jobs[job_id]
            job.status = status
            if status not in ("running", "pending", "created") and job.finished_at is None:
                job.finished_at = self.now()

    # --- repositories ---------------------------------------------------------------------

    def commit_file(
        self, project: int | str, branch: str, path: str, content: str, *, author: str = "ada"
    ) -> str:
        """Someone else changes a file (e.g. between a read and a write); returns the commit."""
        with self.lock:
            place = self.project(project)
            if place is None:
                raise KeyError(f"no project {project!r}")
            action = {"action": "update", "file_path": path, "content": content}
            return place.repository.commit(
                branch=branch,
                start_branch=None,
                message=f"Update {path}",
                actions=[action],
                author=author,
                now=self.now(),
            ).id

    def file_text(self, project: int | str, ref: str, path: str) -> str | None:
        with self.lock:
            place = self.project(project)
            head = place.repository.head(ref) if place else None
            return head.files.get(path) if head else None

    # --- failures -------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next ``count`` REST calls answer ``status``."""
        with self.lock:
            self._fail_next.extend([status] * count)

    def set_outage(self, on: bool, status: int = 503) -> None:
        """Every REST call answers ``status`` until switched off."""
        with self.lock:
            self._outage = status if on else None

    def injected_failure(self) -> int | None:
        """The status the current REST call must fail with, if any."""
        with self.lock:
            if self._outage is not None:
                return self._outage
            return self._fail_next.pop(0) if self._fail_next else None
