"""GitLab runner fleet: managers per runner type, job-pod policy, cleanup, Attic wiring."""

__all__ = [
    "agent_access",
    "attic_flywheel",
    "flywheel_scripts",
    "gitlab_runner",
    "job_cleanup",
    "labels",
    "priority_classes",
    "runner_token",
    "runner_toml",
]
