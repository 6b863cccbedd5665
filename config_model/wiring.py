"""Facts derived across sections, which the stacks and the rules both need: which caches nix
jobs use, whether they are wired to Attic at all, which namespaces call atticd directly and
which download from in-cluster storage."""

from __future__ import annotations

from config_model.organization import OrganizationConfig


def wiring_caches(config: OrganizationConfig) -> list[str]:
    """Caches nix jobs use: those listed (default: every declared cache; without a token, every
    declared public cache)."""
    wiring, declared = config.runners.attic, config.attic.caches
    if wiring.caches is not None:
        return list(wiring.caches)
    return [c.name for c in declared if c.public or wiring.token is not None]


def attic_wiring_active(config: OrganizationConfig) -> bool:
    """Whether nix jobs get Attic caches: wiring on, nix runner on, some cache to use."""
    runners = config.runners
    return runners.attic.enabled and runners.types.nix.enabled and bool(wiring_caches(config))


def attic_client_namespaces(config: OrganizationConfig) -> list[str]:
    """Namespaces whose pods call atticd directly: the configured ones, plus the runners' job
    namespace when nix jobs use the in-cluster endpoint."""
    names = list(config.attic.api.client_namespaces)
    if attic_wiring_active(config) and config.runners.attic.endpoint == "in_cluster":
        names.append(config.runners.job_namespace)
    return list(dict.fromkeys(names))


def storage_client_namespaces(config: OrganizationConfig, *, public_endpoint: bool) -> list[str]:
    """Namespaces whose pods in-cluster storage admits: atticd's and its direct clients', and,
    when storage has no public endpoint, the nix jobs' (atticd redirects their downloads to
    the in-cluster URL then, whichever endpoint they use)."""
    names = [config.attic.namespace, *attic_client_namespaces(config)]
    if not public_endpoint and attic_wiring_active(config):
        names.append(config.runners.job_namespace)
    return list(dict.fromkeys(names))
