"""The ``k8s-deploy`` component: apply manifests through the GitLab agent and wait for the
rollout.

Server-side apply under one field manager into one namespace, a server-side dry run first, and
one deployment at a time per environment (its resource group).
"""

from __future__ import annotations

from constructs_lib.versions import KUBECTL_IMAGE
from iac_tools.ci_component_parts import (
    DNS_LABEL_REGEX,
    Component,
    common_inputs,
    inp,
    input_spec,
    tags_input,
    timeout_input,
)

K8S_CONTEXT = """\
# The GitLab agent's kubeconfig has a context per agent that shares itself with this project.
if [ -z "${KUBECONFIG:-}" ]; then
    echo "k8s-deploy: no KUBECONFIG: list this project under ci_access in the config of" \\
        "agent $DEPLOY_AGENT" >&2
    exit 1
fi
kubectl config use-context "$DEPLOY_AGENT"
"""

K8S_APPLY = """\
# Server-side apply under one field manager into one namespace (kubectl refuses an object that
# names another). A server-side dry run first, so most errors stop the job before anything
# changes. No --prune: an object removed from the manifests stays until deleted by hand.
set -- --server-side "--field-manager=$DEPLOY_FIELD_MANAGER" \\
    "--namespace=$DEPLOY_NAMESPACE" --recursive "--filename=$DEPLOY_MANIFESTS"
if [ "$[[ inputs.force_conflicts ]]" = true ]; then
    set -- "$@" --force-conflicts
fi
kubectl apply "$@" --dry-run=server >/dev/null
DEPLOY_APPLIED=$(kubectl apply "$@" --output=name)
printf '%s\\n' "$DEPLOY_APPLIED"
"""

K8S_ROLLOUT = """\
# Wait for the workloads that match rollout_selector, or else for those this apply touched.
if [ -n "$DEPLOY_SELECTOR" ]; then
    _kd_workloads=$(kubectl get deployment,statefulset,daemonset \\
        "--namespace=$DEPLOY_NAMESPACE" "--selector=$DEPLOY_SELECTOR" --output=name)
else
    _kd_workloads=$(printf '%s\\n' "$DEPLOY_APPLIED" |
        grep -E '^(deployment|statefulset|daemonset)[.]apps/' || :)
fi
if [ -z "$_kd_workloads" ]; then
    echo "k8s-deploy: no Deployment, StatefulSet or DaemonSet to wait for"
fi
_kd_failed=
for _kd_workload in $_kd_workloads; do
    kubectl rollout status "$_kd_workload" "--namespace=$DEPLOY_NAMESPACE" \\
        "--timeout=$DEPLOY_ROLLOUT_TIMEOUT" || _kd_failed="$_kd_failed $_kd_workload"
done
if [ -n "$_kd_failed" ]; then
    echo "k8s-deploy: not rolled out within $DEPLOY_ROLLOUT_TIMEOUT:$_kd_failed" >&2
    exit 1
fi
"""


def k8s_deploy() -> Component:
    """Apply manifests through the GitLab agent and wait for the rollout."""
    inputs = {
        **common_inputs("k8s-deploy", "deploy"),
        "agent": input_spec(
            "string",
            "The GitLab agent's kubectl context, path/to/agent-project:agent-name.",
            regex=r"^[^:\s]+:[^:\s]+$",
        ),
        "namespace": input_spec(
            "string",
            "Namespace to deploy into (objects naming another are refused).",
            regex=DNS_LABEL_REGEX,
        ),
        "environment": input_spec(
            "string",
            "GitLab environment of the deployment (also its resource group: one deployment "
            "at a time).",
        ),
        "manifests": input_spec("string", "Manifest file or directory (read recursively).", "k8s/"),
        "field_manager": input_spec(
            "string",
            "Server-side apply field manager: the owner of the fields this job sets.",
            "$CI_PROJECT_PATH_SLUG",
        ),
        "force_conflicts": input_spec(
            "boolean",
            "Take over fields another field manager owns (kubectl apply --force-conflicts).",
            False,
        ),
        "rollout_selector": input_spec(
            "string",
            "Label selector of the Deployments, StatefulSets and DaemonSets to wait for; "
            "empty: those in the manifests.",
            "",
        ),
        "rollout_timeout": input_spec(
            "string",
            "How long to wait for each workload's rollout (kubectl duration).",
            "5m",
            regex=r"^([0-9]+(s|m|h))+$",
        ),
        "runner_tags": tags_input("docker", "any image, unprivileged"),
        "timeout": timeout_input("30m"),
    }
    job = {
        "stage": inp("stage"),
        "image": KUBECTL_IMAGE.ref,
        "tags": inp("runner_tags"),
        # A half-finished apply must not be cancelled by a newer pipeline.
        "interruptible": False,
        "timeout": inp("timeout"),
        "resource_group": inp("environment"),
        "environment": {
            "name": inp("environment"),
            "action": "start",
            "kubernetes": {"agent": inp("agent")},
        },
        "variables": {
            "DEPLOY_AGENT": inp("agent"),
            "DEPLOY_NAMESPACE": inp("namespace"),
            "DEPLOY_MANIFESTS": inp("manifests"),
            "DEPLOY_FIELD_MANAGER": inp("field_manager"),
            "DEPLOY_SELECTOR": inp("rollout_selector"),
            "DEPLOY_ROLLOUT_TIMEOUT": inp("rollout_timeout"),
        },
        "script": [K8S_CONTEXT, K8S_APPLY, K8S_ROLLOUT],
    }
    return Component(name="k8s-deploy", inputs=inputs, jobs={inp("job_name"): job}, module=__name__)
