"""The ``platform:`` section: which cluster-wide operators the platform-<env> stack installs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config_model.base import (
    K8sName,
    StrictModel,
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
