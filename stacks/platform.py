"""platform-<env>: cluster-wide operators and their CRDs, applied before every other stack.

The kubernetes provider reads a custom resource's CRD at plan time, so operators cannot share a
plan with the custom resources that use them; they live here, alone.
"""

from __future__ import annotations

from cdktf import ITerraformDependable, TerraformStack
from constructs import Construct

from config_model.loader import ResolvedEnvironment
from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps
from constructs_lib.platform.barman_cloud_plugin import BarmanCloudPlugin, BarmanCloudPluginProps
from constructs_lib.platform.cert_manager import CertManager, CertManagerProps
from constructs_lib.platform.cnpg_operator import (
    CloudNativePgOperator,
    CloudNativePgOperatorProps,
)
from constructs_lib.platform.minio_operator import MinioOperator, MinioOperatorProps
from stacks.backend import gitlab_state_backend
from stacks.providers import cluster_providers


class PlatformStack(TerraformStack):
    """Operators for one environment, as the config's ``platform`` section asks."""

    def __init__(self, scope: Construct, stack_id: str, env: ResolvedEnvironment) -> None:
        super().__init__(scope, stack_id)
        config = env.config
        platform = config.platform
        namespaces = platform.namespaces
        protect = env.settings.protect_stateful
        monitoring = config.monitoring.prometheus_operator
        discovery = config.monitoring.discovery_labels
        gitlab_state_backend(self, config.gitlab, stack_id)
        cluster_providers(self, env.settings.cluster_context)

        plugin_prerequisites: list[ITerraformDependable] = []
        cnpg_namespace = namespaces.cnpg
        if platform.cnpg_operator == "install":
            namespace = SecureNamespace(
                self, "CnpgNamespace", SecureNamespaceProps(name=namespaces.cnpg, protect=protect)
            )
            operator = CloudNativePgOperator(
                self,
                "CnpgOperator",
                CloudNativePgOperatorProps(
                    namespace=namespace.name,
                    pod_monitor=monitoring,
                    pod_monitor_labels=discovery,
                    protect=protect,
                ),
            )
            cnpg_namespace = namespace.name
            plugin_prerequisites.append(operator.helm.release)

        if platform.cert_manager == "install":
            cert_namespace = SecureNamespace(
                self, "CertManagerNamespace", SecureNamespaceProps(name=namespaces.cert_manager)
            )
            cert_manager = CertManager(
                self,
                "CertManager",
                CertManagerProps(
                    namespace=cert_namespace.name,
                    pod_monitor=monitoring,
                    pod_monitor_labels=discovery,
                ),
            )
            plugin_prerequisites.append(cert_manager.helm.release)

        if platform.barman_cloud_plugin == "install":
            BarmanCloudPlugin(
                self,
                "BarmanCloudPlugin",
                BarmanCloudPluginProps(
                    namespace=cnpg_namespace, protect=protect, depends_on=plugin_prerequisites
                ),
            )

        if config.attic.storage.backend == "minio" and platform.minio_operator == "install":
            minio_namespace = SecureNamespace(
                self, "MinioOperatorNamespace", SecureNamespaceProps(name=namespaces.minio_operator)
            )
            MinioOperator(self, "MinioOperator", MinioOperatorProps(namespace=minio_namespace.name))
