"""Scripts that run inside the cluster (Jobs and CronJobs), shipped to pods through ConfigMaps.

Everything here runs on a stock Python image: standard library only, no jsii, no third-party
imports (a test checks this). ``attic_ops`` creates and configures Attic caches over atticd's HTTP
API and writes freshly minted Attic tokens into Kubernetes Secrets.

Internal: the ``ops`` packages are not part of the public API; they may change in any release.
"""
