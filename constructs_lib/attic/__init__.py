"""The Attic binary cache: server config, workloads, signing key, caches and tokens in-cluster."""

__all__ = [
    "attic_server",
    "cache_init",
    "cache_warm",
    "ops_pod",
    "pod",
    "signing_key",
    "signing_key_job",
    "token_rotation",
]
