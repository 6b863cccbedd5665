"""Who deploys (organization), where state lives (GitLab), where it runs (environments),
and the root model of ``organization.yaml`` that holds every section."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from config_model.attic import Attic
from config_model.base import (
    Hostname,
    StrictModel,
    check_url,
    digits,
)
from config_model.dashboard import Dashboard
from config_model.monitoring import Monitoring
from config_model.platform import Platform
from config_model.runners import Runners

STACK_NAME = re.compile(r"^[a-z0-9-]+$")
_ENV_NAME = r"^[a-z][a-z0-9-]*$"
_ORG_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def _https_url(value: str) -> str:
    check_url(value, ("https",), "https://")
    return value.rstrip("/")


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
    state_project_id: Annotated[str, BeforeValidator(digits)] = Field(
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
    domain: Hostname = Field(description="DNS domain under which this environment's hosts live.")
    protect_stateful: bool = Field(
        default=True,
        description="Set prevent_destroy on stateful resources so OpenTofu refuses to delete them.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Config deep-merged over the base for this environment (maps merge, "
        "lists and scalars replace); the result is validated as a whole.",
    )


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
    runners: Runners = Field(default_factory=Runners)
    dashboard: Dashboard = Field(default_factory=Dashboard)
