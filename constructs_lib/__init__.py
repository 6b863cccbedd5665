"""Reusable cdktf constructs for an Attic cache, GitLab runners, their dashboard and their
platform on Kubernetes.

Installed as ``attic-iac-constructs``; the import name is ``constructs_lib``. Each construct takes
``(scope, construct_id, props)`` with a frozen, keyword-only props dataclass whose docstring
states every default, and reports every invalid prop at once in one
:class:`~constructs_lib.validation.PropsError`.

**What is public.** A module is public when its package lists it in ``__all__``; in a public
module, the names its own ``__all__`` lists are public. The Terraform addresses a construct
gives its resources for given props are public too. Everything else (modules not listed, names
not listed, the in-cluster ``ops`` scripts) is internal and may change in any release.
CHANGELOG.md states the rules a version number follows.

The package root imports nothing heavy: provider classes are imported by the construct modules
that use them, so importing one construct never loads an unrelated provider. The AWS, Cloudflare
and GitLab providers are extras (``attic-iac-constructs[aws]``, ``[cloudflare]``, ``[gitlab]``),
needed only by :mod:`~constructs_lib.storage.aws_s3_bucket`,
:mod:`~constructs_lib.dns.cloudflare_records`, :mod:`~constructs_lib.runners.runner_token` and
:mod:`~constructs_lib.dashboard.oauth_application`.
"""

__all__ = [
    "__version__",
    "attic",
    "bazel",
    "dashboard",
    "dns",
    "helm",
    "kubernetes",
    "monitoring",
    "platform",
    "postgres",
    "runners",
    "storage",
    "validation",
    "versions",
]

__version__ = "0.1.0"
"""The version of both distributions, ``attic-iac-constructs`` and ``attic-iac``: the one place
it is written (both ``pyproject.toml`` files read it; the application pins the library to it)."""
