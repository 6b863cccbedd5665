"""A CloudNativePG cluster with continuous Barman Cloud backups to S3, and its operators.

Only attic-iac-constructs: no YAML, no stacks. Two stacks, applied in this order, because the
kubernetes provider reads a custom resource's CRD when it plans: ``cnpg-operators`` installs
the CloudNativePG operator and the Barman Cloud plugin (cert-manager must already run: the
plugin's chart asks it for certificates); ``cnpg-database`` makes a ``restricted`` namespace, an
``ObjectStore`` on the bucket, a three-instance cluster that archives WAL continuously and
takes a base backup every night, and a second database with its own login.

The S3 keys are sensitive variables (``TF_VAR_backup_s3_access_key_id``,
``TF_VAR_backup_s3_secret_access_key``). Synthesize with ``python main.py``; apply
``cdktf.out/stacks/cnpg-operators`` first, then ``cdktf.out/stacks/cnpg-database``.
"""

from cdktf import App, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from cdktf_cdktf_provider_random.provider import RandomProvider

from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.platform.barman_cloud_plugin import BarmanCloudPlugin, BarmanCloudPluginProps
from constructs_lib.platform.cnpg_operator import (
    CloudNativePgOperator,
    CloudNativePgOperatorProps,
)
from constructs_lib.postgres.barman_object_store import BarmanObjectStore, BarmanObjectStoreProps
from constructs_lib.postgres.cnpg_cluster import (
    POSTGRES_PORT,
    STATUS_PORT,
    ClusterBackup,
    CnpgCluster,
    CnpgClusterProps,
)
from constructs_lib.postgres.cnpg_database import CnpgDatabase, CnpgDatabaseProps
from constructs_lib.postgres.database_login import DatabaseLogin, DatabaseLoginProps
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)

KUBE_CONTEXT = "platform"  # the kubeconfig context OpenTofu uses (KUBE_CONFIG_PATH)
OPERATOR_NAMESPACE = "cnpg-system"
NAMESPACE = "databases"
BUCKET = "acme-pg-backups"
API_SERVER_PORTS = [443, 6443]
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


def kubernetes(stack: TerraformStack) -> None:
    KubernetesProvider(stack, "kubernetes", config_context=KUBE_CONTEXT)


class OperatorsStack(TerraformStack):
    """The CloudNativePG operator and the Barman Cloud plugin, with their CRDs."""

    def __init__(self, scope: App, stack_id: str) -> None:
        super().__init__(scope, stack_id)
        kubernetes(self)
        HelmProvider(self, "helm", kubernetes=HelmProviderKubernetes(config_context=KUBE_CONTEXT))
        namespace = SecureNamespace(
            self, "Namespace", SecureNamespaceProps(name=OPERATOR_NAMESPACE, protect=True)
        )
        operator = CloudNativePgOperator(
            self,
            "Cnpg",
            CloudNativePgOperatorProps(namespace=OPERATOR_NAMESPACE, protect=True),
        )
        operator.node.add_dependency(namespace)
        BarmanCloudPlugin(
            self,
            "BarmanCloud",
            BarmanCloudPluginProps(
                namespace=OPERATOR_NAMESPACE, protect=True, depends_on=[operator.helm.release]
            ),
        )


class DatabaseStack(TerraformStack):
    """A backed-up Postgres cluster with an application database and a second one."""

    def __init__(self, scope: App, stack_id: str) -> None:
        super().__init__(scope, stack_id)
        kubernetes(self)
        RandomProvider(self, "random")
        namespace = SecureNamespace(
            self,
            "Namespace",
            SecureNamespaceProps(name=NAMESPACE, deny_egress=True, protect=True),
        )
        key_id = TerraformVariable(self, "backup_s3_access_key_id", type="string", sensitive=True)
        secret = TerraformVariable(
            self, "backup_s3_secret_access_key", type="string", sensitive=True
        )
        keys = S3CredentialsSecret(
            self,
            "BackupKeys",
            S3CredentialsSecretProps(
                name="pg-backup-s3",
                namespace=namespace.name,
                access_key_id=key_id.string_value,
                secret_access_key=secret.string_value,
            ),
        )
        store = BarmanObjectStore(
            self,
            "Backups",
            BarmanObjectStoreProps(
                name="pg-backups",
                namespace=NAMESPACE,
                bucket=BUCKET,
                endpoint_url=None,  # AWS S3
                credentials=keys.credentials,
                retention="30d",
                protect=True,
                depends_on=(namespace.namespace,),
            ),
        )
        login = DatabaseLogin(
            self,
            "ReportingLogin",
            DatabaseLoginProps(
                role="reporting", namespace=namespace.name, secret_name="pg-reporting"
            ),
        )
        cluster = CnpgCluster(
            self,
            "Postgres",
            CnpgClusterProps(
                name="pg",
                namespace=NAMESPACE,
                instances=3,
                storage_size="50Gi",
                database="app",
                backup=ClusterBackup(object_store=store.name, schedule="0 0 3 * * *"),
                roles=[login.role],
                protect=True,
                depends_on=[store.store.resource, login.secret, *namespace.policies],
            ),
        )
        CnpgDatabase(
            self,
            "ReportingDatabase",
            CnpgDatabaseProps(
                cluster=cluster.name,
                namespace=NAMESPACE,
                database="reporting",
                owner="reporting",
                depends_on=[cluster.cluster.resource],
            ),
        )
        pg = cluster.pod_labels
        TrafficPolicy(
            self,
            "PostgresPolicy",
            TrafficPolicyProps(
                name="postgres",
                namespace=NAMESPACE,
                pod_selector=pg,
                ingress=[
                    Rule(
                        peers=[Peer(pod_labels=pg), Peer(namespace=OPERATOR_NAMESPACE)],
                        ports=[POSTGRES_PORT, STATUS_PORT],
                    )
                ],
                egress=[
                    Rule(peers=[Peer(pod_labels=pg)], ports=[POSTGRES_PORT, STATUS_PORT]),
                    Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=API_SERVER_PORTS),
                    # the Barman Cloud sidecar: S3, and the plugin's gRPC in the operator's
                    # namespace
                    Rule(peers=[Peer(cidr="0.0.0.0/0", except_cidrs=PRIVATE_RANGES)], ports=[443]),
                    Rule(peers=[Peer(namespace=OPERATOR_NAMESPACE)], ports=[9090]),
                ],
            ),
        )


app = App()
OperatorsStack(app, "cnpg-operators")
DatabaseStack(app, "cnpg-database")
app.synth()
