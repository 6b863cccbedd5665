"""Reusable cdktf constructs for an Attic cache, GitLab runners and their platform on Kubernetes.

The package root imports nothing heavy: provider classes are imported by the construct modules
that use them, so importing one construct never loads an unrelated provider.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
"""The version of both distributions, ``attic-iac-constructs`` and ``attic-iac``: the one place
it is written (both ``pyproject.toml`` files read it; the application pins the library to it)."""
