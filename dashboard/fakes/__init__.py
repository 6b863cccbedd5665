"""HTTP fakes of GitLab, the Kubernetes API and Prometheus, for the tests and ``--demo``.

They answer the real endpoints with the documented shapes, so code written against them
works against the real services; nothing here is used unless a test or the demo asks.
"""
