"""The GitLab client's transport rules: token header, pagination, errors without the token."""

from __future__ import annotations

import json

import httpx
import pytest

from dashboard.gitlab_client import GitLabClient, GitLabError

pytestmark = pytest.mark.anyio

TOKEN = "glpat-secret-value"
BASE = "https://gitlab.example.com"


def client_for(handler) -> GitLabClient:
    return GitLabClient(BASE, TOKEN, transport=httpx.MockTransport(handler))


async def test_sends_the_token_as_bearer_and_follows_next_page_headers():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = int(request.url.params.get("page", "1"))
        headers = {"x-next-page": str(page + 1)} if page < 3 else {"x-next-page": ""}
        return httpx.Response(200, json=[{"id": page}], headers=headers)

    async with client_for(handler) as gitlab:
        runners = await gitlab.group_runners("acme/platform")
    assert [r["id"] for r in runners] == [1, 2, 3]
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert seen[0].url.raw_path.split(b"?")[0] == b"/api/v4/groups/acme%2Fplatform/runners"
    assert seen[0].url.params["type"] == "group_type"
    assert seen[0].url.params["per_page"] == "100"


async def test_follows_link_headers_of_the_same_gitlab_only():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") == "b":
            link = '<https://evil.example.com/api/v4/runners/all?cursor=c>; rel="next"'
            return httpx.Response(200, json=[{"id": 2}], headers={"link": link})
        link = f'<{BASE}/api/v4/runners/all?cursor=b&per_page=100>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}], headers={"link": link})

    async with client_for(handler) as gitlab:
        runners = await gitlab.instance_runners()
    assert [r["id"] for r in runners] == [1, 2]


async def test_errors_carry_the_status_and_gitlabs_message_but_never_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": f"403 Forbidden - token {TOKEN}"})

    async with client_for(handler) as gitlab:
        with pytest.raises(GitLabError) as caught:
            await gitlab.runner(7)
    assert caught.value.status == 403
    assert caught.value.message == "GET /runners/7: 403 Forbidden - token [token]"
    assert TOKEN not in str(caught.value)


async def test_no_answer_is_an_error_without_status():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client_for(handler) as gitlab:
        with pytest.raises(GitLabError) as caught:
            await gitlab.current_user()
    assert caught.value.status is None
    assert caught.value.message == "GET /user: ConnectError"


async def test_member_access_is_none_on_404_and_other_errors_raise():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/members/all/5"):
            return httpx.Response(200, json={"id": 5, "access_level": 30})
        if request.url.path.endswith("/members/all/6"):
            return httpx.Response(404, json={"message": "404 Not found"})
        return httpx.Response(500, json={"message": "500 Internal Server Error"})

    async with client_for(handler) as gitlab:
        assert await gitlab.group_member_access(12, 5) == 30
        assert await gitlab.project_member_access("acme/config", 6) is None
        with pytest.raises(GitLabError, match="500"):
            await gitlab.group_member_access(12, 7)


async def test_with_token_calls_as_another_identity_over_the_same_pool():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"id": 1, "username": "ada"})

    async with client_for(handler) as gitlab:
        user = gitlab.with_token("oauth-user-token")
        await user.current_user()
        await user.aclose()
        await gitlab.current_user()
    assert seen == ["Bearer oauth-user-token", f"Bearer {TOKEN}"]


async def test_runner_jobs_asks_for_the_newest_first_and_stops_at_the_limit():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": i} for i in range(5)], headers={"x-next-page": "2"})

    async with client_for(handler) as gitlab:
        jobs = await gitlab.runner_jobs(3, status="running", limit=5)
    assert len(jobs) == 5
    assert len(seen) == 1
    assert dict(seen[0].url.params) == {
        "order_by": "id",
        "sort": "desc",
        "status": "running",
        "per_page": "5",
    }


async def test_write_calls_send_the_documented_bodies():
    seen: list[tuple[str, str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        seen.append((request.method, request.url.raw_path.decode(), body))
        return httpx.Response(201 if request.method == "POST" else 200, json={"id": 1})

    async with client_for(handler) as gitlab:
        await gitlab.set_runner_paused(4, True)
        await gitlab.create_commit(
            "acme/config",
            branch="dashboard/x",
            start_branch="main",
            message="m",
            actions=[{"action": "update", "file_path": "a", "content": "b", "last_commit_id": "c"}],
        )
        await gitlab.create_merge_request(
            9, source_branch="dashboard/x", target_branch="main", title="Draft: t"
        )
    assert seen[0] == ("PUT", "/api/v4/runners/4", {"paused": True})
    assert seen[1][1] == "/api/v4/projects/acme%2Fconfig/repository/commits"
    assert seen[1][2]["start_branch"] == "main"
    assert seen[1][2]["actions"][0]["last_commit_id"] == "c"
    assert seen[2][2]["remove_source_branch"] is True
