"""PostgreSQL through CloudNativePG custom resources."""
