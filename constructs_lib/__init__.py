"""Reusable cdktf constructs for an Attic cache, GitLab runners and their platform on Kubernetes.

The package root imports nothing heavy: provider classes are imported by the construct modules
that use them, so importing one construct never loads an unrelated provider.
"""
