"""Change requests: an operator's edit of ``organization.yaml`` becomes a branch, one commit and
a merge request in the config project, made with the operator's own GitLab token (GitLab checks
their permissions and records them as the author). Nothing is ever merged or pushed to the
default branch: the pipeline plans the merge request and a human merges it.

The commit names the ``last_commit_id`` the operator previewed, so an edit made on an older
version of the file fails cleanly instead of overwriting someone else's change.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from config_model.loader import ConfigError, load_config_text
from dashboard.config_edit import (
    Edit,
    EditError,
    EditResult,
    Scope,
    Value,
    apply_edits,
    current_values,
    parse_form,
)
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
class Draft:
    """The change form's values applied to the file as one commit of the default branch has
    it: the values before, the edits, and the verdict (parse errors, the loader's messages
    beside their fields, the diff). ``problems`` without ``result``: the file itself does not
    validate or cannot be edited exactly, so there is nothing to edit from a browser."""

    last_commit_id: str
    current: dict[str, Value]
    edits: tuple[Edit, ...] = ()
    parse_errors: dict[str, str] = field(default_factory=dict)
    result: EditResult | None = None
    problems: tuple[str, ...] = ()

    @property
    def messages(self) -> dict[str, tuple[str, ...]]:
        """Every message about a field, by field."""
        found = dict(self.result.field_problems) if self.result else {}
        for key, message in self.parse_errors.items():
            found[key] = (message, *found.get(key, ()))
        return found

    @property
    def general(self) -> tuple[str, ...]:
        """Messages about no single field."""
        return self.problems + (self.result.problems if self.result else ())

    @property
    def submittable(self) -> bool:
        """Valid, changes something, nothing left to fix."""
        result = self.result
        return bool(result and result.valid and result.changed and not self.parse_errors)


def draft_of(
    file: RepositoryFile, *, environment: str, scope: Scope, values: Mapping[str, str]
) -> Draft:
    """:class:`Draft` of ``values`` on ``file`` (no GitLab call)."""
    path = Path(file.path)
    try:
        loaded = load_config_text(file.content, path)
    except ConfigError as error:
        return Draft(last_commit_id=file.last_commit_id, current={}, problems=tuple(error.lines))
    resolved = loaded.environments.get(environment)
    if resolved is None:
        problem = f"environment {environment!r} is not in {path} on the default branch"
        return Draft(last_commit_id=file.last_commit_id, current={}, problems=(problem,))
    current = current_values(resolved.config)
    edits, errors = parse_form(values, current)
    base = Draft(
        last_commit_id=file.last_commit_id,
        current=current,
        edits=tuple(edits),
        parse_errors=errors,
    )
    try:
        result = apply_edits(
            file.content, path=path, environment=environment, scope=scope, edits=edits
        )
    except EditError as error:
        return dataclasses.replace(base, problems=(str(error),))
    return dataclasses.replace(base, result=result)


@dataclass(frozen=True, kw_only=True)
class ChangeOutcome:
    result: Result
    message: str
    merge_request_url: str | None = None
    branch: str | None = None
    draft: Draft | None = None


async def read_config(client: GitLabClient, target: ConfigProject) -> RepositoryFile:
    """``organization.yaml`` at the head of the default branch."""
    return await client.file(target.project, target.file_path, ref=target.default_branch)


async def draft(
    client: GitLabClient,
    target: ConfigProject,
    *,
    environment: str,
    scope: Scope,
    values: Mapping[str, str],
) -> Draft:
    """The preview: ``values`` on the current file; writes nothing."""
    file = await read_config(client, target)
    return draft_of(file, environment=environment, scope=scope, values=values)


@dataclass(frozen=True, kw_only=True)
class ChangeRequest:
    """What an operator submitted: form values for one environment, why, and the version of
    the file they previewed."""

    target: ConfigProject
    requester: Requester
    environment: str
    scope: Scope
    values: Mapping[str, str]
    reason: str
    last_commit_id: str


class RefusedError(Exception):
    """Stop a submission with this outcome (nothing more is written)."""

    def __init__(self, outcome: ChangeOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


async def submit(client: GitLabClient, request: ChangeRequest, *, now: datetime) -> ChangeOutcome:
    """Re-apply the form to the file the operator previewed and open a merge request; a
    missing reason, a newer file or an invalid result writes nothing."""
    try:
        checked, result = await _checked(client, request)
        branch = branch_name(request.requester, request.environment, now)
        title = merge_request_title(request.environment, checked.edits)
        await _commit(
            client, request, branch=branch, title=title, checked=checked, text=result.text
        )
        merge_request = await _merge_request(
            client, request, branch=branch, title=title, checked=checked
        )
    except RefusedError as refused:
        return refused.outcome
    return ChangeOutcome(
        result="created",
        message=f"merge request !{merge_request.get('iid')} opened",
        merge_request_url=str(merge_request.get("web_url", "")),
        branch=branch,
        draft=checked,
    )


async def _checked(client: GitLabClient, request: ChangeRequest) -> tuple[Draft, EditResult]:
    """The draft and its edited file, if there is a reason, the file is still the one
    previewed, and the edit validates and changes something."""
    why = request.reason.strip()
    if not why:
        message = "say why: the reason is required"
        raise RefusedError(ChangeOutcome(result="invalid", message=message))
    if len(why) > MAX_REASON:
        message = f"the reason is over {MAX_REASON} characters"
        raise RefusedError(ChangeOutcome(result="invalid", message=message))
    file = await read_config(client, request.target)
    if file.last_commit_id != request.last_commit_id:
        raise RefusedError(_conflict(file.last_commit_id))
    checked = draft_of(
        file, environment=request.environment, scope=request.scope, values=request.values
    )
    result = checked.result
    if result is None or not checked.submittable:
        unchanged = result is not None and result.valid and not result.changed
        outcome = ChangeOutcome(
            result="unchanged" if unchanged and not checked.parse_errors else "invalid",
            message="nothing to change" if unchanged else "the edited file does not validate",
            draft=checked,
        )
        raise RefusedError(outcome)
    return checked, result


async def _commit(
    client: GitLabClient,
    request: ChangeRequest,
    *,
    branch: str,
    title: str,
    checked: Draft,
    text: str,
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
        "content": text,
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
        outcome = ChangeOutcome(result="error", message=error.message, draft=checked)
        raise RefusedError(outcome) from None


async def _merge_request(
    client: GitLabClient, request: ChangeRequest, *, branch: str, title: str, checked: Draft
) -> dict[str, Any]:
    try:
        return await client.create_merge_request(
            request.target.project,
            source_branch=branch,
            target_branch=request.target.default_branch,
            title=title,
            description=merge_request_description(request, checked),
        )
    except GitLabError as error:
        message = f"branch {branch} was pushed but the merge request failed: {error.message}"
        outcome = ChangeOutcome(result="error", message=message, branch=branch, draft=checked)
        raise RefusedError(outcome) from None


def _conflict(newer: str | None) -> ChangeOutcome:
    where = f" (now at commit {newer[:8]})" if newer else ""
    return ChangeOutcome(
        result="conflict",
        message=f"organization.yaml changed on the default branch since your preview{where}; "
        "nothing was written. Preview again to see your edit on the new file.",
    )


def branch_name(requester: Requester, environment: str, now: datetime) -> str:
    """A new branch per request: ``dashboard/<env>/<user>-<utc time>-<random>``."""
    user = _REF_UNSAFE.sub("-", requester.username).strip(".-") or str(requester.user_id)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"{BRANCH_PREFIX}{environment}/{user}-{stamp}-{secrets.token_hex(3)}"


def merge_request_title(environment: str, edits: Sequence[Edit]) -> str:
    if len(edits) == 1:
        (edit,) = edits
        return f"{environment}: set {edit.key} to {show(edit.value)} (runner dashboard)"
    return f"{environment}: change {len(edits)} runner settings (runner dashboard)"


def merge_request_description(request: ChangeRequest, checked: Draft) -> str:
    """Who asked, what changed, why (in a code block, so it cannot mention or link anyone), and
    where to look in the dashboard."""
    env = request.environment
    where = (
        f"environment `{env}` only (`environments.{env}.overrides`)"
        if request.scope == "environment"
        else "the base config (every environment that does not override it)"
    )
    result = checked.result
    written = result.written if result else {}
    rows = [
        f"| `{edit.key}` | {show(checked.current.get(edit.key))} | {show(edit.value)} "
        f"| `{written.get(edit.key, '')}` |"
        for edit in checked.edits
    ]
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
            "| setting | was | now | written at |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            _fence(result.diff if result else "", "diff"),
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


def show(value: Any) -> str:
    """A setting's value as the form and the merge request write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value)
    return "—" if value is None else str(value)
