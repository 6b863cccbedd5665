"""Kubernetes and Helm providers bound to one environment's cluster context.

The kubeconfig file comes from ``KUBE_CONFIG_PATH`` in the environment that runs OpenTofu
(the GitLab agent provides one in CI); no host, token or certificate is ever synthesized.
"""

from __future__ import annotations

from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from constructs import Construct


def cluster_providers(scope: Construct, cluster_context: str, *, helm: bool = True) -> None:
    """Configure the default kubernetes provider of ``scope``'s stack, and helm unless the
    stack installs no chart."""
    KubernetesProvider(scope, "kubernetes", config_context=cluster_context)
    if helm:
        HelmProvider(
            scope, "helm", kubernetes=HelmProviderKubernetes(config_context=cluster_context)
        )


def aws_provider(scope: Construct, region: str) -> None:
    """The AWS provider, imported only here and only on the bucket-creation path.

    Credentials come from the environment that runs OpenTofu (AWS_* variables, a profile or
    a web identity), never from the synthesized code.
    """
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    AwsProvider(scope, "aws", region=region)


def gitlab_provider(
    scope: Construct,
    gitlab_url: str,
    purpose: str = "GitLab token that creates runners",
) -> None:
    """The GitLab provider, imported only where a stack creates GitLab objects: runners
    (runners.token_source gitlab_api; scope ``create_runner``, plus ``read_api``/``api`` to
    refresh and update them) or the dashboard's OAuth application (an administrator's ``api``
    token).

    Its token is the sensitive variable ``gitlab_token`` (``TF_VAR_gitlab_token``); left
    unset, the provider reads ``GITLAB_TOKEN``. ``purpose`` starts the variable's description.
    """
    from cdktf import TerraformVariable, Token
    from cdktf_cdktf_provider_gitlab.provider import GitlabProvider

    token = TerraformVariable(
        scope,
        "gitlab_token",
        type="string",
        sensitive=True,
        nullable=True,
        # An explicit null: a variable without "default" is required, and `tofu plan
        # -input=false` stops at it. (Python's None would leave the key out.)
        default=Token.null_value(),
        description=f"{purpose} (TF_VAR_gitlab_token); unset: GITLAB_TOKEN",
    )
    GitlabProvider(scope, "gitlab", base_url=f"{gitlab_url}/api/v4/", token=token.string_value)


def random_provider(scope: Construct) -> None:
    """random: generated secrets that live only in Terraform state."""
    from cdktf_cdktf_provider_random.provider import RandomProvider

    RandomProvider(scope, "random")


def generator_providers(scope: Construct) -> None:
    """random and tls: generated secrets and keys that live only in Terraform state."""
    from cdktf_cdktf_provider_tls.provider import TlsProvider

    random_provider(scope)
    TlsProvider(scope, "tls")
