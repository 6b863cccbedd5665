"""Labels shared by runner managers, their job pods, and whatever selects them.

Job pods get :data:`JOB_POD_LABELS` from the runner's ``pod_labels`` (jobs cannot overwrite
them), so cleanup, NetworkPolicies and alerts select exactly the pods runners started.
"""

from __future__ import annotations

RUNNER_TYPES = ("docker", "dind", "nix", "nix_protected", "rocky8", "rocky9")
PART_OF = "gitlab-runners"
RUNNER_TYPE_LABEL = "attic-iac/runner-type"
MANAGER_LABELS = {
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": "runner-manager",
}
# On each manager Deployment: JSON of what the stack declared for it (chart, image, concurrent,
# job namespace), which the dashboard compares with the Deployment it sees and with the config.
DESIRED_ANNOTATION = "attic-iac.io/desired"
JOB_POD_LABELS = {
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": "ci-job",
}


def job_pod_selector() -> str:
    """``labelSelector`` matching every job pod of every runner type."""
    return ",".join(f"{key}={value}" for key, value in sorted(JOB_POD_LABELS.items()))
