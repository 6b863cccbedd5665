"""Every rule that spans keys, in one call: what the loader checks after the per-key schema."""

from __future__ import annotations

from config_model.attic_rules import attic_problems
from config_model.base import Problems
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
    return problems
