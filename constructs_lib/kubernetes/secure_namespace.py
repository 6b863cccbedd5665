"""A namespace that enforces a Pod Security Standard and denies unlisted ingress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.network_policy_v1 import (
    NetworkPolicyV1,
    NetworkPolicyV1Metadata,
    NetworkPolicyV1Spec,
    NetworkPolicyV1SpecPodSelector,
)
from constructs import Construct

from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["PodSecurityLevel", "SecureNamespace", "SecureNamespaceProps"]

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
"""A Pod Security Standard level."""
_LEVELS = ("restricted", "baseline", "privileged")


@dataclass(frozen=True, kw_only=True, slots=True)
class SecureNamespaceProps:
    """Props of :class:`SecureNamespace`.

    Attributes:
        name: the namespace name (DNS-1123 label).
        pod_security: Pod Security Standard enforced, audited and warned on.
            Default ``"restricted"``; lower it only for workloads that need it (dind).
        deny_ingress: create a ``default-deny-ingress`` NetworkPolicy selecting every pod, so
            only traffic that another policy allows gets in. Default ``True``.
        deny_egress: also deny every outgoing connection except DNS (port 53), so pods reach
            only what other policies allow. Default ``False``: operators must reach the API
            server, whose address is cluster-specific.
        labels: extra namespace labels. Default - none.
        protect: set ``prevent_destroy``; deleting a namespace deletes everything in it.
            Default ``False``.
    """

    name: str
    pod_security: PodSecurityLevel = "restricted"
    deny_ingress: bool = True
    deny_egress: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class SecureNamespace(Construct):
    """Namespace with Pod Security admission labels and a default-deny ingress policy.

    Creates the namespace (child id ``Default``, so the construct's own address), labelled to
    enforce, audit and warn at ``pod_security``, and NetworkPolicies ``default-deny-ingress``
    (``DenyIngress``) and ``default-deny-egress`` (``DenyEgress``) as the props ask.

    Attributes:
        namespace: the namespace resource.
        name: the namespace name as a reference, so whatever uses it waits for the namespace.
        policies: the default-deny policies, for ``depends_on`` of whatever starts pods here.

    Example:
        ```python
        from constructs_lib.kubernetes.secure_namespace import SecureNamespace, SecureNamespaceProps

        namespace = SecureNamespace(stack, "Namespace", SecureNamespaceProps(name="attic"))
        namespace.name  # "${kubernetes_namespace_v1.Namespace.metadata[0].name}"
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: SecureNamespaceProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "SecureNamespace",
            [
                check_dns_label("name", props.name),
                ""
                if props.pod_security in _LEVELS
                else f"pod_security: {props.pod_security!r} is not one of {', '.join(_LEVELS)}",
            ],
        )
        labels = {
            **props.labels,
            "app.kubernetes.io/managed-by": "attic-iac",
            "pod-security.kubernetes.io/enforce": props.pod_security,
            "pod-security.kubernetes.io/audit": props.pod_security,
            "pod-security.kubernetes.io/warn": props.pod_security,
        }
        self.namespace = NamespaceV1(
            self,
            "Default",  # keeps the wrapper's Terraform address
            metadata=NamespaceV1Metadata(name=props.name, labels=labels),
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.protect else None,
        )
        # A reference, not the literal: whatever uses the name waits for the namespace.
        self.name: str = self.namespace.metadata.name
        # The default-deny policies, for depends_on of whatever starts pods here.
        self.policies: list[NetworkPolicyV1] = []
        if props.deny_ingress:
            deny_in = NetworkPolicyV1(
                self,
                "DenyIngress",
                metadata=NetworkPolicyV1Metadata(name="default-deny-ingress", namespace=self.name),
                spec=NetworkPolicyV1Spec(
                    pod_selector=NetworkPolicyV1SpecPodSelector(),
                    policy_types=["Ingress"],
                ),
            )
            self.policies.append(deny_in)
        if props.deny_egress:
            # Egress only to port 53: every pod resolves names, wherever the resolver runs
            # (kube-dns pods or a node-local cache on a link-local address).
            deny_out = NetworkPolicyV1(
                self,
                "DenyEgress",
                metadata=NetworkPolicyV1Metadata(name="default-deny-egress", namespace=self.name),
                spec=to_struct(
                    NetworkPolicyV1Spec,
                    {
                        "pod_selector": {},
                        "policy_types": ["Egress"],
                        "egress": [
                            {
                                "ports": [
                                    {"port": "53", "protocol": "UDP"},
                                    {"port": "53", "protocol": "TCP"},
                                ]
                            }
                        ],
                    },
                ),
            )
            self.policies.append(deny_out)
