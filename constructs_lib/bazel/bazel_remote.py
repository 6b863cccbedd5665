"""bazel-remote (github.com/buchgr/bazel-remote) as a scaled Deployment with an S3 proxy backend.

Clients speak REAPI gRPC on port 9092 or the HTTP/1.1 cache API on port 8080. Every replica
keeps a disk cache on an emptyDir and proxies misses and writes to the bucket, so a new or
rescheduled replica starts cold but correct. The server has no authentication configured:
limit who can reach it with a NetworkPolicy.

Facts this relies on (bazel-remote README and source, v2.6):

- The official image runs as uid 65532 (distroless ``nonroot``) with the entrypoint
  ``bazel-remote --http_address=:8080 --dir=/data --profile_address=:6060``; arguments are
  appended, and flags override ``BAZEL_REMOTE_*`` environment variables.
- ``max_size`` is in GiB; the disk cache evicts least recently used blobs to stay under it.
- ``GET /status`` on the HTTP port answers without touching the backend; ``/metrics`` is
  served there only with ``--enable_endpoint_metrics``; the gRPC port serves
  ``grpc.health.v1.Health`` even when authentication is on.
- ``s3.auth_method=iam_role`` uses minio-go's IAM provider, which follows
  ``AWS_WEB_IDENTITY_TOKEN_FILE``/``AWS_ROLE_ARN`` (IRSA), the container credentials URIs and
  then the instance metadata service.
- Kubernetes' service-link variables for a Service named ``bazel-remote`` (``BAZEL_REMOTE_PORT``
  and friends) collide with bazel-remote's own, so service links are turned off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cdktf import Token
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from cdktf_cdktf_provider_kubernetes.service_v1 import ServiceV1, ServiceV1Spec
from constructs import Construct

from constructs_lib.kubernetes.autoscaled_deployment import (
    ScalingPace,
    add_autoscaled_deployment,
    bounds_problem,
)
from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.kubernetes.hardening import restricted_container, restricted_pod
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.storage.s3_endpoint import S3Credentials
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import BAZEL_REMOTE_IMAGE, ImagePin

__all__ = ["GRPC_PORT", "HTTP_PORT", "BazelRemote", "BazelRemoteProps"]

HTTP_PORT = 8080
"""The HTTP/1.1 cache API port."""
GRPC_PORT = 9092
"""The REAPI gRPC port."""
DATA_DIR = "/data"
_UID = 65532  # the image's distroless "nonroot" user
_TMP_SIZE_GI = 1
BUCKET_LOOKUP_TYPES = ("auto", "dns", "path")
ACCESS_LOG_LEVELS = ("none", "all")


@dataclass(frozen=True, kw_only=True, slots=True)
class BazelRemoteProps:
    """Props of :class:`BazelRemote`.

    Attributes:
        namespace: namespace of every object.
        s3_endpoint: S3 API URL, ``http(s)://host[:port]`` with no path. bazel-remote gets the
            host and port; ``http://`` turns TLS off (``s3.disable_ssl``).
        bucket: the bucket behind the cache.
        region: S3 region (any value for most S3-compatible stores; with IAM it also picks
            the STS endpoint).
        credentials: Secret with an access key pair, passed as ``s3.access_key_id`` and
            ``s3.secret_access_key`` from ``secretKeyRef`` (``s3.auth_method=access_key``).
            ``None`` uses workload identity: ``s3.auth_method=iam_role``, which reads IRSA's
            web identity token or the node's instance profile; annotate the service account
            (``service_account_annotations``) to bind a role.
        name: base name of the objects (the Service answers as ``<name>.<namespace>.svc``).
            Default ``"bazel-remote"``.
        image: bazel-remote image. Default - the pinned v2.6.2.
        prefix: object key prefix inside the bucket. Default ``""`` (the bucket root).
        bucket_lookup_type: ``"auto"``, ``"dns"`` (virtual-host) or ``"path"`` addressing.
            Default ``"auto"`` (virtual-host for AWS, path style for other endpoints).
        service_account_annotations: e.g. ``eks.amazonaws.com/role-arn``. Default - none.
        local_cache_size_gi: size limit of each replica's emptyDir disk cache, in GiB; at
            least 2. bazel-remote's ``max_size`` is set about 10 % (at least 1 GiB) below it
            so eviction starts before the kubelet would evict the pod. Default 10.
        min_replicas: HPA floor. Default 2.
        max_replicas: HPA ceiling. Default 4.
        cpu_target_percent: HPA CPU utilisation target. Default 70.
        memory_target_percent: HPA memory utilisation target. Default 80.
        resources: per replica. Default 250m / 512Mi requested, 1 CPU / 2Gi limit.
        access_log_level: ``"none"`` or ``"all"`` (one line per request). Default ``"none"``.
        service_monitor: also create a Prometheus Operator ServiceMonitor for ``/metrics``
            (the CRD must be installed). Default ``False``.
        service_monitor_labels: labels on that ServiceMonitor only, e.g. the ``release``
            label a kube-prometheus-stack ``serviceMonitorSelector`` picks monitors up by.
            Default - none.
        labels: extra labels on every object and pod (never in selectors), e.g. the label
            a Prometheus selects ServiceMonitors by. Default - none.
    """

    namespace: str
    s3_endpoint: str
    bucket: str
    region: str
    credentials: S3Credentials | None
    name: str = "bazel-remote"
    image: ImagePin = BAZEL_REMOTE_IMAGE
    prefix: str = ""
    bucket_lookup_type: str = "auto"
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    local_cache_size_gi: int = 10
    min_replicas: int = 2
    max_replicas: int = 4
    cpu_target_percent: int = 70
    memory_target_percent: int = 80
    resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="250m", memory_request="512Mi", cpu_limit="1", memory_limit="2Gi"
        )
    )
    access_log_level: str = "none"
    service_monitor: bool = False
    service_monitor_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class BazelRemote(Construct):
    """ServiceAccount, Deployment, Service (http 8080, grpc 9092), HPA, PDB, ServiceMonitor.

    Child ids: ``ServiceAccount``, ``Deployment`` with ``Autoscaler`` and ``DisruptionBudget``,
    ``Service``, and with ``service_monitor`` a ``ServiceMonitor``.

    gRPC connections are long-lived and a ClusterIP Service balances connections, not calls:
    a client stays on one replica until it reconnects, so new replicas take new clients.

    Attributes:
        labels: selector labels of the pods (for NetworkPolicies).
        deployment: the Deployment resource.
        service: the Service resource.
        service_name: the Service.
        grpc_url: ``grpc://<service>.<namespace>.svc:9092``, for ``--remote_cache``.
        http_url: ``http://<service>.<namespace>.svc:8080``.
        max_size_gi: bazel-remote's ``max_size`` per replica.
        servicemonitor: the ServiceMonitor manifest, or ``None`` when it is off.

    Example:
        ```python
        from constructs_lib.bazel.bazel_remote import BazelRemote, BazelRemoteProps
        from constructs_lib.storage.s3_endpoint import S3Credentials

        cache = BazelRemote(
            stack,
            "BazelCache",
            BazelRemoteProps(
                namespace="bazel",
                s3_endpoint="https://s3.eu-west-1.amazonaws.com",
                bucket="acme-bazel-cache",
                region="eu-west-1",
                credentials=S3Credentials(secret_name="bazel-s3"),
            ),
        )
        cache.grpc_url  # "grpc://bazel-remote.bazel.svc:9092", for --remote_cache
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: BazelRemoteProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("BazelRemote", _problems(props))
        name, namespace = props.name, props.namespace
        self.labels = {
            "app.kubernetes.io/name": "bazel-remote",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "cache",
        }
        object_labels = {**props.labels, **self.labels}
        self.service_name: str = name
        self.grpc_url = f"grpc://{name}.{namespace}.svc:{GRPC_PORT}"
        self.http_url = f"http://{name}.{namespace}.svc:{HTTP_PORT}"
        self.max_size_gi = max_size_gi(props.local_cache_size_gi)

        account = ServiceAccountV1(
            self,
            "ServiceAccount",
            metadata={
                "name": name,
                "namespace": namespace,
                "labels": object_labels,
                "annotations": dict(props.service_account_annotations) or None,
            },
            automount_service_account_token=False,
        )
        self.deployment = add_autoscaled_deployment(
            self,
            "Deployment",
            name=name,
            namespace=namespace,
            selector=self.labels,
            labels=object_labels,
            template=_pod(props, account.metadata.name, object_labels),
            bounds=props,
            # Up fast (a CI wave is bursty); down slowly, since each stopped replica drops a
            # warm disk cache. "Max" lets one pod go per minute even where 10 % rounds to none.
            pace=ScalingPace(up_pods=2, down_pods=1, down_select="Max"),
        )
        self.service = ServiceV1(
            self,
            "Service",
            metadata={"name": name, "namespace": namespace, "labels": object_labels},
            spec=to_struct(
                ServiceV1Spec,
                {
                    "type": "ClusterIP",
                    "selector": self.labels,
                    "port": [
                        {
                            "name": "http",
                            "port": HTTP_PORT,
                            "target_port": "http",
                            "protocol": "TCP",
                            "app_protocol": "http",
                        },
                        {
                            "name": "grpc",
                            "port": GRPC_PORT,
                            "target_port": "grpc",
                            "protocol": "TCP",
                            # Plain-text HTTP/2: tells gateways and meshes to speak h2c.
                            "app_protocol": "kubernetes.io/h2c",
                        },
                    ],
                },
            ),
        )
        self.servicemonitor: dict[str, Any] | None = None
        if props.service_monitor:
            self.servicemonitor = {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**props.service_monitor_labels, **object_labels},
                },
                "spec": {
                    "selector": {"matchLabels": dict(self.labels)},
                    "namespaceSelector": {"matchNames": [namespace]},
                    "endpoints": [
                        {
                            "port": "http",
                            "path": "/metrics",
                            "scheme": "http",
                            "interval": "30s",
                            "scrapeTimeout": "10s",
                        }
                    ],
                },
            }
            CustomResource(
                self,
                "ServiceMonitor",
                CustomResourceProps(manifest=self.servicemonitor, depends_on=[self.service]),
            )


def max_size_gi(local_cache_size_gi: int) -> int:
    """bazel-remote's ``max_size`` for an emptyDir of this many GiB: 10 % (>= 1 GiB) below."""
    return local_cache_size_gi - max(1, -(-local_cache_size_gi // 10))


def s3_endpoint_parts(url: str) -> tuple[str, bool]:
    """``(host[:port], disable_ssl)`` of a checked ``http(s)://host[:port]`` URL."""
    parts = urlsplit(url)
    return parts.netloc, parts.scheme == "http"


def endpoint_problem(url: str) -> str:
    """A problem line if ``url`` is not ``http(s)://host[:port]`` (optionally ending in /)."""
    rule = f"s3_endpoint: {url!r} must be http(s)://host[:port] with no path, query or user"
    if Token.is_unresolved(url):
        return f"s3_endpoint: must be a literal URL (the host is derived from it), got {url!r}"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return rule
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return rule
    return ""


def _problems(props: BazelRemoteProps) -> list[str]:
    return [
        check_dns_label("name", props.name),
        check_dns_label("namespace", props.namespace),
        endpoint_problem(props.s3_endpoint),
        "" if props.bucket else "bucket: required",
        "" if props.region else "region: required",
        ""
        if props.bucket_lookup_type in BUCKET_LOOKUP_TYPES
        else f"bucket_lookup_type: {props.bucket_lookup_type!r} is not one of "
        f"{', '.join(BUCKET_LOOKUP_TYPES)}",
        ""
        if props.access_log_level in ACCESS_LOG_LEVELS
        else f"access_log_level: {props.access_log_level!r} is not one of "
        f"{', '.join(ACCESS_LOG_LEVELS)}",
        ""
        if props.local_cache_size_gi >= 2
        else f"local_cache_size_gi: {props.local_cache_size_gi} must be >= 2 "
        "(max_size is set at least 1 GiB below the emptyDir limit)",
        bounds_problem(props),
        *(
            f"{prop}: {value} must be within 1..100"
            for prop, value in (
                ("cpu_target_percent", props.cpu_target_percent),
                ("memory_target_percent", props.memory_target_percent),
            )
            if not 1 <= value <= 100
        ),
    ]


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret, "key": key}}}


def _env(props: BazelRemoteProps) -> list[dict[str, Any]]:
    host, disable_ssl = s3_endpoint_parts(props.s3_endpoint)
    env: list[dict[str, Any]] = [
        {"name": "BAZEL_REMOTE_MAX_SIZE", "value": str(max_size_gi(props.local_cache_size_gi))},
        {"name": "BAZEL_REMOTE_ENABLE_ENDPOINT_METRICS", "value": "true"},
        {"name": "BAZEL_REMOTE_ACCESS_LOG_LEVEL", "value": props.access_log_level},
        {"name": "BAZEL_REMOTE_S3_ENDPOINT", "value": host},
        {"name": "BAZEL_REMOTE_S3_BUCKET", "value": props.bucket},
        {"name": "BAZEL_REMOTE_S3_REGION", "value": props.region},
        {"name": "BAZEL_REMOTE_S3_DISABLE_SSL", "value": "true" if disable_ssl else "false"},
        {"name": "BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE", "value": props.bucket_lookup_type},
        # Go sizes its scheduler to the node, not the CPU limit: match the limit instead.
        {
            "name": "GOMAXPROCS",
            "value_from": {"resource_field_ref": {"resource": "limits.cpu", "divisor": "1"}},
        },
    ]
    if props.prefix:
        env.append({"name": "BAZEL_REMOTE_S3_PREFIX", "value": props.prefix})
    creds = props.credentials
    if creds is None:
        env.append({"name": "BAZEL_REMOTE_S3_AUTH_METHOD", "value": "iam_role"})
    else:
        env += [
            {"name": "BAZEL_REMOTE_S3_AUTH_METHOD", "value": "access_key"},
            secret_env("BAZEL_REMOTE_S3_ACCESS_KEY_ID", creds.secret_name, creds.access_key_id_key),
            secret_env(
                "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY",
                creds.secret_name,
                creds.secret_access_key_key,
            ),
        ]
    return env


def _pod(
    props: BazelRemoteProps, service_account: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    resources = props.resources.to_values()
    # The scheduler must see the disk cache: the data emptyDir plus /tmp.
    resources["requests"]["ephemeral-storage"] = f"{props.local_cache_size_gi + _TMP_SIZE_GI}Gi"
    container: dict[str, Any] = {
        "name": "bazel-remote",
        "image": props.image.ref,
        "image_pull_policy": "IfNotPresent",
        # Appended to the image's entrypoint; a repeated flag overrides the earlier one, so
        # the listeners are explicit here and the profiling server (:6060) is off.
        "args": [
            f"--dir={DATA_DIR}",
            f"--http_address=:{HTTP_PORT}",
            f"--grpc_address=:{GRPC_PORT}",
            "--profile_address=none",
        ],
        "env": _env(props),
        "port": [
            {"name": "http", "container_port": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "container_port": GRPC_PORT, "protocol": "TCP"},
        ],
        "volume_mount": [
            {"name": "data", "mount_path": DATA_DIR},
            {"name": "tmp", "mount_path": "/tmp"},
        ],
        "resources": resources,
        # /status reads the local index only: an S3 outage does not take replicas out.
        "readiness_probe": {
            "http_get": {"path": "/status", "port": "http"},
            "period_seconds": 10,
            "timeout_seconds": 3,
            "failure_threshold": 3,
        },
        # The gRPC health service is what Bazel's port depends on; probes need the number.
        "liveness_probe": {
            "grpc": [{"port": GRPC_PORT}],
            "initial_delay_seconds": 10,
            "period_seconds": 20,
            "timeout_seconds": 5,
            "failure_threshold": 3,
        },
        "security_context": restricted_container(_UID),
    }
    spec: dict[str, Any] = {
        "service_account_name": service_account,
        "automount_service_account_token": False,
        # Service links for a Service named bazel-remote set BAZEL_REMOTE_PORT=tcp://...,
        # which bazel-remote would read as its --port flag.
        "enable_service_links": False,
        "termination_grace_period_seconds": 60,
        "security_context": restricted_pod(_UID),
        "container": [container],
        "volume": [
            {"name": "data", "empty_dir": {"size_limit": f"{props.local_cache_size_gi}Gi"}},
            {"name": "tmp", "empty_dir": {"size_limit": f"{_TMP_SIZE_GI}Gi"}},
        ],
    }
    return {"metadata": {"labels": dict(labels)}, "spec": spec}
