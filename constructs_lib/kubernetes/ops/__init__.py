"""Code shared by the scripts that run inside pods, and the synth-time step that ships it.

:mod:`.incluster` is the HTTP and Kubernetes API client of the in-cluster ops scripts
(``constructs_lib/attic/ops/attic_ops.py``, ``constructs_lib/runners/ops/runner_cleanup.py``).
:mod:`.bundle` inlines it into each script when a construct writes the script's ConfigMap, so a
pod runs one standard-library-only file.

Internal: the ``ops`` packages are not part of the public API; they may change in any release.
"""
