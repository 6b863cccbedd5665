"""The fake GitLab's REST API (``/api/v4``): the endpoints the dashboard calls, with GitLab's
response shapes, pagination headers, token scopes, access levels and error bodies.

Routes match the raw path segment by segment, as GitLab does: a group or project path and a
file path are one URL-encoded segment each (``acme%2Fci``).

Long because it is every endpoint the dashboard and issue 18 use, each a few lines.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from dashboard.fakes.gitlab_repo import Commit, RepositoryError, blob_id
from dashboard.fakes.gitlab_state import (
    FakeGroup,
    FakeJob,
    FakeProject,
    FakeRunner,
    FakeUser,
    GitLabState,
    iso,
)

READ = frozenset({"read_api", "api"})
WRITE = frozenset({"api"})
RUNNER_WRITE = frozenset({"api", "manage_runner"})
USER_READ = frozenset({"read_user", "read_api", "api"})
MAINTAINER, DEVELOPER, REPORTER = 40, 30, 20
INSUFFICIENT_SCOPE = "The request requires higher privileges than provided by the access token."


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _message(status: int, text: str) -> ApiError:
    return ApiError(status, {"message": text})


NOT_FOUND = _message(404, "404 Not found")
FORBIDDEN = _message(403, "403 Forbidden")


class Call:
    """One API request: who calls, with which token scopes, and its decoded path segments."""

    def __init__(
        self,
        gitlab: GitLabState,
        request: Request,
        user: FakeUser,
        scopes: frozenset[str],
        body: dict[str, Any],
    ) -> None:
        self.gitlab, self.request, self.user, self.scopes = gitlab, request, user, scopes
        self.body = body

    def need(self, scopes: frozenset[str]) -> None:
        if not self.scopes & scopes:
            needed = "api" if scopes in (WRITE, RUNNER_WRITE) else "read_api"
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": INSUFFICIENT_SCOPE,
                    "scope": needed,
                },
            )

    def group(self, key: str, level: int = 1) -> FakeGroup:
        group = self.gitlab.group(key)
        if group is None or self.gitlab.access_level(self.user, group) < 1:
            raise _message(404, "404 Group Not Found")
        if self.gitlab.access_level(self.user, group) < level:
            raise FORBIDDEN
        return group

    def project(self, key: str, level: int = 1) -> FakeProject:
        project = self.gitlab.project(key)
        if project is None or self.gitlab.access_level(self.user, project) < 1:
            raise _message(404, "404 Project Not Found")
        if self.gitlab.access_level(self.user, project) < level:
            raise FORBIDDEN
        return project

    def runner(self, runner_id: str) -> FakeRunner:
        """A runner the caller may manage: administrators, or Maintainers of its group."""
        runner = self.gitlab.runners.get(int(runner_id)) if runner_id.isdigit() else None
        if runner is None:
            raise NOT_FOUND
        group = self.gitlab.groups.get(runner.group_id) if runner.group_id else None
        allowed = self.user.admin or (
            group is not None and self.gitlab.access_level(self.user, group) >= MAINTAINER
        )
        if not allowed:
            raise FORBIDDEN
        return runner


Handler = Callable[[Call, list[str]], Response]


async def _body(request: Request) -> dict[str, Any]:
    """The JSON or form body (GitLab accepts both)."""
    if request.method not in ("POST", "PUT"):
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(await request.form())


async def dispatch(request: Request) -> Response:
    gitlab: GitLabState = request.app.state.gitlab
    raw = request.scope.get("raw_path") or request.url.path.encode()
    segments = [unquote(s) for s in raw.decode().split("?")[0].split("/")[3:]]
    with gitlab.lock:
        gitlab.requests.append((request.method, "/" + "/".join(segments)))
    failure = gitlab.injected_failure()
    if failure is not None:
        return JSONResponse({"message": f"{failure} Service Unavailable"}, status_code=failure)
    body = await _body(request)
    try:
        user, scopes = _authenticate(gitlab, request)
        for method, pattern, handler in ROUTES:
            params = _match(pattern, segments)
            if method == request.method and params is not None:
                with gitlab.lock:
                    return handler(Call(gitlab, request, user, scopes, body), params)
        raise _message(404, "404 Not Found")
    except ApiError as error:
        return JSONResponse(error.body, status_code=error.status)


def _authenticate(gitlab: GitLabState, request: Request) -> tuple[FakeUser, frozenset[str]]:
    header = request.headers.get("authorization", "")
    value = header[7:] if header.lower().startswith("bearer ") else None
    value = value or request.headers.get("private-token")
    with gitlab.lock:
        token = gitlab.tokens.get(value or "")
        if token is None or token.revoked or token.user_id not in gitlab.users:
            raise _message(401, "401 Unauthorized")
        if token.expires_at is not None and token.expires_at <= gitlab.clock():
            raise ApiError(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "Token is expired. You can either do re-authorization "
                    "or token refresh.",
                },
            )
        return gitlab.users[token.user_id], token.scopes


def _match(pattern: tuple[str, ...], segments: list[str]) -> list[str] | None:
    if len(pattern) != len(segments):
        return None
    params = []
    for expected, actual in zip(pattern, segments, strict=True):
        if expected == "*":
            params.append(actual)
        elif expected != actual:
            return None
    return params


# --- pagination -----------------------------------------------------------------------------


def _paginate(call: Call, items: list[dict[str, Any]]) -> JSONResponse:
    """One page of ``items`` with GitLab's offset pagination headers and Link."""
    query = call.request.query_params
    per_page = max(1, min(100, _int(query.get("per_page"), 20)))
    page = max(1, _int(query.get("page"), 1))
    pages = max(1, math.ceil(len(items) / per_page))
    headers = {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-total": str(len(items)),
        "x-total-pages": str(pages),
        "x-next-page": str(page + 1) if page < pages else "",
        "x-prev-page": str(page - 1) if page > 1 else "",
    }
    # Links point where the request came in, as GitLab's own URL would.
    base = f"{str(call.request.base_url).rstrip('/')}{call.request.url.path}"

    def link(number: int, rel: str) -> str:
        params = {**dict(query), "page": str(number), "per_page": str(per_page)}
        return f'<{base}?{urlencode(params)}>; rel="{rel}"'

    links = [link(page + 1, "next")] if page < pages else []
    links += [link(page - 1, "prev")] if page > 1 else []
    headers["link"] = ", ".join([*links, link(1, "first"), link(pages, "last")])
    start = (page - 1) * per_page
    return JSONResponse(items[start : start + per_page], headers=headers)


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


# --- users and members ----------------------------------------------------------------------


def _user_json(gitlab: GitLabState, user: FakeUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"{gitlab.url}/{user.username}",
    }


def current_user(call: Call, params: list[str]) -> Response:
    call.need(USER_READ)
    body = {
        **_user_json(call.gitlab, call.user),
        "is_admin": call.user.admin,
        "email": f"{call.user.username}@example.com",
    }
    return JSONResponse(body)


def group_member(call: Call, params: list[str]) -> Response:
    call.need(READ)
    return _member(call, call.group(params[0]).members, params[1])


def project_member(call: Call, params: list[str]) -> Response:
    call.need(READ)
    return _member(call, call.project(params[0]).members, params[1])


def _member(call: Call, members: dict[int, int], user_id: str) -> Response:
    uid = int(user_id) if user_id.isdigit() else -1
    if uid not in members or uid not in call.gitlab.users:
        raise NOT_FOUND
    body = {
        **_user_json(call.gitlab, call.gitlab.users[uid]),
        "access_level": members[uid],
        "expires_at": None,
        "membership_state": "active",
    }
    return JSONResponse(body)


# --- runners and jobs -----------------------------------------------------------------------


def _runner_json(runner: FakeRunner) -> dict[str, Any]:
    return {
        "id": runner.id,
        "description": runner.description,
        "ip_address": runner.ip_address,
        "active": not runner.paused,
        "paused": runner.paused,
        "is_shared": runner.runner_type == "instance_type",
        "runner_type": runner.runner_type,
        "name": "gitlab-runner",
        "online": runner.status == "online",
        "status": runner.status,
    }


def _runner_detail(gitlab: GitLabState, runner: FakeRunner) -> dict[str, Any]:
    group = gitlab.groups.get(runner.group_id) if runner.group_id else None
    return {
        **_runner_json(runner),
        "tag_list": list(runner.tags),
        "run_untagged": runner.run_untagged,
        "locked": runner.locked,
        "maximum_timeout": runner.maximum_timeout,
        "access_level": runner.access_level,
        "version": runner.version,
        "revision": "5a021a1c" if runner.version else None,
        "platform": "linux" if runner.version else None,
        "architecture": "amd64" if runner.version else None,
        "contacted_at": iso(runner.contacted_at),
        "maintenance_note": None,
        "projects": [],
        "groups": [_group_ref(gitlab, group)] if group else [],
    }


def _group_ref(gitlab: GitLabState, group: FakeGroup) -> dict[str, Any]:
    return {"id": group.id, "web_url": f"{gitlab.url}/{group.full_path}", "name": group.full_path}


def _filter_runners(call: Call, runners: list[FakeRunner]) -> list[dict[str, Any]]:
    query = call.request.query_params
    wanted_type, status = query.get("type"), query.get("status")
    paused = query.get("paused")
    tags = set(filter(None, query.get("tag_list", "").split(",")))
    return [
        _runner_json(r)
        for r in sorted(runners, key=lambda r: r.id)
        if (not wanted_type or r.runner_type == wanted_type)
        and (not status or r.status == status)
        and (paused is None or r.paused == (paused == "true"))
        and tags <= set(r.tags)
    ]


def group_runners(call: Call, params: list[str]) -> Response:
    call.need(READ)
    group = call.group(params[0], MAINTAINER)
    runners = [r for r in call.gitlab.runners.values() if r.group_id == group.id]
    if call.request.query_params.get("type") != "group_type":
        runners += [r for r in call.gitlab.runners.values() if r.runner_type == "instance_type"]
    return _paginate(call, _filter_runners(call, runners))


def all_runners(call: Call, params: list[str]) -> Response:
    call.need(READ)
    if not call.user.admin:
        raise FORBIDDEN
    return _paginate(call, _filter_runners(call, list(call.gitlab.runners.values())))


def runner_detail(call: Call, params: list[str]) -> Response:
    call.need(READ)
    return JSONResponse(_runner_detail(call.gitlab, call.runner(params[0])))


def update_runner(call: Call, params: list[str]) -> Response:
    call.need(RUNNER_WRITE)
    runner = call.runner(params[0])
    body = call.body
    if "paused" in body:
        runner.paused = str(body["paused"]).lower() == "true"
    elif "active" in body:
        runner.paused = str(body["active"]).lower() != "true"
    if "description" in body:
        runner.description = str(body["description"])
    return JSONResponse(_runner_detail(call.gitlab, runner))


def runner_managers(call: Call, params: list[str]) -> Response:
    call.need(READ)
    runner = call.runner(params[0])
    jobs = call.gitlab.jobs.values()
    busy = any(j.runner_id == runner.id and j.status == "running" for j in jobs)
    managers = [
        {
            "id": runner.id * 10,
            "system_id": f"r_{runner.id:012d}",
            "version": runner.version,
            "revision": "5a021a1c",
            "platform": "linux",
            "architecture": "amd64",
            "created_at": iso(runner.contacted_at),
            "contacted_at": iso(runner.contacted_at),
            "ip_address": runner.ip_address,
            "status": runner.status,
            "job_execution_status": "active" if busy else "idle",
        }
    ]
    return _paginate(call, managers if runner.contacted_at else [])


def _job_json(gitlab: GitLabState, job: FakeJob) -> dict[str, Any]:
    project = gitlab.projects.get(job.project_id)
    path = project.path_with_namespace if project else "unknown/unknown"
    duration = None
    if job.started_at is not None:
        end = job.finished_at or gitlab.now()
        duration = (end - job.started_at).total_seconds()
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "name": job.name,
        "ref": "main",
        "tag": False,
        "coverage": None,
        "allow_failure": False,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "erased_at": None,
        "duration": duration,
        "queued_duration": job.queued_duration,
        "user": None,
        "commit": None,
        "pipeline": {
            "id": job.id * 7,
            "project_id": job.project_id,
            "ref": "main",
            "sha": "0" * 40,
            "status": job.status,
        },
        "project": {
            "id": job.project_id,
            "name": path.rsplit("/", 1)[-1],
            "name_with_namespace": path.replace("/", " / "),
            "path": path.rsplit("/", 1)[-1],
            "path_with_namespace": path,
        },
        "failure_reason": "script_failure" if job.status == "failed" else None,
        "web_url": f"{gitlab.url}/{path}/-/jobs/{job.id}",
    }


def runner_jobs(call: Call, params: list[str]) -> Response:
    call.need(READ)
    runner = call.runner(params[0])
    query = call.request.query_params
    statuses = set(query.getlist("status") + query.getlist("status[]"))
    jobs = [
        j
        for j in call.gitlab.jobs.values()
        if j.runner_id == runner.id and (not statuses or j.status in statuses)
    ]
    descending = query.get("sort", "desc") == "desc"
    jobs.sort(key=lambda j: j.id, reverse=descending)
    return _paginate(call, [_job_json(call.gitlab, j) for j in jobs])


# --- repository -----------------------------------------------------------------------------


def _ref_commit(call: Call, project: FakeProject) -> Commit:
    ref = call.request.query_params.get("ref")
    if not ref:
        raise ApiError(400, {"error": "ref is missing, ref is empty"})
    commit = project.repository.head(ref)
    if commit is None:
        raise _message(404, "404 Commit Not Found")
    return commit


def _file_at_ref(call: Call, params: list[str]) -> tuple[Commit, str, str]:
    """The commit ``?ref=`` names, the file path and its content, as both file endpoints
    look them up (404 as GitLab words it)."""
    call.need(READ)
    project = call.project(params[0], REPORTER)
    commit, path = _ref_commit(call, project), params[1]
    if path not in commit.files:
        raise _message(404, "404 File Not Found")
    return commit, path, commit.files[path]


def repository_file(call: Call, params: list[str]) -> Response:
    commit, path, content = _file_at_ref(call, params)
    return JSONResponse(
        {
            "file_name": path.rsplit("/", 1)[-1],
            "file_path": path,
            "size": len(content.encode()),
            "encoding": "base64",
            "content": base64.b64encode(content.encode()).decode(),
            "content_sha256": hashlib.sha256(content.encode()).hexdigest(),
            "ref": call.request.query_params["ref"],
            "blob_id": blob_id(content),
            "commit_id": commit.id,
            "last_commit_id": commit.last_change[path],
            "execute_filemode": False,
        }
    )


def repository_file_raw(call: Call, params: list[str]) -> Response:
    commit, path, content = _file_at_ref(call, params)
    return PlainTextResponse(
        content,
        headers={
            "x-gitlab-file-path": path,
            "x-gitlab-ref": call.request.query_params["ref"],
            "x-gitlab-blob-id": blob_id(content),
            "x-gitlab-commit-id": commit.id,
            "x-gitlab-last-commit-id": commit.last_change[path],
        },
    )


def create_commit(call: Call, params: list[str]) -> Response:
    call.need(WRITE)
    project = call.project(params[0], DEVELOPER)
    body = call.body
    branch = str(body.get("branch", ""))
    if not branch or not body.get("commit_message"):
        raise ApiError(400, {"error": "branch is missing, commit_message is missing"})
    if (
        branch in project.repository.protected
        and call.gitlab.access_level(call.user, project) < MAINTAINER
    ):
        raise _message(403, "403 Forbidden - You are not allowed to push into this branch")
    actions = body.get("actions")
    try:
        commit = project.repository.commit(
            branch=branch,
            start_branch=body.get("start_branch"),
            message=str(body["commit_message"]),
            actions=list(actions) if isinstance(actions, list) else [],
            author=call.user.username,
            now=call.gitlab.now(),
        )
    except RepositoryError as error:
        raise _message(400, str(error)) from None
    web_url = f"{call.gitlab.url}/{project.path_with_namespace}"
    return JSONResponse(commit.to_json(web_url), status_code=201)


def create_merge_request(call: Call, params: list[str]) -> Response:
    call.need(WRITE)
    project = call.project(params[0], DEVELOPER)
    body = call.body
    source, target = str(body.get("source_branch", "")), str(body.get("target_branch", ""))
    title = str(body.get("title", ""))
    if not source or not target or not title:
        raise ApiError(400, {"error": "source_branch, target_branch, title are missing"})
    branches = project.repository.branches
    if source not in branches or target not in branches:
        raise _message(404, "404 Branch Not Found")
    for existing in project.merge_requests:
        if existing["source_branch"] == source and existing["state"] == "opened":
            raise ApiError(
                409,
                {
                    "message": [
                        "Another open merge request already exists for this source branch: "
                        f"!{existing['iid']}"
                    ]
                },
            )
    iid = len(project.merge_requests) + 1
    draft = title.lower().startswith(("draft:", "[draft]", "(draft)"))
    merge_request = {
        "id": call.gitlab.next_id(),
        "iid": iid,
        "project_id": project.id,
        "title": title,
        "description": str(body.get("description", "")),
        "state": "opened",
        "created_at": iso(call.gitlab.now()),
        "target_branch": target,
        "source_branch": source,
        "author": _user_json(call.gitlab, call.user),
        "draft": draft,
        "work_in_progress": draft,
        "sha": branches[source],
        "merge_status": "checking",
        "detailed_merge_status": "checking",
        "force_remove_source_branch": str(body.get("remove_source_branch", "")).lower() == "true",
        "web_url": f"{call.gitlab.url}/{project.path_with_namespace}/-/merge_requests/{iid}",
    }
    project.merge_requests.append(merge_request)
    return JSONResponse(merge_request, status_code=201)


def list_merge_requests(call: Call, params: list[str]) -> Response:
    call.need(READ)
    project = call.project(params[0], REPORTER)
    query = call.request.query_params
    found = [
        mr
        for mr in reversed(project.merge_requests)
        if query.get("state", "all") in ("all", mr["state"])
        and query.get("source_branch", mr["source_branch"]) == mr["source_branch"]
    ]
    return _paginate(call, found)


ROUTES: list[tuple[str, tuple[str, ...], Handler]] = [
    ("GET", ("user",), current_user),
    ("GET", ("groups", "*", "members", "all", "*"), group_member),
    ("GET", ("projects", "*", "members", "all", "*"), project_member),
    ("GET", ("groups", "*", "runners"), group_runners),
    ("GET", ("runners", "all"), all_runners),
    ("GET", ("runners", "*"), runner_detail),
    ("PUT", ("runners", "*"), update_runner),
    ("GET", ("runners", "*", "managers"), runner_managers),
    ("GET", ("runners", "*", "jobs"), runner_jobs),
    ("GET", ("projects", "*", "repository", "files", "*"), repository_file),
    ("GET", ("projects", "*", "repository", "files", "*", "raw"), repository_file_raw),
    ("POST", ("projects", "*", "repository", "commits"), create_commit),
    ("POST", ("projects", "*", "merge_requests"), create_merge_request),
    ("GET", ("projects", "*", "merge_requests"), list_merge_requests),
]
