"""atticd split by mode: a migrations Job, a scaled API Deployment, one garbage collector."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from cdktf_cdktf_provider_kubernetes.cron_job_v1 import CronJobV1, CronJobV1Spec
from cdktf_cdktf_provider_kubernetes.deployment_v1 import DeploymentV1, DeploymentV1Spec
from cdktf_cdktf_provider_kubernetes.job_v1 import JobV1, JobV1Spec, JobV1Timeouts
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from cdktf_cdktf_provider_kubernetes.service_v1 import ServiceV1, ServiceV1Spec
from constructs import Construct

from constructs_lib.attic.pod import DatabaseRef, PodInputs, atticd_pod
from constructs_lib.attic.server_config import render_server_toml, server_config_problems
from constructs_lib.kubernetes.autoscaled_deployment import (
    ScalingPace,
    add_autoscaled_deployment,
    bounds_problem,
)
from constructs_lib.kubernetes.resources import ComputeResources
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.storage.s3_endpoint import S3Credentials
from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import ATTIC_IMAGE, ImagePin
from upstream_formats.humantime import parse_duration
from upstream_formats.postgres_options import TIME_SETTING

__all__ = ["API_PATH_PREFIX", "SERVICE_PORT", "AtticServer", "AtticServerProps"]

SERVICE_PORT = 80
"""Port of the API Service (and of each ``route_services`` Service)."""
API_PATH_PREFIX = "/_api/"
"""Path prefix of atticd's API: cache administration, get-missing-paths and uploads (attic
``server/src/api/v1/mod.rs``). The binary cache (``/<cache>/nix-cache-info``, narinfo, nar/)
is outside it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticServerProps:
    """Props of :class:`AtticServer`.

    Attributes:
        namespace: namespace of every object.
        server_config: the whole ``server.toml`` as data (kebab-case keys); checked against
            the keys and bounds atticd knows, and free of secrets.
        database: where the Postgres URL (and CA) come from.
        signing_secret: Secret holding the RS256 key.
        signing_key: its key, e.g. ``ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64``.
        storage_credentials: S3 key pair, exported as ``AWS_*``; ``None`` for workload
            identity.
        name: base name of the objects. Default ``"attic"``.
        image: atticd image. Default - the pinned commit.
        min_replicas: HPA floor of the API. Default 2.
        max_replicas: HPA ceiling of the API. Default 10.
        cpu_target_percent: HPA CPU utilisation target. Default 70.
        memory_target_percent: HPA memory utilisation target. Default 80.
        api_resources: per API pod. Default 250m / 256Mi requested, 2 CPU / 1Gi limit.
        gc_resources: garbage collector. Default 100m / 128Mi requested, 1 CPU / 512Mi limit.
        termination_grace_seconds: time an API pod gets to finish uploads when stopped.
            Default 600.
        api_statement_timeout: Postgres ``statement_timeout`` of the API's sessions only, so a
            runaway query cannot pile up; migrations and garbage collection, whose statements
            grow with the cache, get none. ``None``: no limit. Default ``"60s"``.
        gc_schedule: CronJob schedule of ``garbage-collector-once``, used only when the
            config's GC interval is zero. Default ``"0 3 * * *"``.
        probe_host: Host header for probes, needed when ``allowed-hosts`` is set.
            Default ``None``.
        service_account_annotations: e.g. for workload identity. Default - none.
        depends_on: resources that must exist before migrations run. Default - none.
        route_services: names of extra Services over the API pods, so an ingress can route
            paths to them and its controller's metrics tell those routes apart (atticd has no
            metrics of its own). Default - none.
    """

    namespace: str
    server_config: Mapping[str, Any]
    database: DatabaseRef
    signing_secret: str
    signing_key: str
    storage_credentials: S3Credentials | None
    name: str = "attic"
    image: ImagePin = ATTIC_IMAGE
    min_replicas: int = 2
    max_replicas: int = 10
    cpu_target_percent: int = 70
    memory_target_percent: int = 80
    api_resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="250m", memory_request="256Mi", cpu_limit="2", memory_limit="1Gi"
        )
    )
    gc_resources: ComputeResources = field(
        default_factory=lambda: ComputeResources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi"
        )
    )
    termination_grace_seconds: int = 600
    api_statement_timeout: str | None = "60s"
    gc_schedule: str = "0 3 * * *"
    probe_host: str | None = None
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()
    route_services: Sequence[str] = ()


class AtticServer(Construct):
    """Migrations run once per image and config, then the API rolls out surge-only, then GC.

    Creates a ServiceAccount (``ServiceAccount``), the ConfigMap with ``server.toml``
    (``Config``), the ``db-migrations`` Job (``Migrations``), the API Deployment with its HPA and
    PodDisruptionBudget (``Api``, ``Autoscaler``, ``DisruptionBudget``), its Service
    (``Service``) and one per ``route_services`` entry (``RouteService-<name>``), and exactly one
    garbage collector: a Deployment (``GarbageCollector``), or a CronJob
    (``GarbageCollectorSchedule``) when the config's GC interval is 0. Every pod runs non-root
    with a read-only root filesystem; secrets come from Secrets through the environment.

    Attributes:
        labels: labels of every atticd pod (for NetworkPolicies).
        api_labels: labels of the API pods.
        service: the API Service resource.
        service_name: the API Service (port 80).
        gc_mode: ``"deployment"`` or ``"cronjob"``.
        gc_name: the GC Deployment or CronJob.
        api: the API Deployment.
        config_map_name: the ConfigMap holding ``server.toml``.
        image: the atticd image reference.

    Example:
        ```python
        from constructs_lib.attic.attic_server import AtticServer, AtticServerProps
        from constructs_lib.attic.pod import DatabaseRef
        from constructs_lib.storage.s3_endpoint import S3Credentials

        attic = AtticServer(
            stack,
            "Attic",
            AtticServerProps(
                namespace="attic",
                server_config={
                    "api-endpoint": "https://cache.example.com/",
                    "database": {},
                    "storage": {"type": "s3", "region": "eu-west-1", "bucket": "acme-attic"},
                    "chunking": {
                        "nar-size-threshold": 65536,
                        "min-size": 16384,
                        "avg-size": 65536,
                        "max-size": 262144,
                    },
                    "garbage-collection": {"interval": "12 hours"},
                },
                database=DatabaseRef(url_secret="attic-db-app", ca_secret="attic-db-ca"),
                signing_secret="attic-token-signing",
                signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
                storage_credentials=S3Credentials(secret_name="attic-s3"),
            ),
        )
        attic.service_name  # route the Ingress here, port 80
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AtticServerProps) -> None:
        super().__init__(scope, construct_id)
        gc_interval = _gc_interval(props.server_config)
        raise_if_problems(
            "AtticServer",
            [
                check_dns_label("name", props.name),
                *(f"server_config: {p}" for p in server_config_problems(props.server_config)),
                bounds_problem(props),
                ""
                if len(props.gc_schedule.split()) == 5
                else f"gc_schedule: {props.gc_schedule!r} must have 5 cron fields",
                ""
                if props.termination_grace_seconds >= 30
                else "termination_grace_seconds: must be >= 30",
                ""
                if props.api_statement_timeout is None
                or re.match(TIME_SETTING, props.api_statement_timeout)
                else f"api_statement_timeout: {props.api_statement_timeout!r} must be a whole "
                "number with a Postgres unit (ms, s, min, h, d), e.g. '60s'",
                *(check_dns_label("route_services", n) for n in props.route_services),
            ],
        )
        name, namespace = props.name, props.namespace
        toml = render_server_toml(props.server_config)
        self.labels = {"app.kubernetes.io/name": "attic", "app.kubernetes.io/instance": name}
        self.api_labels = {**self.labels, "app.kubernetes.io/component": "api"}
        gc_labels = {**self.labels, "app.kubernetes.io/component": "garbage-collector"}
        migration_labels = {**self.labels, "app.kubernetes.io/component": "db-migrations"}

        account = ServiceAccountV1(
            self,
            "ServiceAccount",
            metadata={
                "name": name,
                "namespace": namespace,
                "annotations": dict(props.service_account_annotations) or None,
            },
            automount_service_account_token=False,
        )
        config = ConfigMapV1(
            self,
            "Config",
            metadata={"name": f"{name}-config", "namespace": namespace},
            data={"server.toml": toml},
        )
        # A new image or config gives the Job a new name, so OpenTofu replaces it and the
        # migrations run again before the API rolls.
        revision = hashlib.sha256(f"{props.image.ref}\n{toml}".encode()).hexdigest()[:10]
        inputs = PodInputs(
            image=props.image.ref,
            config_map=config.metadata.name,
            config_checksum=hashlib.sha256(toml.encode()).hexdigest(),
            service_account=account.metadata.name,
            database=props.database,
            signing_secret=props.signing_secret,
            signing_key=props.signing_key,
            storage_credentials=props.storage_credentials,
        )
        migrations = JobV1(
            self,
            "Migrations",
            metadata={
                "name": f"{name}-db-migrations-{revision}",
                "namespace": namespace,
                "labels": migration_labels,
            },
            spec=to_struct(
                JobV1Spec,
                {
                    "backoff_limit": 4,
                    "active_deadline_seconds": 1800,
                    "template": atticd_pod(
                        inputs,
                        mode="db-migrations",
                        labels=migration_labels,
                        resources=props.gc_resources,
                        restart_policy="Never",
                    ),
                },
            ),
            wait_for_completion=True,
            timeouts=JobV1Timeouts(create="30m", update="30m"),
            depends_on=list(props.depends_on) or None,
        )
        api = add_autoscaled_deployment(
            self,
            "Api",
            name=name,
            namespace=namespace,
            selector=self.api_labels,
            template=atticd_pod(
                inputs,
                mode="api-server",
                labels=self.api_labels,
                resources=props.api_resources,
                grace_seconds=props.termination_grace_seconds,
                probe_host=props.probe_host,
                statement_timeout=props.api_statement_timeout,
            ),
            bounds=props,
            # Up fast (a CI wave is bursty), down slowly (each stop interrupts uploads).
            pace=ScalingPace(up_pods=4, down_pods=2, down_select="Min"),
            depends_on=[migrations],
        )
        service_spec = {
            "selector": self.api_labels,
            "port": [
                {"name": "http", "port": SERVICE_PORT, "target_port": "http", "protocol": "TCP"}
            ],
        }
        self.service = ServiceV1(
            self,
            "Service",
            metadata={"name": name, "namespace": namespace, "labels": self.api_labels},
            spec=to_struct(ServiceV1Spec, service_spec),
        )
        self.service_name: str = self.service.metadata.name
        self.api = api
        self.config_map_name: str = config.metadata.name
        self.image = props.image.ref
        for route in props.route_services:
            ServiceV1(
                self,
                f"RouteService-{route}",
                metadata={"name": route, "namespace": namespace, "labels": self.api_labels},
                spec=to_struct(ServiceV1Spec, service_spec),
            )
        self.gc_mode = "cronjob" if gc_interval == 0 else "deployment"
        self.gc_name = f"{name}-gc"
        if self.gc_mode == "deployment":
            # Exactly one collector: never scaled, and Recreate so two never overlap.
            DeploymentV1(
                self,
                "GarbageCollector",
                metadata={"name": f"{name}-gc", "namespace": namespace, "labels": gc_labels},
                spec=to_struct(
                    DeploymentV1Spec,
                    {
                        "replicas": "1",
                        "revision_history_limit": 5,
                        "selector": {"match_labels": gc_labels},
                        "strategy": {"type": "Recreate"},
                        "template": atticd_pod(
                            inputs,
                            mode="garbage-collector",
                            labels=gc_labels,
                            resources=props.gc_resources,
                            grace_seconds=60,
                        ),
                    },
                ),
                depends_on=[migrations],
            )
        else:
            CronJobV1(
                self,
                "GarbageCollectorSchedule",
                metadata={"name": f"{name}-gc", "namespace": namespace, "labels": gc_labels},
                spec=to_struct(
                    CronJobV1Spec,
                    {
                        "schedule": props.gc_schedule,
                        "concurrency_policy": "Forbid",
                        "starting_deadline_seconds": 3600,
                        "successful_jobs_history_limit": 3,
                        "failed_jobs_history_limit": 3,
                        "job_template": {
                            "metadata": {"labels": gc_labels},
                            "spec": {
                                "backoff_limit": 2,
                                "template": atticd_pod(
                                    inputs,
                                    mode="garbage-collector-once",
                                    labels=gc_labels,
                                    resources=props.gc_resources,
                                    restart_policy="Never",
                                    grace_seconds=60,
                                ),
                            },
                        },
                    },
                ),
                depends_on=[migrations],
            )


def _gc_interval(config: Mapping[str, Any]) -> float | None:
    section = config.get("garbage-collection")
    interval = section.get("interval", "12 hours") if isinstance(section, Mapping) else "12 hours"
    try:
        return parse_duration(interval)
    except ValueError:
        return None  # reported by server_config_problems
