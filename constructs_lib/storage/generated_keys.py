"""Generated S3 key pairs for in-cluster stores: values live only in Terraform state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf_cdktf_provider_random.password import Password
from constructs import Construct

from constructs_lib.kubernetes.traffic_policy import Peer, Rule
from constructs_lib.storage.s3_credentials_secret import (
    S3CredentialsSecret,
    S3CredentialsSecretProps,
)
from constructs_lib.storage.s3_endpoint import S3Credentials, S3Endpoint, StorageIdentity

__all__ = ["GeneratedKeys"]


class GeneratedKeys(Construct):
    """A random key pair per identity, each copied into a Secret in its consumer's namespace.

    For each identity, under a child named after it: ``random_password`` resources
    ``AccessKeyId`` and ``SecretAccessKey`` and an :class:`S3CredentialsSecret` (``Secret``).
    The in-cluster stores (:class:`~constructs_lib.storage.seaweedfs.SeaweedFs`,
    :class:`~constructs_lib.storage.minio_tenant.MinioTenant`) make one for their identities.

    Attributes:
        access_key_ids: identity name -> access key id reference.
        secret_access_keys: identity name -> secret key reference.
        credentials: identity name -> the consumer's Secret.

    Example:
        ```python
        from constructs_lib.storage.generated_keys import GeneratedKeys
        from constructs_lib.storage.s3_endpoint import StorageIdentity

        keys = GeneratedKeys(
            stack,
            "Keys",
            [
                StorageIdentity(
                    name="attic", bucket="attic", secret_namespace="attic", secret_name="attic-s3"
                )
            ],
        )
        keys.credentials["attic"]  # S3Credentials of the Secret in namespace attic
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, identities: Sequence[StorageIdentity]
    ) -> None:
        super().__init__(scope, construct_id)
        self._identities = tuple(identities)
        self.access_key_ids: dict[str, str] = {}
        self.secret_access_keys: dict[str, str] = {}
        self.credentials: dict[str, S3Credentials] = {}
        for identity in identities:
            scope_ = Construct(self, identity.name)
            key_id = Password(scope_, "AccessKeyId", length=20, special=False, lower=False)
            secret = Password(scope_, "SecretAccessKey", length=40, special=False)
            self.access_key_ids[identity.name] = key_id.result
            self.secret_access_keys[identity.name] = secret.result
            self.credentials[identity.name] = S3CredentialsSecret(
                scope_,
                "Secret",
                S3CredentialsSecretProps(
                    name=identity.secret_name,
                    namespace=identity.secret_namespace,
                    access_key_id=key_id.result,
                    secret_access_key=secret.result,
                ),
            ).credentials

    def endpoints(
        self, *, url: str, namespace: str, pod_labels: Mapping[str, str], port: int
    ) -> dict[str, S3Endpoint]:
        """Identity name -> how that consumer reaches the store's S3 pods at ``url``."""
        egress = (Rule(peers=[Peer(namespace=namespace, pod_labels=pod_labels)], ports=[port]),)
        return {
            identity.name: S3Endpoint(
                url=url,
                region="us-east-1",  # in-cluster stores accept any region
                bucket=identity.bucket,
                credentials=self.credentials[identity.name],
                egress=egress,
            )
            for identity in self._identities
        }
