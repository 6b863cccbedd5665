"""Scripts that run inside the cluster: the runner cleanup (``runner_cleanup``).

Internal: the ``ops`` packages are not part of the public API; they may change in any release.
"""
