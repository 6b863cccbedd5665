"""A generated password for a Postgres login role that CloudNativePG manages."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from constructs_lib.postgres.cnpg_cluster import ManagedRole
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["DatabaseLogin", "DatabaseLoginProps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseLoginProps:
    """Props of :class:`DatabaseLogin`.

    Attributes:
        role: the Postgres role name.
        namespace: the CNPG cluster's namespace, where the operator reads the password.
        secret_name: name of the ``kubernetes.io/basic-auth`` Secret there.
    """

    role: str
    namespace: str
    secret_name: str


class DatabaseLogin(Construct):
    """A random password (only in Terraform state) in a basic-auth Secret labelled so that the
    operator applies a change at once (``cnpg.io/reload``).

    Creates a ``random_password`` (child id ``Password``) and the Secret (``Secret``). Pass
    :attr:`role` to ``CnpgClusterProps.roles`` so the operator creates the login.

    Attributes:
        role: the entry for :attr:`CnpgClusterProps.roles`.
        password: a reference to the password, for the client's own Secret.
        secret: the Secret, for ``depends_on``.

    Example:
        ```python
        from constructs_lib.postgres.database_login import DatabaseLogin, DatabaseLoginProps

        login = DatabaseLogin(
            stack,
            "FilerLogin",
            DatabaseLoginProps(role="filer", namespace="attic", secret_name="attic-db-filer"),
        )
        login.role  # ManagedRole(name="filer", password_secret="attic-db-filer")
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: DatabaseLoginProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "DatabaseLogin",
            [
                check_dns_label("secret_name", props.secret_name),
                ""
                if props.role.isidentifier() and props.role.islower()
                else f"role: {props.role!r} must be a lowercase identifier (no quoting needed)",
            ],
        )
        password = Password(self, "Password", length=32, special=False)
        self.secret = SecretV1(
            self,
            "Secret",
            metadata=SecretV1Metadata(
                name=props.secret_name,
                namespace=props.namespace,
                labels={"cnpg.io/reload": "true"},
            ),
            type="kubernetes.io/basic-auth",
            data={"username": props.role, "password": password.result},
        )
        self.password: str = password.result
        self.role = ManagedRole(name=props.role, password_secret=props.secret_name)
