"""A database in a CloudNativePG cluster, declared as a ``Database`` resource (CNPG 1.25+)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["CnpgDatabase", "CnpgDatabaseProps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CnpgDatabaseProps:
    """Props of :class:`CnpgDatabase`.

    Attributes:
        cluster: the Cluster's name. The reference is immutable, so the object is named after
            it: a new cluster (a restore) gets a new object.
        namespace: the Cluster's namespace.
        database: database name in Postgres.
        owner: owning role (must exist, e.g. a managed role).
        depends_on: resources that must exist first (the Cluster). Default - none.
    """

    cluster: str
    namespace: str
    database: str
    owner: str
    depends_on: Sequence[ITerraformDependable] = ()


class CnpgDatabase(Construct):
    """``CREATE DATABASE`` (or ``ALTER`` an existing one) by the operator; deleting the object
    keeps the database (``databaseReclaimPolicy: retain``).

    Creates one ``Database`` custom resource named ``<cluster>-<database>`` (child id
    ``Database``) that waits until the operator applied it.

    Attributes:
        name: the Database object's name.
        resource: the object, for ``depends_on`` (ready once the operator applied it).

    Example:
        ```python
        from constructs_lib.postgres.cnpg_database import CnpgDatabase, CnpgDatabaseProps

        CnpgDatabase(
            stack,
            "FilerDatabase",
            CnpgDatabaseProps(
                cluster="attic-db", namespace="attic", database="filer", owner="filer"
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: CnpgDatabaseProps) -> None:
        super().__init__(scope, construct_id)
        self.name = f"{props.cluster}-{props.database}"
        raise_if_problems("CnpgDatabase", [check_dns_label("name", self.name)])
        self.resource = CustomResource(
            self,
            "Database",
            CustomResourceProps(
                manifest={
                    "apiVersion": "postgresql.cnpg.io/v1",
                    "kind": "Database",
                    "metadata": {"name": self.name, "namespace": props.namespace},
                    "spec": {
                        "cluster": {"name": props.cluster},
                        "name": props.database,
                        "owner": props.owner,
                        "ensure": "present",
                        "databaseReclaimPolicy": "retain",
                    },
                },
                ready_fields={"status.applied": "true"},
                depends_on=props.depends_on,
            ),
        ).resource
