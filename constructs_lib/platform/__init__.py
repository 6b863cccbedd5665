"""Cluster-scoped operators and their CRDs: applied before any stack that uses the CRDs."""
