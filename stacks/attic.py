"""attic-<env>: the Attic cache - Postgres, object storage, atticd, ingress, network policy.

Custom resources here need the CRDs that platform-<env> installs, so it applies after it.
"""

from __future__ import annotations

from typing import Any

from cdktf import TerraformOutput, TerraformStack
from constructs import Construct

from config_model.attic import Attic
from config_model.base import deep_merge
from config_model.loader import ResolvedEnvironment
from config_model.wiring import attic_client_namespaces
from constructs_lib.attic.attic_server import (
    API_PATH_PREFIX,
    SERVICE_PORT,
    AtticServer,
    AtticServerProps,
)
from constructs_lib.attic.cache_warm import DEFAULT_NAME as WARM
from constructs_lib.attic.pod import HTTP_PORT, DatabaseRef
from constructs_lib.attic.signing_key import AtticSigningKey, AtticSigningKeyProps
from constructs_lib.attic.signing_key_job import AtticSigningKeyJob, AtticSigningKeyJobProps
from constructs_lib.kubernetes.rate_limit import ClientIp, RateLimitProps
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.kubernetes.traffic_policy import (
    EVERY_NAMESPACE,
    Peer,
    Rule,
    TrafficPolicy,
    TrafficPolicyProps,
)
from constructs_lib.kubernetes.web_ingress import Route, WebIngress, WebIngressProps
from constructs_lib.postgres.cnpg_cluster import (
    METRICS_PORT,
    POSTGRES_PORT,
    STATUS_PORT,
    CnpgCluster,
)
from constructs_lib.versions import ATTIC_IMAGE, OPENSSL_IMAGE, OPS_PYTHON_IMAGE
from stacks.attic_database import build_storage_and_database
from stacks.attic_endpoints import api_endpoint, attic_host, in_cluster_url
from stacks.attic_operations import build_operations, storage_host
from stacks.attic_storage import (
    BackupWiring,
    StorageWiring,
    compute,
    image_pin,
)
from stacks.backend import gitlab_state_backend
from stacks.providers import cluster_providers, generator_providers

# The Kubernetes API server is not a pod and its address is cluster-specific; Postgres
# instance managers must reach it, on the ports API servers listen on.
API_SERVER_PORTS = (443, 6443)
# Extra Services over the API pods, so the ingress controller's metrics (atticd has none) tell
# narinfo lookups and nix-cache-info apart from uploads and NAR downloads.
BINARY_CACHE_SERVICE = "attic-binary-cache"
CACHE_INFO_SERVICE = "attic-cache-info"
# Where attic.signing_key.source 'terraform' keeps the key and its Secret. With 'in_cluster'
# they are forgotten, never destroyed: the Secret, and so the key that signed every token,
# stays in the cluster, and the Job adopts it. A test derives these from the terraform mode.
TERRAFORM_SIGNING_KEY = (
    "tls_private_key.SigningKey_66600D98",
    "kubernetes_secret_v1.SigningKey_Secret_12FE2763",
)


class AtticStack(TerraformStack):
    """One environment's Attic cache."""

    def __init__(self, scope: Construct, stack_id: str, env: ResolvedEnvironment) -> None:
        super().__init__(scope, stack_id)
        config = env.config
        attic = config.attic
        protect = env.settings.protect_stateful
        gitlab_state_backend(self, config.gitlab, stack_id)
        cluster_providers(self, env.settings.cluster_context)
        generator_providers(self)

        namespace = SecureNamespace(
            self,
            "Namespace",
            SecureNamespaceProps(name=attic.namespace, deny_egress=True, protect=protect),
        )
        ns = namespace.name
        host = attic_host(env)
        storage, database, backup = build_storage_and_database(self, env, ns)

        signing = _signing_key(self, env, namespace)
        in_cluster_hosts = [
            f"attic.{attic.namespace}.svc",
            f"attic.{attic.namespace}.svc.cluster.local",
        ]
        allowed_hosts = ([host] if attic.ingress.enabled else []) + in_cluster_hosts
        endpoint = api_endpoint(env)
        slo = config.monitoring.prometheus_operator and attic.ingress.enabled
        server = AtticServer(
            self,
            "Attic",
            AtticServerProps(
                namespace=ns,
                server_config=_server_config(attic, storage, endpoint, allowed_hosts),
                database=DatabaseRef(url_secret=database.app_secret, ca_secret=database.ca_secret),
                signing_secret=signing.secret_name,
                signing_key=signing.secret_key,
                storage_credentials=storage.attic.credentials,
                image=image_pin(attic.image, ATTIC_IMAGE),
                min_replicas=attic.api.min_replicas,
                max_replicas=attic.api.max_replicas,
                cpu_target_percent=attic.api.cpu_target_percent,
                memory_target_percent=attic.api.memory_target_percent,
                api_resources=compute(attic.api.resources),
                gc_resources=compute(attic.gc.resources),
                termination_grace_seconds=attic.api.termination_grace_seconds,
                api_statement_timeout=attic.api.statement_timeout,
                gc_schedule=attic.gc.schedule,
                probe_host=allowed_hosts[0],
                service_account_annotations=storage.service_account_annotations,
                depends_on=[database.cluster.resource, signing.ready, *storage.depends_on],
                route_services=(BINARY_CACHE_SERVICE, CACHE_INFO_SERVICE) if slo else (),
            ),
        )
        _policies(self, env, ns, storage, backup, database=database, server=server)
        if attic.ingress.enabled:
            ingress = attic.ingress
            WebIngress(
                self,
                "Ingress",
                WebIngressProps(
                    name="attic",
                    namespace=ns,
                    host=host,
                    service_name=server.service_name,
                    service_port=SERVICE_PORT,
                    controller=ingress.controller,
                    controller_namespace=ingress.controller_namespace,
                    class_name=ingress.class_name,
                    cluster_issuer=ingress.cluster_issuer,
                    acme_http01=ingress.acme_http01,
                    rate_limit=_api_rate_limit(attic),
                    routes=_cache_routes(attic, server.service_name) if slo else (),
                ),
            )
        operations = build_operations(
            self,
            env,
            namespace=ns,
            server=server,
            signing=signing,
            in_cluster_url=in_cluster_url(config),
            storage=storage,
        )
        if slo:
            _slo_rules(self, env, ns, host, server)
        if attic.dns.provider == "cloudflare":
            from constructs_lib.dns.cloudflare_records import (
                CloudflareRecords,
                CloudflareRecordsProps,
            )

            public_storage = storage_host(storage)
            CloudflareRecords(
                self,
                "Dns",
                CloudflareRecordsProps(
                    zone_id=attic.dns.zone_id or "",
                    hosts=[host, *([public_storage] if public_storage else [])],
                    target=attic.dns.target or "",
                    ttl=attic.dns.ttl,
                ),
            )
        outputs: dict[str, tuple[Any, str]] = {
            "cache_url": (endpoint, "atticd API endpoint (attic login <name> <url> <token>)"),
            "substituter_base_url": (
                endpoint,
                "Append a cache name for its Nix substituter URL, e.g. <url>main",
            ),
            "namespace": (attic.namespace, "Namespace of atticd and its database"),
            "pg_cluster_name": (attic.database.cluster_name, "CloudNativePG Cluster name"),
            "storage_bucket": (attic.storage.bucket, "Bucket holding the cache's chunks"),
            "in_cluster_url": (in_cluster_url(config), "API for in-cluster clients"),
        }
        if storage.public_url:
            outputs["storage_public_endpoint"] = (storage.public_url, "Public S3 endpoint")
        if attic.caches:
            outputs["cache_substituters"] = (
                {cache.name: f"{endpoint}{cache.name}" for cache in attic.caches},
                "Nix substituter URL of each declared cache",
            )
        if operations.token_secrets:
            outputs["token_secret_names"] = (
                operations.token_secrets,
                "namespace/Secret holding each token (key 'token'); the values never pass "
                "through Terraform",
            )
        if operations.bazel_grpc_url:
            outputs["bazel_cache_grpc_url"] = (
                operations.bazel_grpc_url,
                "bazel --remote_cache URL for in-cluster clients",
            )
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)


def _signing_key(
    stack: TerraformStack, env: ResolvedEnvironment, namespace: SecureNamespace
) -> AtticSigningKey | AtticSigningKeyJob:
    """The RS256 key atticd signs tokens with, where attic.signing_key.source says."""
    attic = env.config.attic
    if attic.signing_key.source == "terraform":
        return AtticSigningKey(
            stack,
            "SigningKey",
            AtticSigningKeyProps(namespace=namespace.name, protect=env.settings.protect_stateful),
        )
    # OpenTofu forgets what a `removed` block names (lifecycle.destroy false); cdktf has no
    # construct for it. Without it, dropping the resources would delete the Secret.
    stack.add_override(
        "removed",
        [{"from": address, "lifecycle": {"destroy": False}} for address in TERRAFORM_SIGNING_KEY],
    )
    job = AtticSigningKeyJob(
        stack,
        "SigningKeyJob",
        AtticSigningKeyJobProps(
            namespace=attic.namespace,
            keygen_image=image_pin(attic.signing_key.image, OPENSSL_IMAGE).ref,
            python_image=OPS_PYTHON_IMAGE.ref,
            depends_on=[namespace.namespace],
        ),
    )
    TrafficPolicy(
        stack,
        "SigningKeyPolicy",
        TrafficPolicyProps(
            name="attic-signing-key",
            namespace=namespace.name,
            pod_selector=job.labels,
            egress=[Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=list(API_SERVER_PORTS))],
        ),
    )
    return job


def _server_config(
    attic: Attic, storage: StorageWiring, endpoint: str, allowed_hosts: list[str]
) -> dict[str, Any]:
    s3: dict[str, Any] = {
        "type": "s3",
        "region": storage.attic.region,
        "bucket": storage.attic.bucket,
    }
    if storage.attic.url:
        s3["endpoint"] = storage.attic.url
    compression: dict[str, Any] = {"type": attic.compression.type}
    if attic.compression.level is not None:
        compression["level"] = attic.compression.level
    chunking = attic.chunking
    doc: dict[str, Any] = {
        # IPv4 wildcard: "[::]" fails where pods have IPv6 disabled.
        "listen": f"0.0.0.0:{HTTP_PORT}",
        "allowed-hosts": allowed_hosts,
        "api-endpoint": endpoint,
        "database": {"heartbeat": True},
        "storage": s3,
        "chunking": {
            "nar-size-threshold": chunking.nar_size_threshold,
            "min-size": chunking.min_size,
            "avg-size": chunking.avg_size,
            "max-size": chunking.max_size,
        },
        "compression": compression,
        "garbage-collection": {
            "interval": attic.gc.interval,
            "default-retention-period": attic.gc.default_retention,
        },
    }
    return deep_merge(doc, attic.server_extra)


def _policies(
    scope: Construct,
    env: ResolvedEnvironment,
    ns: str,
    storage: StorageWiring,
    backup: BackupWiring | None,
    *,
    database: CnpgCluster,
    server: AtticServer,
) -> None:
    """Allow exactly the connections the stack needs; the namespace denies the rest."""
    config = env.config
    attic = config.attic
    pg_pods = database.pod_labels
    clients = [Peer(namespace=name) for name in attic_client_namespaces(config)]
    if attic.ingress.enabled:
        clients.append(Peer(namespace=attic.ingress.controller_namespace))
    TrafficPolicy(
        scope,
        "AtticPolicy",
        TrafficPolicyProps(
            name="attic",
            namespace=ns,
            pod_selector=server.labels,
            ingress=[Rule(peers=[Peer(), *clients], ports=[HTTP_PORT])],
            egress=[
                Rule(peers=[Peer(pod_labels=pg_pods)], ports=[POSTGRES_PORT]),
                *storage.attic.egress,
            ],
        ),
    )
    postgres_in = [
        Rule(
            peers=[Peer(pod_labels=server.labels), Peer(pod_labels=pg_pods)], ports=[POSTGRES_PORT]
        ),
        *(
            [Rule(peers=storage.database_clients, ports=[POSTGRES_PORT])]
            if storage.database_clients
            else []
        ),
        Rule(
            peers=[Peer(pod_labels=pg_pods), Peer(namespace=config.platform.namespaces.cnpg)],
            ports=[POSTGRES_PORT, STATUS_PORT],
        ),
    ]
    if config.monitoring.prometheus_operator:
        postgres_in.append(Rule(peers=[Peer(namespace=EVERY_NAMESPACE)], ports=[METRICS_PORT]))
    postgres_out = [
        Rule(peers=[Peer(pod_labels=pg_pods)], ports=[POSTGRES_PORT, STATUS_PORT]),
        Rule(peers=[Peer(cidr="0.0.0.0/0")], ports=list(API_SERVER_PORTS)),
    ]
    if backup is not None:
        postgres_out += backup.endpoint.egress
    TrafficPolicy(
        scope,
        "PostgresPolicy",
        TrafficPolicyProps(
            name="postgres",
            namespace=ns,
            pod_selector=pg_pods,
            ingress=postgres_in,
            egress=postgres_out,
        ),
    )


def _api_rate_limit(attic: Attic) -> RateLimitProps | None:
    """The limit on atticd's API only: behind one NAT address every Nix client shares a
    client's allowance, and a 429 on narinfo makes Nix drop the substituter."""
    limit = attic.ingress.rate_limit
    if limit is None:
        return None
    client = limit.client_ip
    return RateLimitProps(
        average=limit.average,
        burst=limit.burst,
        paths=(API_PATH_PREFIX,),
        client_ip=ClientIp(
            depth=client.depth or 0,
            excluded_ips=tuple(client.excluded_ips),
            header=client.header,
        ),
    )


def _cache_routes(attic: Attic, main_service: str) -> tuple[Route, ...]:
    """Per declared cache: nix-cache-info and narinfo lookups to their own Services; NAR
    downloads (size-bound latency) stay on the main one."""
    routes: list[Route] = []
    for cache in attic.caches:
        if "+" in cache.name:
            continue  # ingress controllers reject '+' in paths; counted on the main Service
        base = f"/{cache.name}"
        routes += [
            Route(
                path=f"{base}/nix-cache-info", service_name=CACHE_INFO_SERVICE, path_type="Exact"
            ),
            Route(path=f"{base}/nar/", service_name=main_service),
            Route(path=f"{base}/", service_name=BINARY_CACHE_SERVICE),
        ]
    return tuple(routes)


def _slo_rules(
    scope: Construct, env: ResolvedEnvironment, ns: str, host: str, server: AtticServer
) -> None:
    """SLOs measured at the ingress controller, plus the jobs and database behind them."""
    from constructs_lib.attic.token_rotation import DEFAULT_NAME as ROTATOR
    from constructs_lib.monitoring.attic_slo import attic_rule_groups
    from constructs_lib.monitoring.attic_slo_props import (
        AtticRouteServices,
        AtticSloProps,
        GcCronJob,
        GcDeployment,
    )
    from constructs_lib.monitoring.prometheus_rule import PrometheusRule, PrometheusRuleProps

    attic = env.config.attic
    slo = env.config.monitoring.slo
    cronjobs: dict[str, int] = {}
    if attic.tokens:
        # Hourly: three missed runs alert, long before any token's rotation window closes.
        cronjobs[ROTATOR] = 3 * 3600
    groups = attic_rule_groups(
        AtticSloProps(
            namespace=ns,
            ingress_controller=attic.ingress.controller,
            host=host,
            services=AtticRouteServices(
                api_service=server.service_name,
                binary_cache_service=BINARY_CACHE_SERVICE,
                cache_info_service=CACHE_INFO_SERVICE,
            ),
            api_deployment=server.api.metadata.name,
            gc=GcCronJob(name=server.gc_name, max_age_seconds=2 * 86400)
            if server.gc_mode == "cronjob"
            else GcDeployment(name=server.gc_name),
            pg_cluster=attic.database.cluster_name,
            availability_target=slo.availability_percent / 100,
            slo_window=slo.window,
            cache_hit_p99_seconds=slo.cache_hit_p99_ms / 1000,
            cache_info_p99_seconds=slo.cache_info_p99_ms / 1000,
            # Daily base backups; a day and a half without one is a missed run.
            backup_max_age_seconds=36 * 3600 if attic.database.backup.enabled else None,
            cronjobs_max_age=cronjobs,
            failed_jobs_cronjobs=[WARM] if attic.cache_warming.enabled else [],
        )
    )
    PrometheusRule(
        scope,
        "SloRules",
        PrometheusRuleProps(
            name="attic-slo",
            namespace=ns,
            groups=groups,
            labels=env.config.monitoring.discovery_labels,
        ),
    )
