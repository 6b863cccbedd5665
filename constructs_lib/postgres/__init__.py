"""PostgreSQL through CloudNativePG custom resources."""

__all__ = ["barman_object_store", "cnpg_cluster", "cnpg_database", "database_login"]
