"""A Secret holding an S3 key pair whose values exist only in Terraform state."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Token
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from constructs import Construct

from constructs_lib.storage.s3_endpoint import S3Credentials
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["S3CredentialsSecret", "S3CredentialsSecretProps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class S3CredentialsSecretProps:
    """Props of :class:`S3CredentialsSecret`.

    Attributes:
        name: Secret name.
        namespace: the consuming workload's namespace.
        access_key_id: a reference (sensitive variable, ``random_password``), never a literal.
        secret_access_key: a reference, never a literal.
    """

    name: str
    namespace: str
    access_key_id: str
    secret_access_key: str


class S3CredentialsSecret(Construct):
    """Opaque Secret with ``access_key_id`` and ``secret_access_key``.

    Creates one Secret (child id ``Default``, so the construct's own address). Pass references
    (a sensitive ``TerraformVariable``, a ``random_password``), never literals: a literal would
    be written to ``cdktf.out``.

    Attributes:
        credentials: where consumers find the keys; the Secret name is a reference, so whatever
            mounts it waits for the Secret.

    Example:
        ```python
        from cdktf import TerraformVariable

        from constructs_lib.storage.s3_credentials_secret import (
            S3CredentialsSecret,
            S3CredentialsSecretProps,
        )

        key_id = TerraformVariable(stack, "s3_access_key_id", type="string", sensitive=True)
        secret = TerraformVariable(stack, "s3_secret_access_key", type="string", sensitive=True)
        keys = S3CredentialsSecret(
            stack,
            "S3Keys",
            S3CredentialsSecretProps(
                name="attic-s3",
                namespace="attic",
                access_key_id=key_id.string_value,
                secret_access_key=secret.string_value,
            ),
        )
        keys.credentials  # S3Credentials for AtticServerProps.storage_credentials
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: S3CredentialsSecretProps
    ) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "S3CredentialsSecret",
            [
                check_dns_label("name", props.name),
                *(
                    f"{prop}: must be a reference (sensitive variable or generated password), "
                    "never a literal that would be written to cdktf.out"
                    for prop in ("access_key_id", "secret_access_key")
                    if not Token.is_unresolved(getattr(props, prop))
                ),
            ],
        )
        secret = SecretV1(
            self,
            "Default",
            metadata=SecretV1Metadata(name=props.name, namespace=props.namespace),
            data={
                "access_key_id": props.access_key_id,
                "secret_access_key": props.secret_access_key,
            },
            type="Opaque",
        )
        # A reference, so whatever mounts the keys waits for the Secret.
        self.credentials = S3Credentials(
            secret_name=secret.metadata.name,
            access_key_id_key="access_key_id",
            secret_access_key_key="secret_access_key",
        )
