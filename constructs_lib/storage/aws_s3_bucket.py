"""An AWS S3 bucket fit for cache data or backups.

This is the only module that imports the (large, slow) AWS provider; stacks import it only when
the config asks for bucket creation.

It needs the ``aws`` extra: ``pip install 'attic-iac-constructs[aws]'``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import raise_if_problems

__all__ = ["AwsS3Bucket", "AwsS3BucketProps"]

try:
    from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
    from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
        S3BucketLifecycleConfiguration,
        S3BucketLifecycleConfigurationRule,
    )
    from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
    from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import (
        S3BucketPublicAccessBlock,
    )
    from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
        S3BucketServerSideEncryptionConfigurationA,
        S3BucketServerSideEncryptionConfigurationRuleA,
    )
    from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
except ModuleNotFoundError as missing:  # the optional provider is not installed
    raise ModuleNotFoundError(
        f"{__name__} needs the AWS provider ({missing.name}): "
        "pip install 'attic-iac-constructs[aws]'",
        name=missing.name,
    ) from missing


@dataclass(frozen=True, kw_only=True, slots=True)
class AwsS3BucketProps:
    """Props of :class:`AwsS3Bucket`.

    Attributes:
        name: globally unique bucket name.
        noncurrent_days: days a deleted or overwritten object version is kept (versioning
            lets you undo a bad GC or a wrong delete within that window). Default 30.
        abort_multipart_days: days after which unfinished multipart uploads are removed.
            Default 7.
        kms_key_arn: customer-managed KMS key. Default ``None``: the account's AWS-managed
            ``aws/s3`` KMS key.
        protect: ``prevent_destroy``. Default ``False``.
    """

    name: str
    noncurrent_days: int = 30
    abort_multipart_days: int = 7
    kms_key_arn: str | None = None
    protect: bool = False


class AwsS3Bucket(Construct):
    """Private, versioned, encrypted bucket that OpenTofu never empties (``force_destroy``
    off).

    Creates the bucket (child id ``Default``, so the construct's own address) with ownership
    controls (``Ownership``), a public access block (``PublicAccessBlock``), versioning
    (``Versioning``), KMS encryption (``Encryption``) and a lifecycle rule (``Lifecycle``).
    Needs the ``aws`` extra and an AWS provider in the stack.

    Attributes:
        bucket: the ``aws_s3_bucket`` resource.

    Example:
        ```python
        from constructs_lib.storage.aws_s3_bucket import AwsS3Bucket, AwsS3BucketProps

        AwsS3Bucket(stack, "CacheBucket", AwsS3BucketProps(name="acme-attic-cache", protect=True))
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AwsS3BucketProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "AwsS3Bucket",
            [
                f"{prop}: must be >= 1 (got {getattr(props, prop)})"
                for prop in ("noncurrent_days", "abort_multipart_days")
                if getattr(props, prop) < 1
            ],
        )
        self.bucket = S3Bucket(
            self,
            "Default",
            bucket=props.name,
            force_destroy=False,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.protect else None,
        )
        bucket_id = self.bucket.id
        S3BucketOwnershipControls(
            self,
            "Ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
        )
        S3BucketPublicAccessBlock(
            self,
            "PublicAccessBlock",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketVersioningA(
            self,
            "Versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
        )
        default = {"sse_algorithm": "aws:kms"}
        if props.kms_key_arn:
            default["kms_master_key_id"] = props.kms_key_arn
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "Encryption",
            bucket=bucket_id,
            rule=[
                to_struct(
                    S3BucketServerSideEncryptionConfigurationRuleA,
                    {
                        "apply_server_side_encryption_by_default": default,
                        "bucket_key_enabled": True,  # fewer KMS calls, lower cost
                    },
                )
            ],
        )
        S3BucketLifecycleConfiguration(
            self,
            "Lifecycle",
            bucket=bucket_id,
            rule=[
                to_struct(
                    S3BucketLifecycleConfigurationRule,
                    {
                        "id": "expire-noncurrent-and-abandoned-uploads",
                        "status": "Enabled",
                        "filter": [{}],
                        "noncurrent_version_expiration": [
                            {"noncurrent_days": props.noncurrent_days}
                        ],
                        "abort_incomplete_multipart_upload": [
                            {"days_after_initiation": props.abort_multipart_days}
                        ],
                    },
                )
            ],
        )
