"""A Helm release of a pinned chart whose values are rendered by a YAML library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_helm.release import Release
from constructs import Construct

from constructs_lib.validation import check_dns_label, raise_if_problems
from constructs_lib.versions import ChartPin

__all__ = ["PinnedHelmRelease", "PinnedHelmReleaseProps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PinnedHelmReleaseProps:
    """Props of :class:`PinnedHelmRelease`.

    Attributes:
        name: Helm release name.
        namespace: namespace the release is installed in; it must already exist (we create
            namespaces ourselves so they carry Pod Security labels).
        chart: the pinned chart, from :mod:`constructs_lib.versions`.
        values: chart values as Python data; never put a secret here (they land in the plan).
            Default - the chart's own defaults.
        timeout_seconds: how long Helm waits for resources to become ready. Default 600.
        protect: set ``prevent_destroy`` so OpenTofu refuses to uninstall it. Default ``False``.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    chart: ChartPin
    values: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 600
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class PinnedHelmRelease(Construct):
    """Install a pinned chart atomically: a failed upgrade rolls back instead of half-applying.

    Creates one ``helm_release`` (child id ``Default``, so the construct's own address) with the
    values rendered as one YAML document, ``atomic``, ``wait`` and five revisions of history.

    Attributes:
        release: the ``helm_release`` resource, for ``depends_on``.

    Example:
        ```python
        from constructs_lib.helm.pinned_release import PinnedHelmRelease, PinnedHelmReleaseProps
        from constructs_lib.versions import ChartPin

        PinnedHelmRelease(
            stack,
            "Podinfo",
            PinnedHelmReleaseProps(
                name="podinfo",
                namespace="demo",
                chart=ChartPin(
                    repository="https://stefanprodan.github.io/podinfo",
                    chart="podinfo",
                    version="6.9.2",
                    app_version="6.9.2",
                ),
                values={"replicaCount": 2},
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: PinnedHelmReleaseProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "PinnedHelmRelease",
            [
                check_dns_label("name", props.name),
                ""
                if props.timeout_seconds > 0
                else f"timeout_seconds: must be positive (got {props.timeout_seconds})",
            ],
        )
        values = dict(props.values)
        self.release = Release(
            self,
            "Default",  # keeps the wrapper's Terraform address
            name=props.name,
            namespace=props.namespace,
            repository=props.chart.repository,
            chart=props.chart.chart,
            version=props.chart.version,
            values=[yaml.safe_dump(values, sort_keys=True)] if values else None,
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            timeout=props.timeout_seconds,
            max_history=5,
            depends_on=list(props.depends_on) or None,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.protect else None,
        )
