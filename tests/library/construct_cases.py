"""One set of props per public construct, with its optional children switched on, for the
address inventory (``tests/library/addresses.json``, see ``test_construct_addresses.py``).

Each case builds its construct directly under a stack of its own with a fixed construct id, as
a user would. Regenerate the inventory after an intended change with
``.venv/bin/python -m tests.library.construct_cases --write``.

Long because it is one table with a case for every public construct (the test requires them
all), each with the props that switch its optional children on; split, a new construct's case
would have no single place to go.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stacks  # noqa: F401  (first: points jsii at the project's Node before cdktf starts it)

# isort: split

from cdktf import App, TerraformStack, TerraformVariable
from constructs import Construct

from constructs_lib.attic.attic_server import AtticServer, AtticServerProps
from constructs_lib.attic.cache_init import AtticCaches, AtticCachesProps, CacheSpec
from constructs_lib.attic.cache_warm import AtticCacheWarm, AtticCacheWarmProps
from constructs_lib.attic.ops_pod import AtticadmInputs
from constructs_lib.attic.pod import DatabaseRef
from constructs_lib.attic.signing_key import AtticSigningKey, AtticSigningKeyProps
from constructs_lib.attic.signing_key_job import AtticSigningKeyJob, AtticSigningKeyJobProps
from constructs_lib.attic.token_rotation import (
    AtticTokenRotation,
    AtticTokenRotationProps,
    TokenSpec,
)
from constructs_lib.bazel.bazel_remote import BazelRemote, BazelRemoteProps
from constructs_lib.dashboard.read_access import DashboardReadAccess, DashboardReadAccessProps
from constructs_lib.dashboard.runner_dashboard import RunnerDashboard, RunnerDashboardProps
from constructs_lib.helm.pinned_release import PinnedHelmRelease, PinnedHelmReleaseProps
from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.kubernetes.ingress_allow_policy import (
    IngressAllowPolicy,
    IngressAllowPolicyProps,
)
from constructs_lib.kubernetes.namespace_budget import NamespaceBudget, NamespaceBudgetProps
from constructs_lib.kubernetes.rate_limit import RateLimitProps
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.kubernetes.web_ingress import Route, WebIngress, WebIngressProps
from constructs_lib.monitoring.dashboard_alerts import DashboardAlerts, DashboardAlertsProps
from constructs_lib.monitoring.pod_monitor import PodMonitor, PodMonitorProps
from constructs_lib.monitoring.prometheus_rule import PrometheusRule, PrometheusRuleProps
from constructs_lib.monitoring.runner_alerts import RunnerAlerts, RunnerAlertsProps
from constructs_lib.platform.barman_cloud_plugin import BarmanCloudPlugin, BarmanCloudPluginProps
from constructs_lib.platform.cert_manager import CertManager, CertManagerProps
from constructs_lib.platform.cnpg_operator import (
    CloudNativePgOperator,
    CloudNativePgOperatorProps,
)
from constructs_lib.platform.minio_operator import MinioOperator, MinioOperatorProps
from constructs_lib.postgres.barman_object_store import BarmanObjectStore, BarmanObjectStoreProps
from constructs_lib.postgres.cnpg_cluster import ClusterBackup, CnpgCluster, CnpgClusterProps
from constructs_lib.postgres.cnpg_database import CnpgDatabase, CnpgDatabaseProps
from constructs_lib.postgres.database_login import DatabaseLogin, DatabaseLoginProps
from constructs_lib.runners.agent_access import AgentCiAccess, AgentCiAccessProps, AgentGrant
from constructs_lib.runners.flywheel_scripts import (
    AtticFlywheelScripts,
    AtticFlywheelScriptsProps,
)
from constructs_lib.runners.gitlab_runner import GitLabRunner, GitLabRunnerProps
from constructs_lib.runners.job_cleanup import RunnerJobCleanup, RunnerJobCleanupProps
from constructs_lib.runners.priority_classes import (
    RunnerPriorityClasses,
    RunnerPriorityClassesProps,
)
from constructs_lib.runners.runner_token import GitLabRunnerToken, GitLabRunnerTokenProps
from constructs_lib.storage.generated_keys import GeneratedKeys
from constructs_lib.storage.minio_tenant import MinioTenant, MinioTenantProps
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)
from constructs_lib.storage.s3_endpoint import S3Credentials, StorageIdentity
from constructs_lib.storage.seaweedfs import FilerPostgres, SeaweedFs, SeaweedFsProps
from constructs_lib.versions import SEAWEEDFS_CHART

INVENTORY = Path(__file__).resolve().parent / "addresses.json"

SMALL = ComputeResources(
    cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
)
ATTIC = AtticadmInputs(
    image="docker.io/example/attic:1",
    config_map="attic-config",
    signing_secret="attic-token-signing",
    signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
)
IDENTITIES = [
    StorageIdentity(name="attic", bucket="attic", secret_namespace="attic", secret_name="a-s3"),
    StorageIdentity(name="bazel", bucket="bazel", secret_namespace="bazel", secret_name="b-s3"),
]
SERVER_CONFIG: dict[str, Any] = {
    "api-endpoint": "https://cache.example.com/",
    "database": {},
    "storage": {"type": "s3", "region": "eu-west-1", "bucket": "attic"},
    "chunking": {
        "nar-size-threshold": 65536,
        "min-size": 16384,
        "avg-size": 65536,
        "max-size": 262144,
    },
}
RUNNER_TOML = '[[runners]]\nname = "docker"\n'

Case = Callable[[Construct], object]


def _secret(scope: Construct, name: str) -> str:
    return TerraformVariable(scope, name, type="string", sensitive=True).string_value


def _attic_server(scope: Construct, gc_interval: str) -> object:
    config = {**SERVER_CONFIG, "garbage-collection": {"interval": gc_interval}}
    return AtticServer(
        scope,
        "Attic",
        AtticServerProps(
            namespace="attic",
            server_config=config,
            database=DatabaseRef(url_secret="db-app", ca_secret="db-ca"),
            signing_secret="attic-token-signing",
            signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
            storage_credentials=S3Credentials(secret_name="attic-s3"),
            route_services=("attic-binary-cache", "attic-cache-info"),
        ),
    )


def _aws_bucket(scope: Construct) -> object:
    # the AWS and Cloudflare providers load only when their case runs, not at collection
    from constructs_lib.storage.aws_s3_bucket import AwsS3Bucket, AwsS3BucketProps

    return AwsS3Bucket(scope, "Bucket", AwsS3BucketProps(name="acme-bucket", protect=True))


def _cloudflare(scope: Construct) -> object:
    from constructs_lib.dns.cloudflare_records import CloudflareRecords, CloudflareRecordsProps

    return CloudflareRecords(
        scope,
        "Dns",
        CloudflareRecordsProps(
            zone_id="0123456789abcdef0123456789abcdef",
            hosts=["a.example.com", "b.example.com"],
            target="203.0.113.10",
        ),
    )


def _oauth_application(scope: Construct) -> object:
    from constructs_lib.dashboard.oauth_application import (
        DashboardOAuthApplication,
        DashboardOAuthApplicationProps,
    )

    return DashboardOAuthApplication(
        scope,
        "OAuthApplication",
        DashboardOAuthApplicationProps(
            name="Acme runner dashboard", public_url="https://runners.example.com"
        ),
    )


CASES: dict[str, Case] = {
    # kubernetes
    "SecureNamespace": lambda s: SecureNamespace(
        s, "Namespace", SecureNamespaceProps(name="ns", deny_egress=True, protect=True)
    ),
    "NamespaceBudget": lambda s: NamespaceBudget(
        s,
        "Budget",
        NamespaceBudgetProps(
            namespace="ns",
            quota={"requests.cpu": "4", "pods": "10"},
            default_request={"cpu": "100m"},
            default_limit={"cpu": "1"},
        ),
    ),
    "TrafficPolicy": lambda s: TrafficPolicy(
        s,
        "Policy",
        TrafficPolicyProps(
            name="p",
            namespace="ns",
            ingress=[Rule(peers=[Peer(namespace="traefik")], ports=[80])],
            egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=[443])],
        ),
    ),
    "IngressAllowPolicy": lambda s: IngressAllowPolicy(
        s,
        "Allow",
        IngressAllowPolicyProps(name="a", namespace="ns", pod_selector={"a": "b"}, ports=[80]),
    ),
    "CustomResource": lambda s: CustomResource(
        s,
        "Thing",
        CustomResourceProps(
            manifest={"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}},
            protect=True,
        ),
    ),
    "WebIngress": lambda s: WebIngress(
        s,
        "Ingress",
        WebIngressProps(
            name="web",
            namespace="ns",
            host="web.example.com",
            service_name="web",
            service_port=80,
            controller="traefik",
            controller_namespace="traefik",
            cluster_issuer="letsencrypt",
            rate_limit=RateLimitProps(average=10, burst=20, paths=("/_api/",)),
            routes=(Route(path="/x/", service_name="other"),),
        ),
    ),
    "WebIngress-events-tls-secret": lambda s: WebIngress(
        s,
        "Ingress",
        WebIngressProps(
            name="events",
            namespace="ns",
            host="events.example.com",
            service_name="events",
            service_port=8080,
            controller="nginx",
            controller_namespace="ingress-nginx",
            tls_secret="events-tls",
            traffic="events",
            sticky_cookie="pod",
        ),
    ),
    # helm and platform
    "PinnedHelmRelease": lambda s: PinnedHelmRelease(
        s,
        "Release",
        PinnedHelmReleaseProps(
            name="r",
            namespace="ns",
            chart=SEAWEEDFS_CHART,
        ),
    ),
    "CloudNativePgOperator": lambda s: CloudNativePgOperator(
        s, "Cnpg", CloudNativePgOperatorProps(namespace="cnpg-system", pod_monitor=True)
    ),
    "BarmanCloudPlugin": lambda s: BarmanCloudPlugin(
        s, "BarmanCloud", BarmanCloudPluginProps(namespace="cnpg-system")
    ),
    "CertManager": lambda s: CertManager(
        s, "CertManager", CertManagerProps(namespace="cert-manager", pod_monitor=True)
    ),
    "MinioOperator": lambda s: MinioOperator(
        s, "MinioOperator", MinioOperatorProps(namespace="minio-operator")
    ),
    # postgres
    "BarmanObjectStore": lambda s: BarmanObjectStore(
        s,
        "Backups",
        BarmanObjectStoreProps(
            name="pg-backups",
            namespace="db",
            bucket="b",
            endpoint_url=None,
            credentials=S3Credentials(secret_name="k"),
            protect=True,
        ),
    ),
    "CnpgCluster": lambda s: CnpgCluster(
        s,
        "Postgres",
        CnpgClusterProps(
            name="pg",
            namespace="db",
            backup=ClusterBackup(object_store="pg-backups", schedule="0 0 3 * * *"),
            pod_monitor=True,
            protect=True,
        ),
    ),
    "CnpgDatabase": lambda s: CnpgDatabase(
        s,
        "Database",
        CnpgDatabaseProps(cluster="pg", namespace="db", database="app2", owner="app2"),
    ),
    "DatabaseLogin": lambda s: DatabaseLogin(
        s, "Login", DatabaseLoginProps(role="app2", namespace="db", secret_name="pg-app2")
    ),
    # storage
    "S3CredentialsSecret": lambda s: S3CredentialsSecret(
        s,
        "Keys",
        S3CredentialsSecretProps(
            name="keys",
            namespace="ns",
            access_key_id=_secret(s, "key_id"),
            secret_access_key=_secret(s, "secret_key"),
        ),
    ),
    "GeneratedKeys": lambda s: GeneratedKeys(s, "Keys", IDENTITIES),
    "MinioTenant": lambda s: MinioTenant(
        s,
        "Storage",
        MinioTenantProps(name="store", namespace="storage", identities=IDENTITIES, protect=True),
    ),
    "SeaweedFs": lambda s: SeaweedFs(
        s,
        "SeaweedFs",
        SeaweedFsProps(
            namespace="storage",
            identities=IDENTITIES,
            filer_postgres=FilerPostgres(
                host="pg-rw.db.svc",
                database="filer",
                user="filer",
                password=_secret(s, "filer_password"),
            ),
            protect=True,
        ),
    ),
    "AwsS3Bucket": _aws_bucket,
    # attic
    "AtticServer": lambda s: _attic_server(s, "12 hours"),
    "AtticServer-gc-cronjob": lambda s: _attic_server(s, "0s"),
    "AtticCaches": lambda s: AtticCaches(
        s,
        "Caches",
        AtticCachesProps(
            namespace="attic",
            caches=[CacheSpec(name="main")],
            endpoint="http://attic.attic.svc/",
            attic=ATTIC,
            python_image="python:3",
        ),
    ),
    "AtticCacheWarm": lambda s: AtticCacheWarm(
        s,
        "Warm",
        AtticCacheWarmProps(
            namespace="attic",
            endpoint="http://attic.attic.svc/",
            cache="main",
            token_secret="warm-token",
            installables=["nixpkgs#hello"],
        ),
    ),
    "AtticSigningKey": lambda s: AtticSigningKey(
        s, "SigningKey", AtticSigningKeyProps(namespace="attic", protect=True)
    ),
    "AtticSigningKeyJob": lambda s: AtticSigningKeyJob(
        s,
        "SigningKeyJob",
        AtticSigningKeyJobProps(namespace="attic", keygen_image="o:1", python_image="p:1"),
    ),
    "AtticTokenRotation": lambda s: AtticTokenRotation(
        s,
        "Tokens",
        AtticTokenRotationProps(
            namespace="attic",
            tokens=[
                TokenSpec(
                    name=name,
                    namespace=namespace,
                    secret_name=f"{name}-token",
                    validity_seconds=86400,
                    rotate_before_seconds=3600,
                    grants={"pull": ["main"]},
                )
                for name, namespace in (("ci", "ci-jobs"), ("warm", "attic"))
            ],
            attic=ATTIC,
            python_image="python:3",
        ),
    ),
    "BazelRemote": lambda s: BazelRemote(
        s,
        "BazelCache",
        BazelRemoteProps(
            namespace="bazel",
            s3_endpoint="https://s3.example.com",
            bucket="bazel",
            region="eu-west-1",
            credentials=S3Credentials(secret_name="bazel-s3"),
            service_monitor=True,
        ),
    ),
    "CloudflareRecords": _cloudflare,
    # dashboard
    "RunnerDashboard": lambda s: RunnerDashboard(
        s,
        "Dashboard",
        RunnerDashboardProps(
            namespace="dashboard",
            image="registry.example.com/dashboard@sha256:" + "0" * 64,
            settings={"DASHBOARD_ENVIRONMENT": "dev"},
            config_text="organization: {name: acme}\n",
            oauth_client_secret=_secret(s, "oauth_client_secret"),
            gitlab_read_token=_secret(s, "gitlab_read_token"),
            replicas=2,
        ),
    ),
    "DashboardReadAccess": lambda s: DashboardReadAccess(
        s,
        "ReadAccess",
        DashboardReadAccessProps(
            account="runner-dashboard",
            account_namespace="dashboard",
            namespaces=["runners", "jobs"],
        ),
    ),
    "DashboardOAuthApplication": _oauth_application,
    # monitoring
    "PodMonitor": lambda s: PodMonitor(
        s, "Monitor", PodMonitorProps(name="m", namespace="ns", pod_labels={"a": "b"})
    ),
    "PrometheusRule": lambda s: PrometheusRule(
        s,
        "Rules",
        PrometheusRuleProps(
            name="r",
            namespace="ns",
            groups=[{"name": "g", "rules": [{"record": "a:b", "expr": "up"}]}],
        ),
    ),
    "DashboardAlerts": lambda s: DashboardAlerts(
        s,
        "DashboardAlerts",
        DashboardAlertsProps(name="dashboard", namespace="ns", scrape_job="ns/dashboard"),
    ),
    "RunnerAlerts": lambda s: RunnerAlerts(
        s,
        "RunnerAlerts",
        RunnerAlertsProps(
            name="runners", namespace="ns", scrape_job="ns/runner", leaked_pod_age_seconds=7200
        ),
    ),
    # runners
    "AgentCiAccess": lambda s: AgentCiAccess(
        s,
        "CiAccess",
        AgentCiAccessProps(
            grants=[
                AgentGrant(namespaces=["a"], group_id="1"),
                AgentGrant(namespaces=["a", "b"], project_id="2", access="operate"),
            ]
        ),
    ),
    "AtticFlywheelScripts": lambda s: AtticFlywheelScripts(
        s, "Flywheel", AtticFlywheelScriptsProps(namespace="ci-nix")
    ),
    "GitLabRunner": lambda s: GitLabRunner(
        s,
        "Runner",
        GitLabRunnerProps(
            name="runner",
            namespace="runners",
            runner_type="docker",
            job_namespace="jobs",
            gitlab_url="https://gitlab.example.com",
            token_secret="token",
            runner_config=RUNNER_TOML,
            concurrent=2,
        ),
    ),
    "RunnerJobCleanup": lambda s: RunnerJobCleanup(
        s,
        "Cleanup",
        RunnerJobCleanupProps(
            namespace="runners",
            job_namespaces=["jobs", "dind"],
            max_age_seconds=7200,
            namespace_per_job_prefix="ci-job-",
        ),
    ),
    "RunnerPriorityClasses": lambda s: RunnerPriorityClasses(
        s, "Priorities", RunnerPriorityClassesProps(prefix="runners")
    ),
    "GitLabRunnerToken": lambda s: GitLabRunnerToken(
        s,
        "Token",
        GitLabRunnerTokenProps(
            namespace="runners",
            secret_name="runner-token",
            scope="project_type",
            project_id=7,
            description="docker",
            tags=["docker"],
        ),
    ),
}


def case_addresses(outdir: Path) -> dict[str, list[str]]:
    """Every case synthesized into ``outdir``: case name -> its sorted addresses."""
    app = App(outdir=str(outdir), skip_validation=True)
    for name, build in CASES.items():
        build(TerraformStack(app, name))
    app.synth()
    manifest = json.loads((outdir / "manifest.json").read_text())
    found = {}
    for name in CASES:
        doc = json.loads((outdir / manifest["stacks"][name]["synthesizedStackPath"]).read_text())
        addresses = [f"{t}.{n}" for t, items in doc.get("resource", {}).items() for n in items]
        addresses += [f"data.{t}.{n}" for t, items in doc.get("data", {}).items() for n in items]
        addresses += [f"var.{n}" for n in doc.get("variable", {})]
        addresses += [f"output.{n}" for n in doc.get("output", {})]
        found[name] = sorted(addresses)
    return found


def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        found = case_addresses(Path(scratch))
    if argv == ["--write"]:
        INVENTORY.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
        print(f"wrote {INVENTORY}")
    else:
        print(json.dumps(found, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
