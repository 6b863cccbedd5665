"""One gitlab-runner manager (docker type) with its hardened job namespace.

Only attic-iac-constructs: no YAML, no stacks. Two namespaces: the manager's (``restricted``)
and the jobs' (``baseline``: CI images often run as root), both default-deny in and out; a
quota with container defaults for the jobs; PriorityClasses that put managers above ordinary
workloads and jobs below them; egress that lets the manager reach GitLab and the API server and
jobs reach the internet but no private range; a CronJob that deletes leaked job pods.

The runner token is a Secret you create (``kubectl create secret generic runner-docker-token
--from-literal=runner-token=glrt-...``); GitLabRunnerToken (``[gitlab]`` extra) can make it
through GitLab's API instead. Synthesize with ``python main.py`` (or ``cdktf synth``); apply
with OpenTofu in ``cdktf.out/stacks/gitlab-runner``.
"""

from cdktf import App, TerraformStack
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider

from constructs_lib.kubernetes.namespace_budget import NamespaceBudget, NamespaceBudgetProps
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.runners.gitlab_runner import GitLabRunner, GitLabRunnerProps
from constructs_lib.runners.job_cleanup import RunnerJobCleanup, RunnerJobCleanupProps
from constructs_lib.runners.labels import JOB_POD_LABELS, MANAGER_LABELS
from constructs_lib.runners.priority_classes import (
    RunnerPriorityClasses,
    RunnerPriorityClassesProps,
)
from constructs_lib.runners.runner_toml import RunnerTomlProps, render_runner_config
from constructs_lib.versions import ALPINE_IMAGE

KUBE_CONTEXT = "platform"  # the kubeconfig context OpenTofu uses (KUBE_CONFIG_PATH)
GITLAB_URL = "https://gitlab.example.com"
TOKEN_SECRET = "runner-docker-token"  # key runner-token: the glrt- token
CONCURRENT = 8
API_SERVER_PORTS = [443, 6443]
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


class GitLabRunnerStack(TerraformStack):
    """A docker runner: manager, job namespace, policies, quota, cleanup."""

    def __init__(self, scope: App, stack_id: str) -> None:
        super().__init__(scope, stack_id)
        KubernetesProvider(self, "kubernetes", config_context=KUBE_CONTEXT)
        HelmProvider(self, "helm", kubernetes=HelmProviderKubernetes(config_context=KUBE_CONTEXT))
        managers = SecureNamespace(
            self, "ManagerNamespace", SecureNamespaceProps(name="gitlab-runners", deny_egress=True)
        )
        jobs = SecureNamespace(
            self,
            "JobNamespace",
            SecureNamespaceProps(name="ci-docker", pod_security="baseline", deny_egress=True),
        )
        budget = NamespaceBudget(
            self,
            "JobBudget",
            NamespaceBudgetProps(
                namespace=jobs.name,
                quota={"requests.cpu": "16", "requests.memory": "32Gi", "limits.memory": "64Gi"},
                default_request={"cpu": "500m", "memory": "1Gi"},
                default_limit={"cpu": "2", "memory": "4Gi"},
                max={"cpu": "8", "memory": "16Gi"},
            ),
        )
        priorities = RunnerPriorityClasses(
            self, "Priorities", RunnerPriorityClassesProps(prefix="gitlab-runners")
        )
        manager_out = TrafficPolicy(
            self,
            "ManagerPolicy",
            TrafficPolicyProps(
                name="runner-managers",
                namespace=managers.name,
                pod_selector=dict(MANAGER_LABELS),
                egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=API_SERVER_PORTS)],
            ),
        )
        jobs_out = TrafficPolicy(
            self,
            "JobPolicy",
            TrafficPolicyProps(
                name="ci-jobs",
                namespace=jobs.name,
                pod_selector=dict(JOB_POD_LABELS),
                egress=[
                    Rule(
                        peers=[Peer(cidr="0.0.0.0/0", except_cidrs=PRIVATE_RANGES)],
                        ports=[80, 443],
                    )
                ],
            ),
        )
        small = ComputeResources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
        )
        toml = render_runner_config(
            RunnerTomlProps(
                name="docker",
                runner_type="docker",
                job_namespace="ci-docker",
                image=ALPINE_IMAGE.ref,
                limit=CONCURRENT,
                build=ComputeResources(
                    cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="4Gi"
                ),
                helper=small,
                service=small,
                priority_class=priorities.job_name,
            )
        )
        GitLabRunner(
            self,
            "RunnerDocker",
            GitLabRunnerProps(
                name="gitlab-runner-docker",
                namespace=managers.name,
                runner_type="docker",
                job_namespace="ci-docker",
                gitlab_url=GITLAB_URL,
                token_secret=TOKEN_SECRET,
                runner_config=toml,
                concurrent=CONCURRENT,
                priority_class=priorities.manager_name,
                depends_on=[
                    *managers.policies,
                    *jobs.policies,
                    manager_out.policy,
                    jobs_out.policy,
                    budget.resource_quota,
                    budget.limit_range,
                    *priorities.resources,
                ],
            ),
        )
        cleanup = RunnerJobCleanup(
            self,
            "Cleanup",
            RunnerJobCleanupProps(
                namespace=managers.name,
                job_namespaces=["ci-docker"],
                max_age_seconds=4 * 3600,
                depends_on=[jobs.namespace],
            ),
        )
        TrafficPolicy(
            self,
            "CleanupPolicy",
            TrafficPolicyProps(
                name="runner-cleanup",
                namespace=managers.name,
                pod_selector=cleanup.labels,
                egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=API_SERVER_PORTS)],
            ),
        )


app = App()
GitLabRunnerStack(app, "gitlab-runner")
app.synth()
