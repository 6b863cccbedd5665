"""The configuration model: every key users may set, every default, every per-key rule.

This module must stay free of cdktf/jsii imports: config errors are reported before the
(slow) jsii runtime starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

STACK_NAME = re.compile(r"^[a-z0-9-]+$")
_ENV_NAME = r"^[a-z][a-z0-9-]*$"
_ORG_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class StrictModel(BaseModel):
    """Base for every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not contain credentials, a query or a fragment")
    return value.rstrip("/")


def _digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("must be a lowercase DNS name such as dev.example.com")
    return value


K8sName = Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]


class Organization(StrictModel):
    """Who runs this deployment."""

    name: str = Field(
        pattern=_ORG_NAME,
        max_length=40,
        description="Short slug used in labels and descriptions: lowercase letters, digits, '-'.",
    )
    full_name: str = Field(min_length=1, description="Display name, e.g. 'Acme Corp'.")


class GitLab(StrictModel):
    """The GitLab that holds the Terraform state (and, later, the runners)."""

    url: Annotated[str, AfterValidator(_https_url)] = Field(
        description="GitLab base URL, https only, e.g. https://gitlab.com."
    )
    state_project_id: Annotated[str, BeforeValidator(_digits)] = Field(
        pattern=r"^[0-9]+$",
        description="Numeric id of the project whose Terraform states hold every stack.",
    )
    state_username: str = Field(
        default="gitlab-ci-token",
        min_length=1,
        description="HTTP backend username; the password only ever comes from TF_HTTP_PASSWORD.",
    )


class Environment(StrictModel):
    """One deployment target: a cluster reached through a GitLab agent context."""

    cluster_context: str = Field(
        min_length=1,
        description="kubeconfig context (e.g. the GitLab agent context 'group/project:agent').",
    )
    domain: Annotated[str, AfterValidator(_hostname)] = Field(
        description="DNS domain under which this environment's hosts live."
    )
    protect_stateful: bool = Field(
        default=True,
        description="Set prevent_destroy on stateful resources so OpenTofu refuses to delete them.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Config deep-merged over the base for this environment (maps merge, "
        "lists and scalars replace); the result is validated as a whole.",
    )


class PlatformNamespaces(StrictModel):
    """Namespaces of the cluster-wide operators."""

    cnpg: K8sName = Field(
        default="cnpg-system",
        description="CloudNativePG operator namespace; the Barman Cloud plugin runs there too.",
    )
    cert_manager: K8sName = Field(default="cert-manager")
    minio_operator: K8sName = Field(default="minio-operator")


class Platform(StrictModel):
    """What the platform-<env> stack installs. 'external' means: already in the cluster."""

    cnpg_operator: Literal["install", "external"] = Field(
        default="install", description="CloudNativePG operator (chart pinned in versions)."
    )
    barman_cloud_plugin: Literal["install", "external", "none"] = Field(
        default="install",
        description="CNPG Barman Cloud plugin, the supported way to back up Postgres; "
        "'none' disables database backups.",
    )
    cert_manager: Literal["external", "install", "none"] = Field(
        default="external",
        description="cert-manager: most clusters have it ('external'); 'install' uses our pinned "
        "chart; 'none' is only allowed without the Barman Cloud plugin.",
    )
    minio_operator: Literal["install", "external"] = Field(
        default="install",
        description="MinIO operator, used only when attic.storage.backend is 'minio'.",
    )
    namespaces: PlatformNamespaces = Field(default_factory=PlatformNamespaces)


class Monitoring(StrictModel):
    """Integration with a prometheus-operator based monitoring stack."""

    prometheus_operator: bool = Field(
        default=False,
        description="Create PodMonitors/ServiceMonitors; needs the prometheus-operator CRDs.",
    )


class AtticStorage(StrictModel):
    """Object storage for the Attic cache."""

    backend: Literal["s3", "seaweedfs", "minio"] = Field(
        default="seaweedfs",
        description="'s3': any external S3 endpoint; 'seaweedfs': in-cluster, maintained; "
        "'minio': in-cluster via the MinIO operator (project archived in 2026).",
    )


class Attic(StrictModel):
    """The Attic binary cache."""

    storage: AtticStorage = Field(default_factory=AtticStorage)


class OrganizationConfig(StrictModel):
    """config/organization.yaml: one file for every environment."""

    organization: Organization
    gitlab: GitLab
    environments: dict[Annotated[str, Field(pattern=_ENV_NAME, max_length=20)], Environment] = (
        Field(min_length=1, description="Environments by name (lowercase, digits, '-', <= 20).")
    )
    platform: Platform = Field(default_factory=Platform)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    attic: Attic = Field(default_factory=Attic)


def cross_field_problems(config: OrganizationConfig) -> list[tuple[tuple[str, ...], str, Any]]:
    """Rules that span several keys, as ``(path, message, value)``."""
    problems: list[tuple[tuple[str, ...], str, Any]] = []
    platform = config.platform
    if platform.cert_manager == "none" and platform.barman_cloud_plugin != "none":
        problems.append(
            (
                ("platform", "cert_manager"),
                "cert-manager is required while platform.barman_cloud_plugin is "
                f"'{platform.barman_cloud_plugin}' (the plugin's operator link uses "
                "cert-manager certificates); allowed: 'external', 'install', or set "
                "platform.barman_cloud_plugin to 'none' to run without database backups",
                platform.cert_manager,
            )
        )
    return problems
