"""runners-<env>: the GitLab runner fleet - one manager per runner type, the namespaces their
jobs run in (Pod Security, quotas, network policy), tokens, cleanup, Attic wiring, alerts.

Applied before attic-<env>: Attic delivers the CI token into the job namespace created here.
Nothing is read from another stack's state; the Attic URL and caches come from the config.
Each runner type's TOML settings and the nix type's Attic wiring come from
:mod:`stacks.runner_types`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import ITerraformDependable, TerraformOutput, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from constructs import Construct

from config_model.loader import ResolvedEnvironment
from config_model.runners import (
    Budget,
    Runners,
    enabled_types,
    job_namespace_of,
    token_secret_of,
)
from config_model.wiring import (
    attic_wiring_active,
    runner_description,
    runner_release_name,
    runner_tags,
)
from constructs_lib.attic.pod import HTTP_PORT
from constructs_lib.kubernetes.namespace_budget import NamespaceBudget, NamespaceBudgetProps
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import (
    EVERY_NAMESPACE,
    Peer,
    Rule,
    TrafficPolicy,
    TrafficPolicyProps,
)
from constructs_lib.runners.agent_access import AgentCiAccess, AgentCiAccessProps, AgentGrant
from constructs_lib.runners.gitlab_runner import (
    METRICS_PORT,
    METRICS_PORT_NAME,
    GitLabRunner,
    GitLabRunnerProps,
)
from constructs_lib.runners.job_cleanup import RunnerJobCleanup, RunnerJobCleanupProps
from constructs_lib.runners.labels import JOB_POD_LABELS, MANAGER_LABELS
from constructs_lib.runners.priority_classes import (
    RunnerPriorityClasses,
    RunnerPriorityClassesProps,
)
from constructs_lib.runners.runner_token import GitLabRunnerToken, GitLabRunnerTokenProps
from constructs_lib.runners.runner_toml import render_runner_config
from stacks.attic_endpoints import cache_client_egress
from stacks.attic_storage import compute
from stacks.backend import gitlab_state_backend
from stacks.providers import cluster_providers
from stacks.runner_types import attic_flywheel, runner_toml_props
from upstream_formats.humantime import parse_duration

# The Kubernetes API server is not a pod and its address is cluster-specific.
API_SERVER_PORTS = (443, 6443)
# Never reachable from job pods through the "internet" rule: private networks (the cluster,
# the nodes), link-local (cloud metadata endpoints hand out node credentials) and CGNAT.
PRIVATE_RANGES = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
)


class RunnersStack(TerraformStack):
    """One environment's GitLab runners."""

    def __init__(self, scope: Construct, stack_id: str, env: ResolvedEnvironment) -> None:
        super().__init__(scope, stack_id)
        config = env.config
        runners = config.runners
        gitlab_state_backend(self, config.gitlab, stack_id)
        cluster_providers(self, env.settings.cluster_context)

        levels = {
            runners.namespace: "restricted",
            runners.job_namespace: "baseline",
            runners.dind_namespace: "privileged",
        }
        created = {
            name: SecureNamespace(
                self,
                construct_id,
                SecureNamespaceProps(
                    name=name,
                    pod_security=levels[name],  # type: ignore[arg-type]
                    deny_egress=True,
                    labels={"app.kubernetes.io/part-of": "gitlab-runners"},
                ),
            )
            for construct_id, name in (
                ("ManagerNamespace", runners.namespace),
                ("JobNamespace", runners.job_namespace),
                ("DindNamespace", runners.dind_namespace),
            )
        }
        namespaces = {name: ns.name for name, ns in created.items()}
        ready = [ns.namespace for ns in created.values()]
        manager_ns = namespaces[runners.namespace]
        # What must be in place in a namespace before pods start there: its policies (without
        # the allowing ones a manager cannot reach GitLab, a job its sources) and its quota and
        # LimitRange (whose defaults apply only to pods created after it).
        in_place: dict[str, list[ITerraformDependable]] = {
            name: list(ns.policies) for name, ns in created.items()
        }
        for construct_id, (name, budget) in {
            "ManagerBudget": (runners.namespace, runners.budgets.managers),
            "JobBudget": (runners.job_namespace, runners.budgets.jobs),
            "DindBudget": (runners.dind_namespace, runners.budgets.dind),
        }.items():
            made = _budget(self, construct_id, namespaces[name], budget)
            in_place[name] += [made.resource_quota, made.limit_range]
        priorities = RunnerPriorityClasses(
            self, "Priorities", RunnerPriorityClassesProps(prefix=runners.namespace)
        )
        for name, policies in _policies(self, env, namespaces).items():
            in_place[name] += policies

        tokens = _token_secrets(self, env, manager_ns)
        cache_secret = _cache_secret(self, runners, manager_ns)
        flywheels, flywheel_scripts = attic_flywheel(self, env, namespaces[runners.job_namespace])
        for name, spec in enabled_types(runners):
            job_ns_name = job_namespace_of(runners, name)
            job_ns = namespaces[job_ns_name]
            # Managers and job pods name the PriorityClasses; nix jobs mount the scripts.
            first: list[ITerraformDependable] = [
                *priorities.resources,
                *in_place[runners.namespace],
                *in_place[job_ns_name],
            ]
            if name in flywheels and flywheel_scripts is not None:
                first.append(flywheel_scripts)
            toml = render_runner_config(
                runner_toml_props(
                    env,
                    name,
                    spec=spec,
                    job_ns=job_ns,
                    priority_class=priorities.job_name,
                    flywheel=flywheels.get(name),
                )
            )
            GitLabRunner(
                self,
                f"Runner{_construct_name(name)}",
                GitLabRunnerProps(
                    name=runner_release_name(name),
                    namespace=manager_ns,
                    runner_type=name,
                    job_namespace=job_ns,
                    gitlab_url=config.gitlab.url,
                    token_secret=tokens[name],
                    runner_config=toml,
                    concurrent=spec.concurrent,
                    check_interval=runners.check_interval,
                    replicas=spec.replicas,
                    resources=compute(spec.manager_resources),
                    node_selector=spec.manager.node_selector,
                    tolerations=[t.model_dump(exclude_none=True) for t in spec.manager.tolerations],
                    priority_class=priorities.manager_name,
                    namespace_per_job=spec.namespace_per_job,
                    cache_secret=cache_secret,
                    service_account_annotations=runners.cache.service_account_annotations
                    if runners.cache.enabled and runners.cache.credentials == "workload_identity"
                    else {},
                    depends_on=first,
                ),
            )
        _cleanup(self, runners, manager_ns, ready)
        if runners.agent_access:
            AgentCiAccess(
                self,
                "AgentAccess",
                AgentCiAccessProps(
                    grants=[
                        AgentGrant(
                            project_id=grant.project_id,
                            group_id=grant.group_id,
                            access=grant.access,
                            namespaces=tuple(grant.namespaces or namespaces),
                        )
                        for grant in runners.agent_access
                    ],
                    depends_on=ready,
                ),
            )
        if config.monitoring.prometheus_operator:
            _monitoring(self, runners, config.monitoring.discovery_labels, ready)
        TerraformOutput(
            self,
            "runner_tags",
            value={name: runner_tags(config, name) for name, _spec in enabled_types(runners)},
            description="Job tags each runner type picks up (gitlab_api token source).",
        )
        TerraformOutput(
            self,
            "job_namespaces",
            value={name: job_namespace_of(runners, name) for name, _ in enabled_types(runners)},
        )


def _construct_name(runner_type: str) -> str:
    """``nix_protected`` -> ``NixProtected``; the existing types keep their ids (``Docker``)."""
    return "".join(part.capitalize() for part in runner_type.split("_"))


def _budget(scope: Construct, construct_id: str, namespace: str, budget: Budget) -> NamespaceBudget:
    return NamespaceBudget(
        scope,
        construct_id,
        NamespaceBudgetProps(
            namespace=namespace,
            quota={str(k): v for k, v in budget.quota.items()},
            default_request={str(k): v for k, v in budget.default_request.items()},
            default_limit={str(k): v for k, v in budget.default_limit.items()},
            max={str(k): v for k, v in budget.max.items()},
        ),
    )


def _token_secrets(scope: Construct, env: ResolvedEnvironment, namespace: str) -> dict[str, str]:
    """Secret name per type: created from a GitLab runner, or the operator's own."""
    config = env.config
    runners = config.runners
    names = {name: token_secret_of(name, spec) for name, spec in enabled_types(runners)}
    if runners.token_source == "existing_secret":
        return names
    from stacks.providers import gitlab_provider

    gitlab_provider(scope, config.gitlab.url)
    api = runners.gitlab_api
    out: dict[str, str] = {}
    for name, spec in enabled_types(runners):
        registration = spec.gitlab
        token = GitLabRunnerToken(
            scope,
            f"Token{_construct_name(name)}",
            GitLabRunnerTokenProps(
                namespace=namespace,
                secret_name=names[name],
                scope=api.runner_type,
                group_id=int(api.group_id) if api.group_id else None,
                project_id=int(api.project_id) if api.project_id else None,
                description=runner_description(config, env.name, name),
                tags=runner_tags(config, name),
                run_untagged=registration.run_untagged,
                locked=registration.locked,
                access_level=registration.access_level,
                maximum_timeout=registration.maximum_timeout,
                paused=registration.paused,
            ),
        )
        out[name] = token.secret_name
    return out


def _cache_secret(scope: Construct, runners: Runners, namespace: str) -> str | None:
    cache = runners.cache
    if not cache.enabled or cache.credentials == "workload_identity":
        return None
    if cache.credentials == "existing_secret":
        return cache.secret_name
    values = {
        key: TerraformVariable(
            scope,
            variable,
            type="string",
            sensitive=True,
            description=f"Runner cache S3 {what} (export TF_VAR_{variable})",
        ).string_value
        for key, variable, what in (
            ("accesskey", "runner_cache_access_key_id", "access key id"),
            ("secretkey", "runner_cache_secret_access_key", "secret access key"),
        )
    }
    secret = SecretV1(
        scope,
        "CacheCredentials",
        metadata=SecretV1Metadata(name=cache.secret_name, namespace=namespace),
        type="Opaque",
        data=values,
    )
    return secret.metadata.name


def _policies(
    scope: Construct, env: ResolvedEnvironment, namespaces: dict[str, str]
) -> dict[str, list[ITerraformDependable]]:
    """Managers talk to GitLab and the API server; jobs to DNS, Attic and the internet.
    Returns the policies by namespace."""
    config = env.config
    runners, attic = config.runners, config.attic
    manager_in = (
        [Rule(peers=[Peer(namespace=EVERY_NAMESPACE)], ports=[METRICS_PORT])]
        if config.monitoring.prometheus_operator
        else []
    )
    manager = TrafficPolicy(
        scope,
        "ManagerPolicy",
        TrafficPolicyProps(
            name="runner-managers",
            namespace=namespaces[runners.namespace],
            pod_selector=dict(MANAGER_LABELS),
            ingress=manager_in,
            egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=list(API_SERVER_PORTS))],
        ),
    )
    made: dict[str, list[ITerraformDependable]] = {runners.namespace: [manager.policy]}
    egress = runners.egress
    job_out: list[Rule] = []
    if egress.internet:
        job_out.append(
            Rule(
                peers=[Peer(cidr="0.0.0.0/0", except_cidrs=PRIVATE_RANGES)],
                ports=[80, 443, *egress.ports],
            )
        )
    if egress.cidrs:
        job_out.append(Rule(peers=[Peer(cidr=cidr) for cidr in egress.cidrs]))
    attic_pods = {"app.kubernetes.io/name": "attic", "app.kubernetes.io/component": "api"}
    for construct_id, name in (
        ("JobPolicy", runners.job_namespace),
        ("DindPolicy", runners.dind_namespace),
    ):
        rules = list(job_out)
        if name == runners.job_namespace and attic_wiring_active(config):
            # Nix pulls from the configured endpoint; the attic client pushes to atticd's
            # public api-endpoint, and downloads follow redirects to storage.
            if runners.attic.endpoint == "in_cluster":
                rules.append(
                    Rule(
                        peers=[Peer(namespace=attic.namespace, pod_labels=attic_pods)],
                        ports=[HTTP_PORT],
                    )
                )
            rules += cache_client_egress(env)
        if not rules:
            continue
        policy = TrafficPolicy(
            scope,
            construct_id,
            TrafficPolicyProps(
                name="ci-jobs",
                namespace=namespaces[name],
                pod_selector=dict(JOB_POD_LABELS),
                egress=rules,
            ),
        )
        made[name] = [policy.policy]
    return made


def _cleanup(scope: Construct, runners: Runners, manager_ns: str, ready: list[NamespaceV1]) -> None:
    cleanup = runners.cleanup
    if not cleanup.enabled:
        return
    per_job = any(spec.namespace_per_job for _, spec in enabled_types(runners))
    job = RunnerJobCleanup(
        scope,
        "Cleanup",
        RunnerJobCleanupProps(
            namespace=manager_ns,
            job_namespaces=[runners.job_namespace, runners.dind_namespace],
            schedule=cleanup.schedule,
            max_age_seconds=int(parse_duration(cleanup.max_age)),
            finished_after_seconds=int(parse_duration(cleanup.finished_after)),
            namespace_per_job_prefix="ci-job-" if per_job else None,
            depends_on=ready,
        ),
    )
    TrafficPolicy(
        scope,
        "CleanupPolicy",
        TrafficPolicyProps(
            name="runner-cleanup",
            namespace=manager_ns,
            pod_selector=job.labels,
            egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=list(API_SERVER_PORTS))],
        ),
    )


def _monitoring(
    scope: Construct, runners: Runners, labels: Mapping[str, str], ready: list[NamespaceV1]
) -> None:
    from constructs_lib.monitoring.pod_monitor import PodMonitor, PodMonitorProps
    from constructs_lib.monitoring.runner_alerts import (
        RUNNER_TARGET_LABELS,
        RunnerAlerts,
        RunnerAlertsProps,
    )

    monitor = PodMonitor(
        scope,
        "PodMonitor",
        PodMonitorProps(
            name="gitlab-runner",
            namespace=runners.namespace,
            pod_labels=dict(MANAGER_LABELS),
            port=METRICS_PORT_NAME,
            relabel_pod_labels=RUNNER_TARGET_LABELS,
            labels=labels,
            depends_on=ready,
        ),
    )
    cleanup = runners.cleanup
    # Pods the cleanup should have removed: its age limit plus one schedule period (at most
    # an hour for the schedules people use).
    leaked_after = int(parse_duration(cleanup.max_age)) + 3600 if cleanup.enabled else 6 * 3600
    RunnerAlerts(
        scope,
        "Alerts",
        RunnerAlertsProps(
            name="gitlab-runner",
            namespace=runners.namespace,
            scrape_job=monitor.job,
            leaked_pod_age_seconds=leaked_after,
            manager_namespace=runners.namespace,
            job_namespaces=[runners.job_namespace, runners.dind_namespace],
            runner_types=[name for name, _ in enabled_types(runners)],
            labels=labels,
            depends_on=ready,
        ),
    )
