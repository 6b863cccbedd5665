"""Every rule that spans keys, in one call: what the loader checks after the per-key schema;
and the warnings ``attic-iac synth`` prints for choices that work but weaken the defaults."""

from __future__ import annotations

from config_model.attic_rules import attic_problems
from config_model.base import Problems
from config_model.dashboard_rules import dashboard_problems
from config_model.organization import OrganizationConfig
from config_model.runner_rules import runner_problems


def cross_field_problems(config: OrganizationConfig) -> Problems:
    """Rules that span several keys, as ``(path, message, value)``."""
    problems: Problems = []
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
    problems += attic_problems(config)
    problems += runner_problems(config)
    problems += dashboard_problems(config)
    return problems


def config_warnings(config: OrganizationConfig) -> list[str]:
    """Valid choices that give up a default's protection, one line each."""
    warnings: list[str] = []
    if config.attic.storage.backend == "minio":
        warnings.append(
            "attic.storage.backend 'minio' - MinIO's open-source project was archived in 2026 "
            "and gets no security fixes; prefer 'seaweedfs' or 's3'"
        )
    runners = config.runners
    if runners.types.dind.enabled and not runners.types.dind.jobs.node_selector:
        warnings.append(
            "runners.types.dind.jobs has no node_selector: privileged dind job pods may run "
            "beside Postgres, atticd and other jobs, and a container escape there reaches them"
        )
    if runners.attic.enabled and runners.attic.unprotected_push:
        warnings.append(
            "runners.attic.unprotected_push is true: jobs of every branch and merge request "
            "can push to the Attic cache that every consumer trusts"
        )
    return warnings
