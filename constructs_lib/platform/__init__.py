"""Cluster-scoped operators and their CRDs: applied before any stack that uses the CRDs."""

__all__ = ["barman_cloud_plugin", "cert_manager", "cnpg_operator", "minio_operator"]
