"""GitLab-managed Terraform state for every stack, with locking and no credential in code."""

from __future__ import annotations

from cdktf import HttpBackend, TerraformStack

from config_model.organization import STACK_NAME, GitLab


def state_address(gitlab: GitLab, state_name: str) -> str:
    """The GitLab Terraform-state API address of one state."""
    if not STACK_NAME.match(state_name):
        raise ValueError(f"state name {state_name!r} must use only a-z, 0-9 and '-'")
    return f"{gitlab.url}/api/v4/projects/{gitlab.state_project_id}/terraform/state/{state_name}"


def gitlab_state_backend(stack: TerraformStack, gitlab: GitLab, state_name: str) -> HttpBackend:
    """HTTP backend on GitLab; the password comes from ``TF_HTTP_PASSWORD`` at run time."""
    address = state_address(gitlab, state_name)
    return HttpBackend(
        stack,
        address=address,
        lock_address=f"{address}/lock",
        unlock_address=f"{address}/lock",
        lock_method="POST",
        unlock_method="DELETE",
        retry_wait_min=5,
        username=gitlab.state_username,
    )
