"""S3-compatible object storage: external buckets or in-cluster servers."""

__all__ = [
    "aws_s3_bucket",
    "generated_keys",
    "minio_tenant",
    "s3_credentials_secret",
    "s3_endpoint",
    "seaweedfs",
]
