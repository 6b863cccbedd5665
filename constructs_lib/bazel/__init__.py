"""Bazel remote caching: bazel-remote replicas with a local disk cache in front of one S3 bucket.

Each replica keeps its own least-recently-used disk cache and reads through to (and writes
behind to) the shared bucket, so any replica can answer for any blob and replicas can be added
or removed freely.
"""

__all__ = ["bazel_remote"]
