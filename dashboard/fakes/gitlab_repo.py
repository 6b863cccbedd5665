"""A project's repository in the fake GitLab: branches, commits and files in memory, with the
checks GitLab makes on the Commits API (a stale ``last_commit_id`` is refused, as GitLab does,
so a change made from an old read can never overwrite a newer one)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STALE_EDIT = "You are attempting to update a file that has changed since you started editing it."
_counter = itertools.count(1)


class RepositoryError(Exception):
    """GitLab refuses the commit: 400 with this message."""


def blob_id(content: str) -> str:
    """The git blob id of ``content``, as GitLab reports it."""
    data = content.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Commit:
    id: str
    parent_ids: tuple[str, ...]
    message: str
    author_name: str
    author_email: str
    created_at: datetime
    files: dict[str, str]
    # path -> id of the last commit that changed it
    last_change: dict[str, str]

    def to_json(self, web_url: str) -> dict[str, Any]:
        when = self.created_at.isoformat().replace("+00:00", "Z")
        return {
            "id": self.id,
            "short_id": self.id[:8],
            "title": self.message.splitlines()[0] if self.message else "",
            "message": self.message,
            "author_name": self.author_name,
            "author_email": self.author_email,
            "authored_date": when,
            "committer_name": self.author_name,
            "committer_email": self.author_email,
            "committed_date": when,
            "created_at": when,
            "parent_ids": list(self.parent_ids),
            "status": None,
            "web_url": f"{web_url}/-/commit/{self.id}",
        }


@dataclass
class Repository:
    """Branches pointing at commits; each commit holds the whole (small) tree."""

    default_branch: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)

    @classmethod
    def create(
        cls, files: dict[str, str], *, default_branch: str, author: str, now: datetime
    ) -> Repository:
        repo = cls(default_branch=default_branch, protected={default_branch})
        first = _new_commit(
            parents=(), message="Initial commit", author=author, now=now, files=dict(files)
        )
        first = dataclasses.replace(first, last_change=dict.fromkeys(files, first.id))
        repo.commits[first.id] = first
        repo.branches[default_branch] = first.id
        return repo

    def head(self, ref: str) -> Commit | None:
        """The commit a branch name or commit id names."""
        commit_id = self.branches.get(ref, ref)
        return self.commits.get(commit_id)

    def commit(
        self,
        *,
        branch: str,
        start_branch: str | None,
        message: str,
        actions: list[dict[str, Any]],
        author: str,
        now: datetime,
    ) -> Commit:
        """Apply ``actions`` as one commit on ``branch`` (created from ``start_branch``)."""
        if start_branch and branch in self.branches and start_branch != branch:
            raise RepositoryError(
                f"A branch called '{branch}' already exists. Switch to that branch in order "
                "to make changes"
            )
        base = self.head(start_branch or branch)
        if base is None or (start_branch and start_branch not in self.branches):
            raise RepositoryError("You can only create or edit files when you are on a branch")
        if not actions:
            raise RepositoryError("actions is missing")
        files, last_change = dict(base.files), dict(base.last_change)
        changed = [_apply(action, files, last_change) for action in actions]
        commit = _new_commit(
            parents=(base.id,), message=message, author=author, now=now, files=files
        )
        for path in changed:
            last_change[path] = commit.id
        commit = dataclasses.replace(commit, last_change=last_change)
        self.commits[commit.id] = commit
        self.branches[branch] = commit.id
        return commit


def _apply(action: dict[str, Any], files: dict[str, str], last_change: dict[str, str]) -> str:
    """Apply one Commits API action to ``files``; returns the path it changed."""
    kind, path = action.get("action"), str(action.get("file_path", ""))
    if not path:
        raise RepositoryError("actions[0][file_path] is missing")
    expected = action.get("last_commit_id")
    if kind in ("update", "delete") and path not in files:
        raise RepositoryError("A file with this name doesn't exist")
    if expected and path in last_change and last_change[path] != expected:
        raise RepositoryError(STALE_EDIT)
    if kind == "create":
        if path in files:
            raise RepositoryError("A file with this name already exists")
        files[path] = str(action.get("content", ""))
    elif kind == "update":
        files[path] = str(action.get("content", ""))
    elif kind == "delete":
        del files[path]
        last_change.pop(path, None)
    else:
        raise RepositoryError(f"actions[0][action] does not have a valid value: {kind}")
    return path


def _new_commit(
    *, parents: tuple[str, ...], message: str, author: str, now: datetime, files: dict[str, str]
) -> Commit:
    seed = f"{next(_counter)}:{parents}:{message}:{sorted(files.items())}".encode()
    return Commit(
        id=hashlib.sha1(seed, usedforsecurity=False).hexdigest(),
        parent_ids=parents,
        message=message,
        author_name=author,
        author_email=f"{author}@example.com",
        created_at=now,
        files=files,
        last_change={},
    )
