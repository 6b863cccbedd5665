"""Who may see and who may change: roles from GitLab access levels, asked with the user's own
OAuth token (scope read_api).

*viewer*: a member of ``DASHBOARD_GITLAB_GROUP`` at or above ``DASHBOARD_VIEWER_MIN_ACCESS``
(with ``instance``, of ``DASHBOARD_CONFIG_PROJECT``). *operator*: a viewer who is also
Maintainer or above on ``DASHBOARD_CONFIG_PROJECT``, the project that holds organization.yaml.
Anything else, a 404 or 403 from the members API included, is no access: deny by default.
"""

from __future__ import annotations

from collections.abc import Awaitable

from dashboard.gitlab_client import GitLabClient, GitLabError
from dashboard.session import Role
from dashboard.settings import INSTANCE, OPERATOR_ACCESS, Settings


class GitLabUnavailableError(Exception):
    """GitLab did not answer usefully (network error, timeout, 5xx): retry later."""


class TokenRejectedError(Exception):
    """GitLab rejected the user's token (revoked, expired, user blocked): sign out."""


async def checked(call: Awaitable[int | None]) -> int | None:
    """A members API answer, GitLab's failures sorted into "no access", "sign out" and "ask
    again later"."""
    try:
        return await call
    except GitLabError as error:
        if error.status == 401:
            raise TokenRejectedError(error.message) from None
        if error.status in (403, 404):
            return None
        raise GitLabUnavailableError(error.message) from None


async def resolve_role(
    gitlab: GitLabClient, settings: Settings, *, token: str, user_id: int
) -> Role | None:
    """The user's role now; None = signed in without access."""
    as_user = gitlab.with_token(token)
    project = settings.config_project
    if settings.gitlab_group == INSTANCE:
        level = await checked(as_user.project_member_access(project, user_id))
    else:
        level = await checked(as_user.group_member_access(settings.gitlab_group, user_id))
    if level is None or level < settings.viewer_min_access:
        return None
    if settings.gitlab_group != INSTANCE:
        level = await checked(as_user.project_member_access(project, user_id))
    return "operator" if level is not None and level >= OPERATOR_ACCESS else "viewer"
