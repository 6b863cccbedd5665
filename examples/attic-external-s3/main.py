"""An Attic cache on an existing cluster, storing NARs in an external S3 bucket.

Only attic-iac-constructs: no YAML, no stacks. The cluster already runs the CloudNativePG
operator (namespace ``cnpg-system``), cert-manager with a ClusterIssuer and Traefik; the
bucket exists. This app adds a ``restricted`` namespace that denies every connection in and
out but the ones listed below, a three-instance Postgres with TLS-only logins, atticd split
into migrations, a scaled API and one garbage collector, a signing key made inside the cluster
(never in Terraform state), the declared caches, and an HTTPS Ingress.

The S3 keys are sensitive variables: ``export TF_VAR_attic_s3_access_key_id=...`` and
``TF_VAR_attic_s3_secret_access_key=...`` before ``tofu plan``; they live only in state and
one Secret. Synthesize with ``python main.py`` (or ``cdktf synth``).
"""

from cdktf import App, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider

from constructs_lib.attic.attic_server import AtticServer, AtticServerProps
from constructs_lib.attic.cache_init import AtticCaches, AtticCachesProps, CacheSpec
from constructs_lib.attic.ops_pod import AtticadmInputs
from constructs_lib.attic.pod import HTTP_PORT, DatabaseRef
from constructs_lib.attic.signing_key_job import AtticSigningKeyJob, AtticSigningKeyJobProps
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.kubernetes.web_ingress import WebIngress, WebIngressProps
from constructs_lib.postgres.cnpg_cluster import (
    POSTGRES_PORT,
    STATUS_PORT,
    CnpgCluster,
    CnpgClusterProps,
)
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)
from constructs_lib.versions import ATTIC_IMAGE, OPENSSL_IMAGE, OPS_PYTHON_IMAGE

KUBE_CONTEXT = "platform"  # the kubeconfig context OpenTofu uses (KUBE_CONFIG_PATH)
HOST = "cache.example.com"
BUCKET, REGION = "acme-attic", "eu-west-1"
S3_ENDPOINT = "https://s3.eu-west-1.amazonaws.com"
NAMESPACE = "attic"
API_SERVER_PORTS = [443, 6443]
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
ANYWHERE_PUBLIC = [Peer(cidr="0.0.0.0/0", except_cidrs=PRIVATE_RANGES)]


class AtticStack(TerraformStack):
    """atticd with Postgres, external S3, a signing key, caches and an Ingress."""

    def __init__(self, scope: App, stack_id: str) -> None:
        super().__init__(scope, stack_id)
        KubernetesProvider(self, "kubernetes", config_context=KUBE_CONTEXT)
        namespace = SecureNamespace(
            self, "Namespace", SecureNamespaceProps(name=NAMESPACE, deny_egress=True)
        )
        key_id = TerraformVariable(self, "attic_s3_access_key_id", type="string", sensitive=True)
        secret = TerraformVariable(
            self, "attic_s3_secret_access_key", type="string", sensitive=True
        )
        s3_keys = S3CredentialsSecret(
            self,
            "S3Keys",
            S3CredentialsSecretProps(
                name="attic-s3",
                namespace=namespace.name,
                access_key_id=key_id.string_value,
                secret_access_key=secret.string_value,
            ),
        )
        database = CnpgCluster(
            self,
            "Postgres",
            CnpgClusterProps(
                name="attic-db",
                namespace=NAMESPACE,
                storage_size="20Gi",
                protect=True,
                depends_on=namespace.policies,
            ),
        )
        signing = AtticSigningKeyJob(
            self,
            "SigningKeyJob",
            AtticSigningKeyJobProps(
                namespace=NAMESPACE,
                keygen_image=OPENSSL_IMAGE.ref,
                python_image=OPS_PYTHON_IMAGE.ref,
                depends_on=[namespace.namespace],
            ),
        )
        server = AtticServer(
            self,
            "Attic",
            AtticServerProps(
                namespace=NAMESPACE,
                server_config={
                    "api-endpoint": f"https://{HOST}/",
                    "allowed-hosts": [HOST, f"attic.{NAMESPACE}.svc"],
                    "database": {},
                    "storage": {
                        "type": "s3",
                        "region": REGION,
                        "bucket": BUCKET,
                        "endpoint": S3_ENDPOINT,
                    },
                    "chunking": {
                        "nar-size-threshold": 65536,
                        "min-size": 16384,
                        "avg-size": 65536,
                        "max-size": 262144,
                    },
                    "compression": {"type": "zstd"},
                    "garbage-collection": {
                        "interval": "12 hours",
                        "default-retention-period": "90 days",
                    },
                },
                database=DatabaseRef(url_secret=database.app_secret, ca_secret=database.ca_secret),
                signing_secret=signing.secret_name,
                signing_key=signing.secret_key,
                storage_credentials=s3_keys.credentials,
                probe_host=HOST,
                depends_on=[database.cluster.resource, signing.ready],
            ),
        )
        caches = AtticCaches(
            self,
            "Caches",
            AtticCachesProps(
                namespace=NAMESPACE,
                caches=[CacheSpec(name="main", public=True), CacheSpec(name="ci")],
                endpoint=f"http://attic.{NAMESPACE}.svc/",
                attic=AtticadmInputs(
                    image=ATTIC_IMAGE.ref,
                    config_map=server.config_map_name,
                    signing_secret=signing.secret_name,
                    signing_key=signing.secret_key,
                ),
                python_image=OPS_PYTHON_IMAGE.ref,
                depends_on=[server.api],
            ),
        )
        WebIngress(
            self,
            "Ingress",
            WebIngressProps(
                name="attic",
                namespace=NAMESPACE,
                host=HOST,
                service_name=server.service_name,
                service_port=80,
                controller="traefik",
                controller_namespace="traefik",
                cluster_issuer="letsencrypt",
            ),
        )
        # The namespace denies everything else, in and out.
        TrafficPolicy(
            self,
            "AtticPolicy",
            TrafficPolicyProps(
                name="attic",
                namespace=NAMESPACE,
                pod_selector=server.labels,
                ingress=[
                    Rule(
                        peers=[Peer(namespace="traefik"), Peer(pod_labels=caches.labels)],
                        ports=[HTTP_PORT],
                    )
                ],
                egress=[
                    Rule(peers=[Peer(pod_labels=database.pod_labels)], ports=[POSTGRES_PORT]),
                    Rule(peers=ANYWHERE_PUBLIC, ports=[443]),  # S3
                ],
            ),
        )
        TrafficPolicy(
            self,
            "CachesPolicy",
            TrafficPolicyProps(
                name="attic-caches",
                namespace=NAMESPACE,
                pod_selector=caches.labels,
                egress=[Rule(peers=[Peer(pod_labels=server.api_labels)], ports=[HTTP_PORT])],
            ),
        )
        TrafficPolicy(
            self,
            "SigningKeyPolicy",
            TrafficPolicyProps(
                name="attic-signing-key",
                namespace=NAMESPACE,
                pod_selector=signing.labels,
                egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=API_SERVER_PORTS)],
            ),
        )
        pg = database.pod_labels
        TrafficPolicy(
            self,
            "PostgresPolicy",
            TrafficPolicyProps(
                name="postgres",
                namespace=NAMESPACE,
                pod_selector=pg,
                ingress=[
                    Rule(peers=[Peer(pod_labels=server.labels)], ports=[POSTGRES_PORT]),
                    Rule(
                        peers=[Peer(pod_labels=pg), Peer(namespace="cnpg-system")],
                        ports=[POSTGRES_PORT, STATUS_PORT],
                    ),
                ],
                egress=[
                    Rule(peers=[Peer(pod_labels=pg)], ports=[POSTGRES_PORT, STATUS_PORT]),
                    Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=API_SERVER_PORTS),
                ],
            ),
        )


app = App()
AtticStack(app, "attic")
app.synth()
