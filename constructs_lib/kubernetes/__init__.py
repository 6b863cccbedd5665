"""Kubernetes building blocks with secure defaults."""
