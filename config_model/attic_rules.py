"""Rules of the ``attic:`` section that span several keys (storage, backups, caches, tokens,
warming, Bazel, DNS), as ``(path, message, value)`` problems."""

from __future__ import annotations

from config_model.attic import Attic, token_can_push, token_secret
from config_model.attic_operations import MIN_ROTATE_WINDOW_SECONDS, TOKEN_TYPE_DEFAULTS, AtticToken
from config_model.base import Problems
from config_model.organization import OrganizationConfig
from config_model.wiring import backup_store_in_cluster


def attic_problems(config: OrganizationConfig) -> Problems:
    """Storage, backup, recovery and replica rules, then the operations' (caches, tokens, ...)."""
    attic = config.attic
    storage = attic.storage
    database = attic.database
    problems: Problems = []
    in_cluster = storage.backend != "s3"
    if (
        in_cluster
        and storage.clients_outside_cluster
        and storage.public_endpoint is None
        and not attic.ingress.enabled
    ):
        problems.append(
            (
                ("attic", "storage", "clients_outside_cluster"),
                f"with backend '{storage.backend}' Nix clients outside the cluster are "
                "redirected to the storage endpoint for single-chunk NARs, which needs a public "
                "endpoint served by the ingress, and attic.ingress.enabled is false; allowed: "
                "false (in-cluster clients only), enable the ingress, or use backend 's3'",
                True,
            )
        )
    if storage.public_endpoint is not None and not in_cluster:
        problems.append(
            (
                ("attic", "storage", "public_endpoint"),
                "only for in-cluster backends; with backend 's3' set storage.s3.endpoint",
                storage.public_endpoint,
            )
        )
    if storage.public_endpoint is not None and in_cluster and not attic.ingress.enabled:
        problems.append(
            (
                ("attic", "storage", "public_endpoint"),
                "is served through the ingress, which is disabled (attic.ingress.enabled)",
                storage.public_endpoint,
            )
        )
    if storage.backend == "s3" and storage.s3.create_bucket and storage.s3.endpoint:
        problems.append(
            (
                ("attic", "storage", "s3", "create_bucket"),
                "creates AWS S3 buckets; with a custom endpoint create the bucket with your "
                "provider and set create_bucket: false",
                True,
            )
        )
    if database.backup.enabled and config.platform.barman_cloud_plugin == "none":
        problems.append(
            (
                ("attic", "database", "backup", "enabled"),
                "backups need the Barman Cloud plugin (platform.barman_cloud_plugin is "
                "'none'); allowed: false, or install the plugin",
                True,
            )
        )
    recovery = database.recovery
    if recovery is not None:
        if recovery.source_cluster == database.cluster_name:
            problems.append(
                (
                    ("attic", "database", "recovery", "source_cluster"),
                    "must differ from attic.database.cluster_name: the restored cluster "
                    "archives into its own folder, never over its source's",
                    recovery.source_cluster,
                )
            )
        if config.platform.barman_cloud_plugin == "none":
            problems.append(
                (
                    ("attic", "database", "recovery"),
                    "restores from Barman Cloud backups, so platform.barman_cloud_plugin "
                    "must not be 'none'",
                    recovery.source_cluster,
                )
            )
    problems += _backup_problems(config)
    problems += _operations_problems(config)
    problems += _rate_limit_problems(attic)
    if attic.api.min_replicas > attic.api.max_replicas:
        problems.append(
            (
                ("attic", "api", "min_replicas"),
                f"must not exceed attic.api.max_replicas ({attic.api.max_replicas})",
                attic.api.min_replicas,
            )
        )
    return problems


def _backup_problems(config: OrganizationConfig) -> Problems:
    """Backup credentials name exactly what they use; SeaweedFS's file index cannot live in the
    database whose backups that SeaweedFS stores."""
    attic = config.attic
    problems: Problems = []
    s3 = attic.database.backup.s3
    path = ("attic", "database", "backup", "s3")
    if s3 is not None:
        if s3.credentials == "secret" and s3.secret_name is None:
            problems.append(((*path, "secret_name"), "is required with credentials 'secret'", None))
        if s3.credentials != "secret" and s3.secret_name is not None:
            problems.append(
                (
                    (*path, "secret_name"),
                    f"is only read with credentials 'secret' (credentials is '{s3.credentials}')",
                    s3.secret_name,
                )
            )
        if s3.credentials != "workload_identity" and s3.service_account_annotations:
            problems.append(
                (
                    (*path, "service_account_annotations"),
                    "are only set with credentials 'workload_identity'",
                    s3.service_account_annotations,
                )
            )
    storage = attic.storage
    if (
        storage.backend == "seaweedfs"
        and storage.seaweedfs.filer_store == "postgres"
        and backup_store_in_cluster(config)
    ):
        problems.append(
            (
                ("attic", "storage", "seaweedfs", "filer_store"),
                "'postgres' puts SeaweedFS's file index in the database whose backups this "
                "SeaweedFS stores: a restore would need the index it restores; allowed: auto, "
                "leveldb, or back up off the cluster (attic.database.backup.s3)",
                storage.seaweedfs.filer_store,
            )
        )
    return problems


def _rate_limit_problems(attic: Attic) -> Problems:
    """The client-IP source needs exactly its own settings; nginx has neither per-Ingress
    client-IP choice nor an absolute burst."""
    limit = attic.ingress.rate_limit
    if limit is None or not attic.ingress.enabled:
        return []
    path = ("attic", "ingress", "rate_limit")
    client = limit.client_ip
    problems: Problems = []
    given = {
        "depth": client.depth is not None,
        "excluded_ips": bool(client.excluded_ips),
        "header": client.header is not None,
    }
    wanted = {
        "remote_address": (),
        "forwarded_for": ("depth", "excluded_ips"),
        "header": ("header",),
    }[client.source]
    for key, is_set in given.items():
        if is_set and key not in wanted:
            problems.append(
                (
                    (*path, "client_ip", key),
                    f"is not used with source '{client.source}'",
                    getattr(client, key),
                )
            )
    if client.source == "forwarded_for" and given["depth"] == given["excluded_ips"]:
        problems.append(
            (
                (*path, "client_ip", "source"),
                "forwarded_for needs exactly one of depth or excluded_ips (Traefik lets depth "
                "override excluded_ips)",
                client.source,
            )
        )
    if client.source == "header" and not given["header"]:
        problems.append(((*path, "client_ip", "header"), "is required with source 'header'", None))
    if attic.ingress.controller == "nginx":
        if client.source != "remote_address":
            problems.append(
                (
                    (*path, "client_ip", "source"),
                    "ingress-nginx limits by the address its own real-IP settings give "
                    "(use-forwarded-headers, use-proxy-protocol); allowed: remote_address",
                    client.source,
                )
            )
        if limit.burst % limit.average:
            problems.append(
                (
                    (*path, "burst"),
                    f"must be a multiple of average ({limit.average}): ingress-nginx allows "
                    "limit-rps x limit-burst-multiplier",
                    limit.burst,
                )
            )
    return problems


def _operations_problems(config: OrganizationConfig) -> Problems:
    """Rules for declared caches, tokens, cache warming, the Bazel cache and DNS."""
    return [
        *_cache_problems(config.attic),
        *_token_problems(config.attic),
        *_warming_problems(config.attic),
        *_bazel_dns_problems(config.attic),
    ]


_RESERVED_SECRETS = frozenset(
    {
        "attic-token-signing",
        "attic-s3",
        "attic-pg-backup-s3",
        "attic-bazel-s3",
        "attic-tls",
        "attic-s3-tls",
    }
)


def _cache_problems(attic: Attic) -> Problems:
    problems: Problems = []
    seen: set[str] = set()
    for index, cache in enumerate(attic.caches):
        if cache.name in seen:
            problems.append(
                (("attic", "caches", str(index), "name"), "duplicate cache", cache.name)
            )
        seen.add(cache.name)
    return problems


def _token_problems(attic: Attic) -> Problems:
    problems: Problems = []
    names: set[str] = set()
    secrets: set[tuple[str, str]] = set()
    for index, token in enumerate(attic.tokens):
        path = ("attic", "tokens", str(index))
        namespace, secret = token_secret(attic, token)
        if token.name in names:
            problems.append(((*path, "name"), "duplicate token name", token.name))
        names.add(token.name)
        if (namespace, secret) in secrets:
            problems.append(
                ((*path, "secret_name"), f"another token already uses {namespace}/{secret}", secret)
            )
        secrets.add((namespace, secret))
        if namespace == attic.namespace and (
            secret in _RESERVED_SECRETS or secret.startswith(f"{attic.database.cluster_name}-")
        ):
            problems.append(
                (
                    (*path, "secret_name"),
                    "is one of the stack's own Secrets; choose another",
                    secret,
                )
            )
        problems += _grant_problems(token, path)
    return problems


def _grant_problems(token: AtticToken, path: tuple[str, ...]) -> Problems:
    problems: Problems = []
    granted = token.permissions.model_dump()
    if not any(granted.values()):
        problems.append(
            ((*path, "permissions"), "grants nothing; list cache patterns per permission", {})
        )
    extra = sorted(k for k, v in granted.items() if v and k != "pull")
    if token.type == "read_only" and extra:
        problems.append(
            (
                (*path, "permissions"),
                f"a read_only token may only pull (got {', '.join(extra)}); "
                "allowed: type ci or service for write access",
                extra,
            )
        )
    validity, window = token.validity_seconds(), token.rotate_before_seconds()
    shown = token.rotate_before or TOKEN_TYPE_DEFAULTS[token.type][1]
    if window >= validity:
        problems.append(
            (
                (*path, "rotate_before"),
                "must be shorter than the validity, or every hourly run re-mints",
                shown,
            )
        )
    elif window < MIN_ROTATE_WINDOW_SECONDS:
        problems.append(
            (
                (*path, "rotate_before"),
                "must leave at least 2 hours (the rotation CronJob runs hourly)",
                shown,
            )
        )
    return problems


def _warming_problems(attic: Attic) -> Problems:
    warming = attic.cache_warming
    if not warming.enabled:
        return []
    problems: Problems = []
    path = ("attic", "cache_warming")
    declared = sorted(c.name for c in attic.caches)
    if not warming.installables:
        problems.append(((*path, "installables"), "is empty; list flake installables", []))
    if warming.cache not in declared:
        problems.append(
            (
                (*path, "cache"),
                f"is not declared in attic.caches (declared: {', '.join(declared) or 'none'})",
                warming.cache,
            )
        )
    token = next((t for t in attic.tokens if t.name == warming.token), None)
    if token is None:
        have = ", ".join(sorted(t.name for t in attic.tokens)) or "none"
        return [
            *problems,
            ((*path, "token"), f"names no attic.tokens entry (have: {have})", warming.token),
        ]
    if token_secret(attic, token)[0] != attic.namespace:
        problems.append(
            (
                (*path, "token"),
                f"the warming job runs in {attic.namespace}, so its token's Secret must be "
                "there too (leave that token's namespace unset)",
                warming.token,
            )
        )
    if not token_can_push(token, warming.cache):
        problems.append(
            (
                (*path, "token"),
                f"token '{token.name}' cannot pull and push '{warming.cache}' (atticd uses "
                "the exact entry, else the first matching wildcard)",
                warming.token,
            )
        )
    return problems


def _bazel_dns_problems(attic: Attic) -> Problems:
    problems: Problems = []
    bazel = attic.bazel_cache
    if bazel.enabled and bazel.min_replicas > bazel.max_replicas:
        problems.append(
            (
                ("attic", "bazel_cache", "min_replicas"),
                f"must not exceed attic.bazel_cache.max_replicas ({bazel.max_replicas})",
                bazel.min_replicas,
            )
        )
    dns = attic.dns
    if dns.provider != "cloudflare":
        return problems
    for key in ("zone_id", "target"):
        if getattr(dns, key) is None:
            problems.append((("attic", "dns", key), "is required with provider 'cloudflare'", None))
    if dns.proxied:
        problems.append(
            (
                ("attic", "dns", "proxied"),
                "Cloudflare's proxy caps request bodies at 100 MB and NAR uploads are single "
                "requests; allowed: false",
                True,
            )
        )
    if not attic.ingress.enabled:
        problems.append(
            (
                ("attic", "dns", "provider"),
                "publishes the ingress host, and attic.ingress.enabled is false",
                dns.provider,
            )
        )
    return problems
