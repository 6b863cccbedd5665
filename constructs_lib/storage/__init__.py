"""S3-compatible object storage: external buckets or in-cluster servers."""
