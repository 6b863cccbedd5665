"""A small async client for the GitLab REST API calls the dashboard makes.

One httpx connection pool per GitLab; :meth:`GitLabClient.with_token` gives a client that
calls as another identity (a signed-in user's OAuth token) over the same pool. Every failure
is a :class:`GitLabError` whose message names the call and the answer, never the token, so it
can be logged and shown on a page as it is.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

API = "/api/v4"
USER_AGENT = "attic-iac-dashboard"
# GitLab caps per_page at 100; the page cap stops a server that always says "next page".
PER_PAGE = 100
MAX_PAGES = 50


class GitLabError(Exception):
    """A GitLab call failed: ``status`` is the HTTP status (None: no answer at all)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, kw_only=True)
class RepositoryFile:
    """A file as one ref has it; ``last_commit_id`` is what a commit updating it must name,
    so GitLab refuses the update if someone changed the file in between."""

    path: str
    ref: str
    content: str
    blob_id: str
    commit_id: str
    last_commit_id: str


def _segment(value: str | int) -> str:
    """A path segment: ids as they are, group/project paths and file paths URL-encoded."""
    return quote(str(value), safe="")


def _answer_text(response: httpx.Response) -> str:
    """GitLab's own words for an error (``message`` or ``error``), else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("message") or body.get("error_description") or body.get("error")
        if detail:
            return str(detail)[:300]
    return response.reason_phrase


class GitLabClient:
    """Calls GitLab at ``base_url`` (the instance URL, without ``/api/v4``) with ``token``."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The connection pool (the sign-in side's OAuth calls share it)."""
        return self._http

    def with_token(self, token: str) -> GitLabClient:
        """The same GitLab and connection pool, calling as ``token``'s owner."""
        return GitLabClient(self.base_url, token, http=self._http)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> GitLabClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        url: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        where = f"{method} {path}"
        try:
            response = await self._http.request(
                method, url or API + path, params=params, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise GitLabError(None, f"{where}: timed out") from None
        except httpx.HTTPError as error:
            raise GitLabError(None, f"{where}: {type(error).__name__}") from None
        if response.is_success:
            return response
        text = _answer_text(response)
        if self._token:
            text = text.replace(self._token, "[token]")
        status = str(response.status_code)
        # GitLab's messages often start with the status already ("404 Not found").
        answer = text if text.startswith(status) else f"{status} {text}"
        raise GitLabError(response.status_code, f"{where}: {answer}")

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise GitLabError(response.status_code, f"{method} {path}: not JSON") from None

    async def _pages(
        self, path: str, params: Mapping[str, Any], *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"`` (keyset and offset
        pagination) or else ``X-Next-Page``; at most ``limit`` items."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"per_page": PER_PAGE, **params}
        url: str | None = None
        for _ in range(MAX_PAGES):
            response = await self._send("GET", path, params=None if url else query, url=url)
            page = response.json()
            if not isinstance(page, list):
                raise GitLabError(response.status_code, f"GET {path}: not a list")
            items.extend(page)
            if limit is not None and len(items) >= limit:
                return items[:limit]
            next_link = response.links.get("next", {}).get("url", "")
            next_page = response.headers.get("x-next-page", "")
            # The token goes with the request: follow links to this GitLab only.
            if next_link.startswith(self.base_url + API + "/"):
                url = next_link
            elif next_page:
                query = {**query, "page": next_page}
                url = None
            else:
                return items
        return items

    # --- read calls -----------------------------------------------------------------------

    async def current_user(self) -> dict[str, Any]:
        """The token's owner (``GET /user``: id, username, name, state, ...)."""
        user: dict[str, Any] = await self._json("GET", "/user")
        return user

    async def group_runners(
        self, group: str | int, *, runner_type: str | None = "group_type"
    ) -> list[dict[str, Any]]:
        """Runners of ``group`` (id or full path); ``runner_type`` None includes inherited
        instance runners."""
        params = {"type": runner_type} if runner_type else {}
        return await self._pages(f"/groups/{_segment(group)}/runners", params)

    async def instance_runners(
        self, *, runner_type: str | None = "instance_type"
    ) -> list[dict[str, Any]]:
        """Every runner of the instance (``GET /runners/all``: administrators only)."""
        params = {"type": runner_type} if runner_type else {}
        return await self._pages("/runners/all", params)

    async def runner(self, runner_id: int) -> dict[str, Any]:
        """Runner detail: tag_list, version, contacted_at, ip_address, paused, status, ..."""
        detail: dict[str, Any] = await self._json("GET", f"/runners/{runner_id}")
        return detail

    async def runner_managers(self, runner_id: int) -> list[dict[str, Any]]:
        """The runner's managers (one per system_id): version, ip_address, contacted_at."""
        return await self._pages(f"/runners/{runner_id}/managers", {})

    async def runner_jobs(
        self, runner_id: int, *, status: str | None = None, limit: int = PER_PAGE
    ) -> list[dict[str, Any]]:
        """The runner's newest jobs (``status`` e.g. ``running``), each with queued_duration."""
        params: dict[str, Any] = {"order_by": "id", "sort": "desc"}
        if status:
            params["status"] = status
        return await self._pages(
            f"/runners/{runner_id}/jobs", {**params, "per_page": min(limit, PER_PAGE)}, limit=limit
        )

    async def group_member_access(self, group: str | int, user_id: int) -> int | None:
        """The user's access level in ``group``, inherited ones included; None: not a member."""
        return await self._member_access(f"/groups/{_segment(group)}/members/all/{user_id}")

    async def project_member_access(self, project: str | int, user_id: int) -> int | None:
        """The user's access level on ``project``, inherited ones included; None: no access."""
        return await self._member_access(f"/projects/{_segment(project)}/members/all/{user_id}")

    async def _member_access(self, path: str) -> int | None:
        try:
            member = await self._json("GET", path)
        except GitLabError as error:
            if error.status == 404:
                return None
            raise
        level = member.get("access_level") if isinstance(member, dict) else None
        return level if isinstance(level, int) else None

    async def file(self, project: str | int, path: str, *, ref: str) -> RepositoryFile:
        """A repository file with the ids an update must name."""
        body = await self._json(
            "GET",
            f"/projects/{_segment(project)}/repository/files/{_segment(path)}",
            params={"ref": ref},
        )
        raw = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else None
        return RepositoryFile(
            path=body["file_path"],
            ref=body["ref"],
            content=raw.decode() if raw is not None else str(body["content"]),
            blob_id=body["blob_id"],
            commit_id=body["commit_id"],
            last_commit_id=body["last_commit_id"],
        )

    async def raw_file(self, project: str | int, path: str, *, ref: str) -> tuple[str, str]:
        """A file's text and the last commit that changed it (``X-Gitlab-Last-Commit-Id``)."""
        response = await self._send(
            "GET",
            f"/projects/{_segment(project)}/repository/files/{_segment(path)}/raw",
            params={"ref": ref},
        )
        return response.text, response.headers.get("x-gitlab-last-commit-id", "")

    # --- write calls (issue 18) -----------------------------------------------------------

    async def set_runner_paused(self, runner_id: int, paused: bool) -> dict[str, Any]:
        """Pause or resume a runner (``PUT /runners/:id paused=``; ``active`` is deprecated)."""
        runner: dict[str, Any] = await self._json(
            "PUT", f"/runners/{runner_id}", json={"paused": paused}
        )
        return runner

    async def create_commit(
        self,
        project: str | int,
        *,
        branch: str,
        message: str,
        actions: Sequence[Mapping[str, Any]],
        start_branch: str | None = None,
    ) -> dict[str, Any]:
        """One commit of ``actions`` (``{"action": "update", "file_path", "content",
        "last_commit_id"}``) on ``branch``, created from ``start_branch`` when given."""
        payload: dict[str, Any] = {
            "branch": branch,
            "commit_message": message,
            "actions": [dict(action) for action in actions],
        }
        if start_branch:
            payload["start_branch"] = start_branch
        commit: dict[str, Any] = await self._json(
            "POST", f"/projects/{_segment(project)}/repository/commits", json=payload
        )
        return commit

    async def create_merge_request(
        self,
        project: str | int,
        *,
        source_branch: str,
        target_branch: str,
        title: str,
        description: str = "",
        remove_source_branch: bool = True,
    ) -> dict[str, Any]:
        """Open a merge request (a ``Draft:`` title makes it a draft)."""
        merge_request: dict[str, Any] = await self._json(
            "POST",
            f"/projects/{_segment(project)}/merge_requests",
            json={
                "source_branch": source_branch,
                "target_branch": target_branch,
                "title": title,
                "description": description,
                "remove_source_branch": remove_source_branch,
            },
        )
        return merge_request
