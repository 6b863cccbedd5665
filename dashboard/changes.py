"""Change requests: an operator's edit of ``organization.yaml`` becomes a branch, one commit and
a merge request in the config project, made with the operator's own GitLab token (GitLab checks
their permissions and records them as the author). Nothing is ever merged or pushed to the
default branch: the pipeline plans the merge request and a human merges it.

The commit names the ``last_commit_id`` the operator previewed, so an edit made on an older
version of the file fails cleanly instead of overwriting someone else's change.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dashboard.config_edit import Edit, EditError, EditResult, Scope, apply_edits
from dashboard.gitlab_client import GitLabClient, GitLabError, RepositoryFile

BRANCH_PREFIX = "dashboard/"
MAX_REASON = 2000
# What GitLab answers (400) when last_commit_id no longer names the file's last change.
_STALE = "has changed since you started editing it"
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

Result = Literal["created", "invalid", "conflict", "unchanged", "error"]


@dataclass(frozen=True, kw_only=True)
class ConfigProject:
    """Where ``organization.yaml`` lives and where the dashboard links back to."""

    project: str
    file_path: str
    default_branch: str
    public_url: str


@dataclass(frozen=True, kw_only=True)
class Requester:
    """Who asks (from the session); GitLab's own record of the author is the token's owner."""

    user_id: int
    username: str


@dataclass(frozen=True, kw_only=True)
class Preview:
    """An edit of the file as the default branch has it at ``last_commit_id``."""

    edit: EditResult
    last_commit_id: str


@dataclass(frozen=True, kw_only=True)
class ChangeOutcome:
    result: Result
    message: str
    merge_request_url: str | None = None
    branch: str | None = None
    edit: EditResult | None = None


async def read_config(client: GitLabClient, target: ConfigProject) -> RepositoryFile:
    """``organization.yaml`` at the head of the default branch."""
    return await client.file(target.project, target.file_path, ref=target.default_branch)


async def preview(
    client: GitLabClient,
    target: ConfigProject,
    *,
    environment: str,
    scope: Scope,
    edits: Sequence[Edit],
) -> Preview:
    """The diff and the loader's verdict of ``edits`` on the current file; writes nothing."""
    current = await read_config(client, target)
    result = apply_edits(
        current.content,
        path=Path(target.file_path),
        environment=environment,
        scope=scope,
        edits=edits,
    )
    return Preview(edit=result, last_commit_id=current.last_commit_id)


@dataclass(frozen=True, kw_only=True)
class ChangeRequest:
    """What an operator submitted: edits for one environment, why, and the version of the file
    they previewed."""

    target: ConfigProject
    requester: Requester
    environment: str
    scope: Scope
    edits: tuple[Edit, ...]
    reason: str
    last_commit_id: str


class RefusedError(Exception):
    """Stop a submission with this outcome (nothing more is written)."""

    def __init__(self, outcome: ChangeOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


async def submit(client: GitLabClient, request: ChangeRequest, *, now: datetime) -> ChangeOutcome:
    """Re-apply the edits to the file the operator previewed and open a merge request; an
    invalid result or a newer file writes nothing."""
    try:
        result = await _checked(client, request)
        branch = branch_name(request.requester, request.environment, now)
        title = merge_request_title(request.environment, request.edits)
        await _commit(client, request, branch, title, result)
        merge_request = await _merge_request(client, request, branch, title, result)
    except RefusedError as refused:
        return refused.outcome
    return ChangeOutcome(
        result="created",
        message=f"merge request !{merge_request.get('iid')} opened",
        merge_request_url=str(merge_request.get("web_url", "")),
        branch=branch,
        edit=result,
    )


async def _checked(client: GitLabClient, request: ChangeRequest) -> EditResult:
    """The edited file, if there is a reason, the file is still the one previewed, the edit
    applies and the result validates and changes something."""
    why = request.reason.strip()
    if not why:
        raise RefusedError(
            ChangeOutcome(result="invalid", message="say why: the reason is required")
        )
    if len(why) > MAX_REASON:
        message = f"the reason is over {MAX_REASON} characters"
        raise RefusedError(ChangeOutcome(result="invalid", message=message))
    current = await read_config(client, request.target)
    if current.last_commit_id != request.last_commit_id:
        raise RefusedError(_conflict(current.last_commit_id))
    try:
        result = apply_edits(
            current.content,
            path=Path(request.target.file_path),
            environment=request.environment,
            scope=request.scope,
            edits=request.edits,
        )
    except EditError as error:
        raise RefusedError(ChangeOutcome(result="invalid", message=str(error))) from None
    if not result.valid:
        message = "the edited file does not validate"
        raise RefusedError(ChangeOutcome(result="invalid", message=message, edit=result))
    if not result.changed:
        outcome = ChangeOutcome(result="unchanged", message="nothing to change", edit=result)
        raise RefusedError(outcome)
    return result


async def _commit(
    client: GitLabClient, request: ChangeRequest, branch: str, title: str, result: EditResult
) -> None:
    """One commit on a new branch started from the default branch, never on it."""
    target = request.target
    if branch == target.default_branch or not branch.startswith(BRANCH_PREFIX):
        raise ValueError(f"refusing to write to {branch!r}")
    message = (
        f"{title}\n\nWhy: {request.reason.strip()}\n\n"
        f"Requested by @{request.requester.username} from the runner dashboard."
    )
    action = {
        "action": "update",
        "file_path": target.file_path,
        "content": result.text,
        "last_commit_id": request.last_commit_id,
    }
    try:
        await client.create_commit(
            target.project,
            branch=branch,
            start_branch=target.default_branch,
            message=message,
            actions=[action],
        )
    except GitLabError as error:
        if error.status == 400 and _STALE in error.message:
            raise RefusedError(_conflict(None)) from None
        outcome = ChangeOutcome(result="error", message=error.message, edit=result)
        raise RefusedError(outcome) from None


async def _merge_request(
    client: GitLabClient, request: ChangeRequest, branch: str, title: str, result: EditResult
) -> dict[str, Any]:
    try:
        return await client.create_merge_request(
            request.target.project,
            source_branch=branch,
            target_branch=request.target.default_branch,
            title=title,
            description=merge_request_description(request, result),
        )
    except GitLabError as error:
        message = f"branch {branch} was pushed but the merge request failed: {error.message}"
        outcome = ChangeOutcome(result="error", message=message, branch=branch, edit=result)
        raise RefusedError(outcome) from None


def _conflict(newer: str | None) -> ChangeOutcome:
    where = f" (now at commit {newer[:8]})" if newer else ""
    return ChangeOutcome(
        result="conflict",
        message=f"organization.yaml changed on the default branch since your preview{where}; "
        "nothing was written. Preview again to see the new file with your edit.",
    )


def branch_name(requester: Requester, environment: str, now: datetime) -> str:
    """A new branch per request: ``dashboard/<env>/<user>-<utc time>-<random>``."""
    user = _REF_UNSAFE.sub("-", requester.username).strip(".-") or str(requester.user_id)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"{BRANCH_PREFIX}{environment}/{user}-{stamp}-{secrets.token_hex(3)}"


def merge_request_title(environment: str, edits: Sequence[Edit]) -> str:
    if len(edits) == 1:
        (edit,) = edits
        return f"{environment}: set {edit.key} to {_show(edit.value)} (runner dashboard)"
    return f"{environment}: change {len(edits)} runner settings (runner dashboard)"


def merge_request_description(request: ChangeRequest, result: EditResult) -> str:
    """Who asked, what changed, why (in a code block, so it cannot mention or link anyone), and
    where to look in the dashboard."""
    env = request.environment
    where = (
        f"environment `{env}` only (`environments.{env}.overrides`)"
        if request.scope == "environment"
        else "the base config (every environment that does not override it)"
    )
    rows = "\n".join(f"| `{key}` | `{path}` |" for key, path in result.written.items())
    back = f"{request.target.public_url.rstrip('/')}/e/{env}/drift"
    return "\n".join(
        [
            f"Requested by @{request.requester.username} from the runner dashboard ({back}).",
            "",
            f"**Applies to:** {where}",
            "",
            "**Why:**",
            "",
            _fence(request.reason.strip(), "text"),
            "",
            "| setting | written at |",
            "| --- | --- |",
            rows,
            "",
            _fence(result.diff, "diff"),
            "",
            "The dashboard never merges: review the plan of this merge request's pipeline, "
            "then merge it to apply.",
        ]
    )


def _fence(text: str, language: str) -> str:
    """``text`` in a code block whose fence no run of backticks inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return str(value)
