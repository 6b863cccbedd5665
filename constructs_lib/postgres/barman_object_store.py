"""Where the Barman Cloud plugin archives WAL and base backups (``barmancloud.cnpg.io``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.storage.s3_endpoint import S3Credentials
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["BarmanObjectStore", "BarmanObjectStoreProps"]

_RETENTION = re.compile(r"^[1-9][0-9]*[dwm]$")


@dataclass(frozen=True, kw_only=True, slots=True)
class BarmanObjectStoreProps:
    """Props of :class:`BarmanObjectStore`.

    Attributes:
        name: ObjectStore name; a Cluster's plugin entry refers to it, in its own namespace.
        namespace: the Postgres cluster's namespace.
        bucket: S3 bucket; every cluster gets a folder named after it.
        endpoint_url: S3 API URL; ``None`` means AWS S3.
        credentials: Secret with the access keys; ``None`` uses the pods' workload identity.
        retention: how long backups are kept (``30d``, ``4w``, ``6m``). Default ``"30d"``.
        protect: ``prevent_destroy``: without it, the backups' index goes with a destroy.
            Default ``False``.
        depends_on: resources that must exist first (the bucket). Default - none.
    """

    name: str
    namespace: str
    bucket: str
    endpoint_url: str | None
    credentials: S3Credentials | None
    retention: str = "30d"
    protect: bool = False
    depends_on: tuple[ITerraformDependable, ...] = ()


class BarmanObjectStore(Construct):
    """An S3 destination for WAL archives and base backups, compressed and retained.

    Creates one ``ObjectStore`` (``barmancloud.cnpg.io/v1``, child id ``ObjectStore``) that a
    Cluster names in ``ClusterBackup.object_store``. Backups go to ``s3://<bucket>/<cluster>/``.

    Attributes:
        name: the ObjectStore's name.
        store: the custom resource construct, for ``depends_on`` (its ``resource``).

    Example:
        ```python
        from constructs_lib.postgres.barman_object_store import (
            BarmanObjectStore,
            BarmanObjectStoreProps,
        )
        from constructs_lib.storage.s3_endpoint import S3Credentials

        BarmanObjectStore(
            stack,
            "Backups",
            BarmanObjectStoreProps(
                name="pg-backups",
                namespace="attic",
                bucket="acme-pg-backups",
                endpoint_url=None,  # AWS S3
                credentials=S3Credentials(secret_name="pg-backup-keys"),
                retention="30d",
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: BarmanObjectStoreProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "BarmanObjectStore",
            [
                check_dns_label("name", props.name),
                ""
                if _RETENTION.match(props.retention)
                else f"retention: {props.retention!r} must look like 30d, 4w or 6m",
            ],
        )
        self.name = props.name
        configuration: dict[str, object] = {
            "destinationPath": f"s3://{props.bucket}/",
            "wal": {"compression": "gzip", "maxParallel": 4},
            "data": {"compression": "gzip", "jobs": 2},
        }
        if props.endpoint_url:
            configuration["endpointURL"] = props.endpoint_url
        if props.credentials is None:
            configuration["s3Credentials"] = {"inheritFromIAMRole": True}
        else:
            secret = props.credentials.secret_name
            configuration["s3Credentials"] = {
                "accessKeyId": {"name": secret, "key": props.credentials.access_key_id_key},
                "secretAccessKey": {
                    "name": secret,
                    "key": props.credentials.secret_access_key_key,
                },
            }
        self.store = CustomResource(
            self,
            "ObjectStore",
            CustomResourceProps(
                manifest={
                    "apiVersion": "barmancloud.cnpg.io/v1",
                    "kind": "ObjectStore",
                    "metadata": {"name": props.name, "namespace": props.namespace},
                    "spec": {"configuration": configuration, "retentionPolicy": props.retention},
                },
                protect=props.protect,
                depends_on=props.depends_on,
            ),
        )
