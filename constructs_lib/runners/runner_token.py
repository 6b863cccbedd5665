"""A GitLab runner created through GitLab's API, its ``glrt-`` token kept in a Secret.

The token lives only in Terraform state and in the Secret the chart reads
(``runners.secret``), never in Helm values. gitlab-runner ignores tags, locked, run-untagged
and access level when it registers with a ``glrt-`` token, so they are set here, on the
runner object itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from constructs import Construct

from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["TOKEN_KEY", "GitLabRunnerToken", "GitLabRunnerTokenProps", "RunnerScope"]

RunnerScope = Literal["instance_type", "group_type", "project_type"]
"""Who the runner serves: the instance, one group or one project."""
_SCOPES = ("instance_type", "group_type", "project_type")
TOKEN_KEY = "runner-token"
"""The Secret key the gitlab-runner chart reads the token from (``runners.secret``)."""
# The chart also reads this one; the registration token is a deprecated mechanism and stays
# empty.
REGISTRATION_TOKEN_KEY = "runner-registration-token"


@dataclass(frozen=True, kw_only=True, slots=True)
class GitLabRunnerTokenProps:
    """Props of :class:`GitLabRunnerToken`.

    Attributes:
        namespace: namespace of the Secret (the manager's).
        secret_name: the Secret the chart's ``runners.secret`` names.
        scope: ``instance_type`` (needs an administrator token), ``group_type`` or
            ``project_type``.
        group_id: numeric group id, for ``group_type``. Default ``None``.
        project_id: numeric project id, for ``project_type``. Default ``None``.
        description: shown in GitLab's runner list.
        tags: job tags the runner picks up. Default - none.
        run_untagged: also run jobs without tags. Default ``False``.
        locked: project runners only: cannot be enabled in other projects. Default ``False``.
        access_level: ``not_protected`` or ``ref_protected``. Default ``"not_protected"``.
        maximum_timeout: seconds; caps every job's timeout. Default 10800.
        paused: create the runner paused. Default ``False``.
    """

    namespace: str
    secret_name: str
    scope: RunnerScope
    group_id: int | None = None
    project_id: int | None = None
    description: str
    tags: Sequence[str] = ()
    run_untagged: bool = False
    locked: bool = False
    access_level: Literal["not_protected", "ref_protected"] = "not_protected"
    maximum_timeout: int = 10800
    paused: bool = False


class GitLabRunnerToken(Construct):
    """``gitlab_user_runner`` plus the Secret holding its authentication token.

    Needs the ``gitlab`` extra and a configured GitLab provider in the stack. Creates the
    runner (child id ``Runner``) and the Secret (``Secret``) holding its token under
    :data:`TOKEN_KEY`. Rotate a token with ``tofu apply -replace=<address of the runner>``: a
    new runner and token replace the old.

    Attributes:
        runner: the ``gitlab_user_runner`` resource.
        secret: the Secret resource.
        secret_name: the Secret's name as a reference, for ``GitLabRunnerProps.token_secret``.

    Example:
        ```python
        from constructs_lib.runners.runner_token import GitLabRunnerToken, GitLabRunnerTokenProps

        token = GitLabRunnerToken(
            stack,
            "DockerToken",
            GitLabRunnerTokenProps(
                namespace="gitlab-runners",
                secret_name="runner-docker-token",
                scope="group_type",
                group_id=42,
                description="docker runners on the platform cluster",
                tags=["docker"],
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: GitLabRunnerTokenProps) -> None:
        super().__init__(scope, construct_id)
        need = {"group_type": "group_id", "project_type": "project_id"}.get(props.scope)
        raise_if_problems(
            "GitLabRunnerToken",
            [
                check_dns_label("namespace", props.namespace),
                check_dns_label("secret_name", props.secret_name),
                ""
                if props.scope in _SCOPES
                else f"scope: {props.scope!r} is not one of {', '.join(_SCOPES)}",
                *(
                    f"{key}: required with scope {props.scope}"
                    for key in ("group_id", "project_id")
                    if key == need and getattr(props, key) is None
                ),
                *(
                    f"{key}: does not apply to scope {props.scope}"
                    for key in ("group_id", "project_id")
                    if key != need and getattr(props, key) is not None
                ),
                "" if props.description.strip() else "description: must not be empty",
                "" if props.tags or props.run_untagged else "tags: give tags or run_untagged",
                ""
                if props.maximum_timeout >= 600
                else f"maximum_timeout: GitLab needs at least 600 s (got {props.maximum_timeout})",
            ],
        )
        try:
            from cdktf_cdktf_provider_gitlab.user_runner import UserRunner
        except ModuleNotFoundError as missing:  # the optional provider is not installed
            raise ModuleNotFoundError(
                f"GitLabRunnerToken needs the GitLab provider ({missing.name}): "
                "pip install 'attic-iac-constructs[gitlab]'",
                name=missing.name,
            ) from missing

        self.runner = UserRunner(
            self,
            "Runner",
            runner_type=props.scope,
            group_id=props.group_id,
            project_id=props.project_id,
            description=props.description,
            tag_list=list(props.tags) or None,
            untagged=props.run_untagged,
            locked=props.locked,
            access_level=props.access_level,
            maximum_timeout=props.maximum_timeout,
            paused=props.paused,
        )
        self.secret = SecretV1(
            self,
            "Secret",
            metadata=SecretV1Metadata(
                name=props.secret_name,
                namespace=props.namespace,
                labels={"app.kubernetes.io/managed-by": "attic-iac"},
            ),
            type="Opaque",
            data={TOKEN_KEY: self.runner.token, REGISTRATION_TOKEN_KEY: ""},
        )
        self.secret_name: str = self.secret.metadata.name
