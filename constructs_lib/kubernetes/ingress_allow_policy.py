"""An ingress NetworkPolicy that opens named ports of selected pods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cdktf_cdktf_provider_kubernetes.network_policy_v1 import (
    NetworkPolicyV1,
    NetworkPolicyV1Metadata,
    NetworkPolicyV1Spec,
    NetworkPolicyV1SpecIngress,
    NetworkPolicyV1SpecIngressFrom,
    NetworkPolicyV1SpecIngressFromNamespaceSelector,
    NetworkPolicyV1SpecIngressPorts,
    NetworkPolicyV1SpecPodSelector,
)
from constructs import Construct

from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["IngressAllowPolicy", "IngressAllowPolicyProps", "Source"]

Source = Literal["anywhere", "cluster", "namespace"]
"""Who may connect: pods of the namespace, pods of the cluster, or any address."""


@dataclass(frozen=True, kw_only=True, slots=True)
class IngressAllowPolicyProps:
    """Props of :class:`IngressAllowPolicy`.

    Attributes:
        name: policy name.
        namespace: namespace of the selected pods.
        pod_selector: labels of the pods the policy opens.
        ports: TCP ports to open.
        source: ``"namespace"`` admits pods of the policy's own namespace, ``"cluster"`` pods
            of every namespace, ``"anywhere"`` also non-pod sources, which webhooks need
            because the API server is not a pod. Default ``"cluster"``.
    """

    name: str
    namespace: str
    pod_selector: Mapping[str, str]
    ports: Sequence[int]
    source: Source = "cluster"


class IngressAllowPolicy(Construct):
    """Allow TCP ingress to some ports of some pods, on top of a default-deny policy.

    Creates one ``NetworkPolicy`` (child id ``Default``, so the construct's own address).

    Example:
        ```python
        from constructs_lib.kubernetes.ingress_allow_policy import (
            IngressAllowPolicy,
            IngressAllowPolicyProps,
        )

        IngressAllowPolicy(
            stack,
            "WebhookPolicy",
            IngressAllowPolicyProps(
                name="webhook",
                namespace="cnpg-system",
                pod_selector={"app.kubernetes.io/name": "cloudnative-pg"},
                ports=[9443],
                source="anywhere",  # the API server is not a pod
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: IngressAllowPolicyProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "IngressAllowPolicy",
            [
                check_dns_label("name", props.name),
                "" if props.pod_selector else "pod_selector: must select pods (got no labels)",
                "" if props.ports else "ports: at least one port is required (got none)",
                *(f"ports: {p} is outside 1-65535" for p in props.ports if not 1 <= p <= 65535),
            ],
        )
        sources = None
        if props.source != "anywhere":
            namespace_labels = (
                {"kubernetes.io/metadata.name": props.namespace}
                if props.source == "namespace"
                else None
            )
            sources = [
                NetworkPolicyV1SpecIngressFrom(
                    namespace_selector=NetworkPolicyV1SpecIngressFromNamespaceSelector(
                        match_labels=namespace_labels
                    )
                )
            ]
        NetworkPolicyV1(
            self,
            "Default",  # keeps the wrapper's Terraform address
            metadata=NetworkPolicyV1Metadata(name=props.name, namespace=props.namespace),
            spec=NetworkPolicyV1Spec(
                pod_selector=NetworkPolicyV1SpecPodSelector(match_labels=dict(props.pod_selector)),
                policy_types=["Ingress"],
                ingress=[
                    NetworkPolicyV1SpecIngress(
                        from_=sources,
                        ports=[
                            NetworkPolicyV1SpecIngressPorts(port=str(p), protocol="TCP")
                            for p in props.ports
                        ],
                    )
                ],
            ),
        )
