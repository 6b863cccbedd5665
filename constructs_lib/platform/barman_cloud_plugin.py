"""The CNPG Barman Cloud plugin: WAL archiving and base backups to object storage.

In-tree ``barmanObjectStore`` backups are deprecated since CloudNativePG 1.26, so backups go
through this plugin (``ObjectStore`` CRD plus a ``plugins`` entry on the Cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.helm.operator_release import add_release, open_release_port
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.security import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from constructs_lib.versions import (
    BARMAN_CLOUD_PLUGIN_CHART,
    BARMAN_CLOUD_PLUGIN_IMAGE,
    BARMAN_CLOUD_SIDECAR_IMAGE,
    ImagePin,
)

__all__ = ["GRPC_PORT", "PLUGIN_NAME", "BarmanCloudPlugin", "BarmanCloudPluginProps"]

GRPC_PORT = 9090
"""The plugin's gRPC port, which the CNPG operator calls."""
PLUGIN_NAME = "barman-cloud.cloudnative-pg.io"
"""The plugin's name in a Cluster's ``plugins`` and ``externalClusters``."""
_UID = 10001


def _chart_image(pin: ImagePin) -> dict[str, str]:
    registry, _, repository = pin.repository.partition("/")
    return {"registry": registry, "repository": repository, "tag": pin.tag_ref}


@dataclass(frozen=True, kw_only=True, slots=True)
class BarmanCloudPluginProps:
    """Props of :class:`BarmanCloudPlugin`.

    Attributes:
        namespace: the CNPG operator's namespace; the plugin must run beside the operator.
        release_name: Helm release name. Default ``"barman-cloud"``.
        resources: plugin pod requests and limits.
            Default 50m / 64Mi requested, 500m / 256Mi limit.
        image: plugin image. Default - the pinned release.
        sidecar_image: image of the sidecar injected into Postgres pods.
            Default - the pinned release.
        protect: refuse to uninstall; without the plugin no WAL is archived. Default ``False``.
        depends_on: the CNPG operator and cert-manager releases when this stack installs them
            (the chart renders a cert-manager Issuer). Default - none.
    """

    namespace: str
    release_name: str = "barman-cloud"
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi"
        )
    )
    image: ImagePin = BARMAN_CLOUD_PLUGIN_IMAGE
    sidecar_image: ImagePin = BARMAN_CLOUD_SIDECAR_IMAGE
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class BarmanCloudPlugin(Construct):
    """Helm release of the plugin plus a policy admitting the operator's gRPC calls.

    Creates the chart's release (child id ``Release``, CRDs included) and the NetworkPolicy
    ``<release_name>-grpc`` (``GrpcIngress``) opening port 9090 to pods of its namespace.

    Attributes:
        helm: the release construct (its ``release`` is the ``helm_release``).

    Example:
        ```python
        from constructs_lib.platform.barman_cloud_plugin import (
            BarmanCloudPlugin,
            BarmanCloudPluginProps,
        )

        BarmanCloudPlugin(stack, "BarmanCloud", BarmanCloudPluginProps(namespace="cnpg-system"))
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: BarmanCloudPluginProps) -> None:
        super().__init__(scope, construct_id)
        self.helm = add_release(
            self,
            props,
            chart=BARMAN_CLOUD_PLUGIN_CHART,
            depends_on=props.depends_on,
            values={
                "crds": {"create": True},
                "image": _chart_image(props.image),
                "sidecarImage": _chart_image(props.sidecar_image),
                "resources": props.resources.to_values(),
                "podSecurityContext": restricted_pod_security_context(),
                "containerSecurityContext": restricted_container_security_context(_UID),
            },
        )
        open_release_port(
            self,
            props,
            "grpc",
            pod_selector={
                "app.kubernetes.io/name": "plugin-barman-cloud",
                "app.kubernetes.io/instance": props.release_name,
            },
            port=GRPC_PORT,
            source="namespace",
        )
