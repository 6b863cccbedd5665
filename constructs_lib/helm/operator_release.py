"""What every construct that installs a chart adds besides its values: the pinned release and
NetworkPolicies opening its pods' ports, all named after the release.

Functions, not a construct: the objects join the caller's scope, so their construct paths and
Terraform addresses are the ones the caller's own resources always had.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.helm.pinned_release import PinnedHelmRelease, PinnedHelmReleaseProps
from constructs_lib.kubernetes.ingress_allow_policy import (
    IngressAllowPolicy,
    IngressAllowPolicyProps,
    Source,
)
from constructs_lib.versions import ChartPin


class ReleaseSettings(Protocol):
    """The props every chart-installing construct has (read-only, as frozen props are)."""

    @property
    def namespace(self) -> str:
        """Existing namespace of the release and its policies."""

    @property
    def release_name(self) -> str:
        """Helm release name, also the first part of each policy's name."""

    @property
    def protect(self) -> bool:
        """Refuse to uninstall (``prevent_destroy``)."""


def add_release(
    scope: Construct,
    settings: ReleaseSettings,
    *,
    chart: ChartPin,
    values: Mapping[str, Any],
    depends_on: Sequence[ITerraformDependable] = (),
) -> PinnedHelmRelease:
    """Add ``chart`` as ``Release``, named, placed and protected as ``settings`` say."""
    return PinnedHelmRelease(
        scope,
        "Release",
        PinnedHelmReleaseProps(
            name=settings.release_name,
            namespace=settings.namespace,
            chart=chart,
            values=values,
            protect=settings.protect,
            depends_on=depends_on,
        ),
    )


def open_release_port(
    scope: Construct,
    settings: ReleaseSettings,
    purpose: str,
    *,
    pod_selector: Mapping[str, str],
    port: int,
    source: Source = "cluster",
) -> IngressAllowPolicy:
    """Add ``<Purpose>Ingress``: the policy ``<release>-<purpose>`` opening ``port`` of the
    selected pods to ``source`` (see :class:`IngressAllowPolicyProps`)."""
    return IngressAllowPolicy(
        scope,
        f"{purpose.capitalize()}Ingress",
        IngressAllowPolicyProps(
            name=f"{settings.release_name}-{purpose}",
            namespace=settings.namespace,
            pod_selector=pod_selector,
            ports=[port],
            source=source,
        ),
    )
