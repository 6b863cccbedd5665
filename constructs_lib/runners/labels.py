"""Labels shared by runner managers, their job pods, and whatever selects them.

Job pods get :data:`JOB_POD_LABELS` from the runner's ``pod_labels`` (jobs cannot overwrite
them), so cleanup, NetworkPolicies and alerts select exactly the pods runners started.
"""

from __future__ import annotations

__all__ = [
    "DESIRED_ANNOTATION",
    "JOB_POD_LABELS",
    "MANAGER_LABELS",
    "PART_OF",
    "RUNNER_TYPES",
    "RUNNER_TYPE_LABEL",
    "job_pod_selector",
]

RUNNER_TYPES = ("docker", "dind", "nix", "nix_protected", "rocky8", "rocky9")
"""The runner types :class:`~constructs_lib.runners.gitlab_runner.GitLabRunner` knows."""
PART_OF = "gitlab-runners"
"""``app.kubernetes.io/part-of`` of everything the runner constructs create."""
RUNNER_TYPE_LABEL = "attic-iac/runner-type"
"""Label of manager pods naming their runner type."""
MANAGER_LABELS = {
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": "runner-manager",
}
"""Labels of every runner manager pod."""
DESIRED_ANNOTATION = "attic-iac.io/desired"
"""On each manager Deployment: JSON of what the stack declared for it (chart, image, concurrent,
job namespace), which the dashboard compares with the Deployment it sees and with the config."""
JOB_POD_LABELS = {
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": "ci-job",
}
"""Labels of every job pod (set through the runner's ``pod_labels``)."""


def job_pod_selector() -> str:
    """``labelSelector`` matching every job pod of every runner type."""
    return ",".join(f"{key}={value}" for key, value in sorted(JOB_POD_LABELS.items()))
