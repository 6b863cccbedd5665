"""A custom resource through ``kubernetes_manifest``, built as data and checked against its CRD
by the conformance tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes.manifest import (
    Manifest,
    ManifestTimeouts,
    ManifestWait,
    ManifestWaitCondition,
)
from constructs import Construct

from constructs_lib.validation import raise_if_problems

__all__ = ["CustomResource", "CustomResourceProps"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CustomResourceProps:
    """Props of :class:`CustomResource`.

    Attributes:
        manifest: the whole object (``apiVersion``, ``kind``, ``metadata`` with name and
            namespace, ``spec``), as Kubernetes spells it.
        ready_condition: a status condition type (e.g. ``"Ready"``) to wait for, so resources
            that depend on this one start only when it works. Default - no wait.
        ready_fields: status fields to wait for instead, path to value (e.g.
            ``{"status.applied": "true"}``) for resources without conditions. Default - none.
        timeout: how long create and update may take (Go duration). Default ``"10m"``.
        protect: set ``prevent_destroy``. Default ``False``.
        depends_on: resources that must exist first. Default - none.
    """

    manifest: Mapping[str, Any]
    ready_condition: str | None = None
    ready_fields: Mapping[str, str] | None = None
    timeout: str = "10m"
    protect: bool = False
    depends_on: Sequence[ITerraformDependable] = ()


class CustomResource(Construct):
    """One custom resource; its CRD must already be installed when OpenTofu plans.

    Creates one ``kubernetes_manifest`` (the construct's own address, child id ``Default``) that
    waits for ``ready_condition`` or ``ready_fields`` when given.

    Attributes:
        name: ``metadata.name`` of the object.
        resource: the ``kubernetes_manifest`` resource, for ``depends_on``.

    Example:
        ```python
        from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps

        issuer = CustomResource(
            stack,
            "Issuer",
            CustomResourceProps(
                manifest={
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "ClusterIssuer",
                    "metadata": {"name": "selfsigned"},
                    "spec": {"selfSigned": {}},
                },
                ready_condition="Ready",
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: CustomResourceProps) -> None:
        super().__init__(scope, construct_id)
        metadata = props.manifest.get("metadata", {})
        raise_if_problems(
            "CustomResource",
            [
                *(
                    f"manifest.{key}: required"
                    for key in ("apiVersion", "kind")
                    if not props.manifest.get(key)
                ),
                "" if metadata.get("name") else "manifest.metadata.name: required",
            ],
        )
        self.name: str = metadata["name"]
        self.resource = Manifest(
            self,
            "Default",
            manifest=dict(props.manifest),
            wait=ManifestWait(
                condition=[ManifestWaitCondition(type=props.ready_condition, status="True")]
                if props.ready_condition
                else None,
                fields=dict(props.ready_fields) if props.ready_fields else None,
            )
            if props.ready_condition or props.ready_fields
            else None,
            timeouts=ManifestTimeouts(create=props.timeout, update=props.timeout),
            depends_on=list(props.depends_on) or None,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.protect else None,
        )
