"""Facts derived across sections, which the stacks and the rules both need: which caches nix
jobs use, whether they are wired to Attic at all, which token and push cache each nix runner
gets, which namespaces call atticd directly, which download from in-cluster storage, where the
Postgres backups live and where SeaweedFS keeps its file index."""

from __future__ import annotations

from dataclasses import dataclass

from config_model.organization import OrganizationConfig
from config_model.runners import runner_slug

# The runner types whose jobs use the Attic caches.
NIX_TYPES = ("nix", "nix_protected")


@dataclass(frozen=True)
class NixAttic:
    """What one nix runner type's jobs get: the attic.tokens entry mounted into them (None:
    public caches only) and the cache they push to (None: pull only)."""

    token: str | None
    push_cache: str | None


def wiring_caches(config: OrganizationConfig) -> list[str]:
    """Caches nix jobs use: those listed (default: every declared cache; without any token,
    every declared public cache)."""
    wiring, declared = config.runners.attic, config.attic.caches
    if wiring.caches is not None:
        return list(wiring.caches)
    tokens = wiring.token is not None or wiring.push_token is not None
    return [c.name for c in declared if c.public or tokens]


def attic_wiring_active(config: OrganizationConfig) -> bool:
    """Whether nix jobs get Attic caches: wiring on, a nix runner on, some cache to use."""
    runners = config.runners
    nix_on = any(getattr(runners.types, name).enabled for name in NIX_TYPES)
    return runners.attic.enabled and nix_on and bool(wiring_caches(config))


def nix_attic(config: OrganizationConfig, runner_type: str) -> NixAttic:
    """Token and push cache of a nix runner type: jobs of unprotected refs (``nix``) push only
    with ``unprotected_push``; ``nix_protected`` pushes with ``push_token``."""
    wiring = config.runners.attic
    caches = wiring_caches(config)
    push_cache = wiring.push_cache or (caches[0] if caches else None)
    if runner_type == "nix_protected" and wiring.push_token is not None:
        return NixAttic(token=wiring.push_token, push_cache=push_cache)
    if wiring.unprotected_push and wiring.token is not None:
        return NixAttic(token=wiring.token, push_cache=push_cache)
    return NixAttic(token=wiring.token, push_cache=None)


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


def backup_store_in_cluster(config: OrganizationConfig) -> bool:
    """Whether the Postgres backups (or the backups a recovery reads) live in the in-cluster
    storage that also holds the cache."""
    attic = config.attic
    database = attic.database
    used = database.backup.enabled or database.recovery is not None
    return used and database.backup.s3 is None and attic.storage.backend != "s3"


def filer_in_postgres(config: OrganizationConfig) -> bool:
    """Whether SeaweedFS keeps its filer index in attic's Postgres cluster."""
    storage = config.attic.storage
    if storage.backend != "seaweedfs":
        return False
    if storage.seaweedfs.filer_store == "auto":
        return not backup_store_in_cluster(config)
    return storage.seaweedfs.filer_store == "postgres"


def runner_description(config: OrganizationConfig, environment: str, runner_type: str) -> str:
    """The runner's description in GitLab: what the stacks register and what the dashboard
    matches runners by."""
    registration = getattr(config.runners.types, runner_type).gitlab
    return registration.description or f"{config.organization.name} {environment} {runner_type}"


def runner_release_name(runner_type: str) -> str:
    """The Helm release of a type's manager, and so its Deployment's name."""
    return f"gitlab-runner-{runner_slug(runner_type)}"


def runner_tags(config: OrganizationConfig, runner_type: str) -> list[str]:
    """The job tags a runner type picks up: the configured ones, else the type's slug."""
    tags = getattr(config.runners.types, runner_type).gitlab.tags
    return list(tags) if tags is not None else [runner_slug(runner_type)]


def dashboard_namespaces(config: OrganizationConfig) -> list[str]:
    """Namespaces the runner dashboard watches (read-only): the runner managers', the job
    namespaces and atticd's. The app reads them and the stack grants exactly these."""
    runners = config.runners
    names = [runners.namespace, runners.job_namespace, runners.dind_namespace]
    return list(dict.fromkeys([*names, config.attic.namespace]))
