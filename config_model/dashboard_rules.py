"""Rules of the ``dashboard:`` section that span keys: what an enabled dashboard needs, how its
OAuth client is given, and a namespace and host of its own."""

from __future__ import annotations

from config_model.base import Problems
from config_model.organization import OrganizationConfig

_SECTION = ("dashboard",)


def dashboard_problems(config: OrganizationConfig) -> Problems:
    """Problems of ``dashboard`` as ``(path, message, value)``."""
    dashboard = config.dashboard
    problems: Problems = []
    oauth = dashboard.oauth
    if oauth.create_application and oauth.client_id is not None:
        problems.append(
            (
                (*_SECTION, "oauth", "client_id"),
                "comes from the application dashboard.oauth.create_application creates; "
                "remove it, or set create_application to false",
                oauth.client_id,
            )
        )
    if dashboard.enabled:
        for key, value in (
            ("gitlab_group", dashboard.gitlab_group),
            ("config_project", dashboard.config_project),
        ):
            if value is None:
                problems.append(
                    ((*_SECTION, key), "is required when the dashboard is enabled", None)
                )
        if oauth.client_id is None and not oauth.create_application:
            problems.append(
                (
                    (*_SECTION, "oauth", "client_id"),
                    "is required when the dashboard is enabled, unless "
                    "dashboard.oauth.create_application is true",
                    None,
                )
            )
    taken = _namespaces_of_other_stacks(config)
    if dashboard.namespace in taken:
        problems.append(
            (
                (*_SECTION, "namespace"),
                f"is already {taken[dashboard.namespace]}'s namespace; the dashboard needs one of "
                "its own (its policies deny everything else there)",
                dashboard.namespace,
            )
        )
    ingress = dashboard.ingress
    if ingress.tls_secret is not None and ingress.cluster_issuer is not None:
        problems.append(
            (
                (*_SECTION, "ingress", "cluster_issuer"),
                "is not used with dashboard.ingress.tls_secret (an existing certificate); "
                "remove one of them",
                ingress.cluster_issuer,
            )
        )
    if dashboard.host is not None and dashboard.host == config.attic.ingress.host:
        problems.append(
            ((*_SECTION, "host"), "is attic's host too; give the dashboard its own", dashboard.host)
        )
    return problems


def _namespaces_of_other_stacks(config: OrganizationConfig) -> dict[str, str]:
    runners, attic, platform = config.runners, config.attic, config.platform
    owners = {
        runners.namespace: "runners.namespace",
        runners.job_namespace: "runners.job_namespace",
        runners.dind_namespace: "runners.dind_namespace",
        attic.namespace: "attic.namespace",
        platform.namespaces.cnpg: "platform.namespaces.cnpg",
        platform.namespaces.cert_manager: "platform.namespaces.cert_manager",
        platform.namespaces.minio_operator: "platform.namespaces.minio_operator",
    }
    if attic.storage.backend == "seaweedfs":
        owners[attic.storage.seaweedfs.namespace] = "attic.storage.seaweedfs.namespace"
    if attic.storage.backend == "minio":
        owners[attic.storage.minio.namespace] = "attic.storage.minio.namespace"
    return owners
