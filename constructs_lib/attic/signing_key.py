"""The RS256 key atticd signs and verifies tokens with, made by Terraform: it exists in Terraform
state and one Secret, so everyone who can read the state can mint admin tokens. Replacing it
invalidates every token ever issued, so it is protected state. The default is to make it in the
cluster instead (:mod:`constructs_lib.attic.signing_key_job`)."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_tls.private_key import PrivateKey
from constructs import Construct

from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["ENV_NAME", "AtticSigningKey", "AtticSigningKeyProps"]

ENV_NAME = "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"
"""The environment variable atticd reads its RS256 key from, and the Secret's data key."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticSigningKeyProps:
    """Props of :class:`AtticSigningKey`.

    Attributes:
        namespace: atticd's namespace.
        secret_name: the Secret holding the key. Default ``"attic-token-signing"``.
        protect: ``prevent_destroy`` on the key. Default ``False``.
    """

    namespace: str
    secret_name: str = "attic-token-signing"
    protect: bool = False


class AtticSigningKey(Construct):
    """RSA 4096 key, PKCS#1 PEM, standard base64 without newlines, under the env var name
    atticd reads (:data:`ENV_NAME`).

    Creates a ``tls_private_key`` (``Key``) and the Secret (``Secret``). The key lives in
    Terraform state: prefer :class:`~constructs_lib.attic.signing_key_job.AtticSigningKeyJob`,
    which makes it in the cluster.

    Attributes:
        key: the ``tls_private_key`` resource.
        secret: the Secret resource.
        secret_name: the Secret.
        secret_key: its data key.
        ready: the Secret, for ``depends_on``.

    Example:
        ```python
        from constructs_lib.attic.signing_key import AtticSigningKey, AtticSigningKeyProps

        key = AtticSigningKey(
            stack, "SigningKey", AtticSigningKeyProps(namespace="attic", protect=True)
        )
        key.secret_name, key.secret_key  # AtticServerProps.signing_secret and .signing_key
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AtticSigningKeyProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("AtticSigningKey", [check_dns_label("secret_name", props.secret_name)])
        # tls_private_key renders RSA keys as "BEGIN RSA PRIVATE KEY" (PKCS#1), the form
        # atticd documents (`openssl genrsa -traditional 4096 | base64 -w0`).
        self.key = PrivateKey(
            self,
            "Key",
            algorithm="RSA",
            rsa_bits=4096,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.protect else None,
        )
        self.secret = SecretV1(
            self,
            "Secret",
            metadata=SecretV1Metadata(name=props.secret_name, namespace=props.namespace),
            data={ENV_NAME: Fn.base64encode(self.key.private_key_pem)},
        )
        self.secret_name: str = self.secret.metadata.name
        self.secret_key = ENV_NAME
        self.ready = self.secret
