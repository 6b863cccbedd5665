"""What a consumer needs to use a bucket: where it is, how to authenticate, how to get there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from constructs_lib.kubernetes.traffic_policy import Rule

__all__ = ["S3Credentials", "S3Endpoint", "StorageIdentity"]


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Credentials:
    """A Secret in the consumer's namespace holding one access key pair.

    Attributes:
        secret_name: the Secret.
        access_key_id_key: its key holding the access key id. Default ``"access_key_id"``.
        secret_access_key_key: its key holding the secret key. Default ``"secret_access_key"``.
    """

    secret_name: str
    access_key_id_key: str = "access_key_id"
    secret_access_key_key: str = "secret_access_key"


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Endpoint:
    """An S3 API as one consumer sees it.

    Attributes:
        url: API URL the consumer uses; ``None`` means AWS S3's regional endpoint.
        region: S3 region (any value for most S3-compatible stores).
        bucket: the consumer's bucket.
        credentials: the consumer's key pair; ``None`` means workload identity.
        egress: NetworkPolicy rules that let the consumer's pods reach the API.
            Default - none (the consumer must open the way itself).
    """

    url: str | None
    region: str
    bucket: str
    credentials: S3Credentials | None
    egress: Sequence[Rule] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True, slots=True)
class StorageIdentity:
    """One consumer of an in-cluster store: its own key pair, limited to its own bucket.

    Attributes:
        name: identity name in the store (e.g. ``"attic"``).
        bucket: the only bucket it may use.
        secret_namespace: the consumer's namespace, where its credentials Secret goes.
        secret_name: name of that Secret.
    """

    name: str
    bucket: str
    secret_namespace: str
    secret_name: str
