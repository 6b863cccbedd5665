"""The Attic binary cache: server config, workloads, signing key, caches and tokens in-cluster."""
