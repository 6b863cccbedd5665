"""The MinIO operator, for the ``minio`` storage backend only.

MinIO's open-source project was archived in 2026; prefer SeaweedFS or external S3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from constructs_lib.helm.operator_release import add_release, open_release_port
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.security import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from constructs_lib.versions import MINIO_OPERATOR_CHART, MINIO_OPERATOR_IMAGE, ImagePin

__all__ = ["STS_PORT", "MinioOperator", "MinioOperatorProps"]

STS_PORT = 4221
"""The operator's STS endpoint port, which tenants call."""
_UID = 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class MinioOperatorProps:
    """Props of :class:`MinioOperator`.

    Attributes:
        namespace: existing namespace to install into.
        release_name: Helm release name. Default ``"minio-operator"``.
        replicas: operator replicas (leader-elected). Default 2, the chart's own.
        resources: operator pod requests and limits.
            Default 200m / 256Mi requested, 500m / 512Mi limit.
        image: operator image. Default - the pinned release.
        protect: refuse to uninstall. Default ``False``.
    """

    namespace: str
    release_name: str = "minio-operator"
    replicas: int = 2
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="200m", memory_request="256Mi", cpu_limit="500m", memory_limit="512Mi"
        )
    )
    image: ImagePin = MINIO_OPERATOR_IMAGE
    protect: bool = False


class MinioOperator(Construct):
    """Helm release of the MinIO operator plus a policy for its STS endpoint.

    Creates the chart's release (child id ``Release``) and the NetworkPolicy
    ``<release_name>-sts`` (``StsIngress``) opening the STS port to pods of the cluster.

    Attributes:
        helm: the release construct (its ``release`` is the ``helm_release``).

    Example:
        ```python
        from constructs_lib.platform.minio_operator import MinioOperator, MinioOperatorProps

        MinioOperator(stack, "MinioOperator", MinioOperatorProps(namespace="minio-operator"))
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: MinioOperatorProps) -> None:
        super().__init__(scope, construct_id)
        security = restricted_container_security_context(_UID)
        # Upstream ships no read-only-root-fs setting for the operator and we could not verify
        # that it runs without a writable root fs; everything else is restricted.
        security["readOnlyRootFilesystem"] = False
        self.helm = add_release(
            self,
            props,
            chart=MINIO_OPERATOR_CHART,
            values={
                "operator": {
                    "image": {"repository": props.image.repository, "tag": props.image.tag_ref},
                    "replicaCount": props.replicas,
                    "resources": props.resources.to_values(),
                    "securityContext": {
                        **restricted_pod_security_context(),
                        "runAsUser": _UID,
                        "runAsGroup": _UID,
                        "fsGroup": _UID,
                    },
                    "containerSecurityContext": security,
                }
            },
        )
        open_release_port(
            self,
            props,
            "sts",
            pod_selector={"app.kubernetes.io/instance": props.release_name},
            port=STS_PORT,
        )
