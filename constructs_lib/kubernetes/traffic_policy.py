"""A NetworkPolicy written as peers and ports, for namespaces that deny by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cdktf_cdktf_provider_kubernetes.network_policy_v1 import NetworkPolicyV1, NetworkPolicyV1Spec
from constructs import Construct

from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["EVERY_NAMESPACE", "Peer", "Rule", "TrafficPolicy", "TrafficPolicyProps"]

EVERY_NAMESPACE = "*"
"""``Peer.namespace`` value meaning any namespace."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Peer:
    """One side of a connection.

    Attributes:
        namespace: namespace of the peer pods; ``None`` is the policy's own namespace,
            :data:`EVERY_NAMESPACE` any namespace. Default ``None``.
        pod_labels: labels of the peer pods; ``None`` is every pod. Default ``None``.
        cidr: an IP block instead of pods (for peers that are not pods, such as the API
            server or an external S3 endpoint). Default ``None``.
        except_cidrs: ranges inside ``cidr`` that stay blocked. Default - none.
    """

    namespace: str | None = None
    pod_labels: Mapping[str, str] | None = None
    cidr: str | None = None
    except_cidrs: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """Traffic allowed to (egress) or from (ingress) some peers on some ports.

    Attributes:
        peers: who; empty means any address. Default - any.
        ports: destination ports; empty means every port. Default - every port.
        protocols: protocols of those ports. Default TCP only.
    """

    peers: Sequence[Peer] = ()
    ports: Sequence[int] = ()
    protocols: Sequence[Literal["TCP", "UDP"]] = ("TCP",)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrafficPolicyProps:
    """Props of :class:`TrafficPolicy`.

    Attributes:
        name: policy name.
        namespace: namespace of the selected pods.
        pod_selector: labels of the pods the policy applies to. Default - every pod.
        ingress: allowed incoming traffic. Default - none (the policy adds no ingress).
        egress: allowed outgoing traffic. Default - none (the policy adds no egress).
    """

    name: str
    namespace: str
    pod_selector: Mapping[str, str] = field(default_factory=dict)
    ingress: Sequence[Rule] = ()
    egress: Sequence[Rule] = ()


class TrafficPolicy(Construct):
    """Allow listed traffic for some pods; a default-deny policy blocks the rest.

    Creates one ``NetworkPolicy`` (child id ``Default``, so the construct's own address) whose
    policy types are the directions that have rules.

    Attributes:
        policy: the NetworkPolicy resource.

    Example:
        ```python
        from constructs_lib.kubernetes.traffic_policy import (
            Peer,
            Rule,
            TrafficPolicy,
            TrafficPolicyProps,
        )

        TrafficPolicy(
            stack,
            "AtticPolicy",
            TrafficPolicyProps(
                name="attic",
                namespace="attic",
                pod_selector={"app.kubernetes.io/name": "attic"},
                ingress=[Rule(peers=[Peer(namespace="traefik")], ports=[8080])],
                egress=[
                    Rule(peers=[Peer(pod_labels={"cnpg.io/cluster": "attic-db"})], ports=[5432])
                ],
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: TrafficPolicyProps) -> None:
        super().__init__(scope, construct_id)
        rules = [*props.ingress, *props.egress]
        raise_if_problems(
            "TrafficPolicy",
            [
                check_dns_label("name", props.name),
                "" if rules else "ingress/egress: give at least one rule (got none)",
                *(
                    f"ports: {port} is outside 1-65535"
                    for rule in rules
                    for port in rule.ports
                    if not 1 <= port <= 65535
                ),
                *(
                    f"peers: {peer} mixes cidr with namespace or pod labels"
                    for rule in rules
                    for peer in rule.peers
                    if peer.cidr and (peer.namespace or peer.pod_labels)
                ),
                *(
                    f"peers: {peer} has except_cidrs without a cidr"
                    for rule in rules
                    for peer in rule.peers
                    if peer.except_cidrs and not peer.cidr
                ),
            ],
        )
        spec: dict[str, Any] = {
            "pod_selector": {"match_labels": dict(props.pod_selector)},
            "policy_types": [
                kind
                for kind, present in (("Ingress", props.ingress), ("Egress", props.egress))
                if present
            ],
        }
        if props.ingress:
            spec["ingress"] = [_rule(rule, "from") for rule in props.ingress]
        if props.egress:
            spec["egress"] = [_rule(rule, "to") for rule in props.egress]
        self.policy = NetworkPolicyV1(
            self,
            "Default",
            metadata={"name": props.name, "namespace": props.namespace},
            spec=to_struct(NetworkPolicyV1Spec, spec),
        )


def _rule(rule: Rule, direction: Literal["from", "to"]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.peers:
        out["from_" if direction == "from" else "to"] = [_peer(p) for p in rule.peers]
    if rule.ports:
        out["ports"] = [
            {"port": str(port), "protocol": protocol}
            for port in rule.ports
            for protocol in rule.protocols
        ]
    return out


def _peer(peer: Peer) -> dict[str, Any]:
    if peer.cidr:
        block: dict[str, Any] = {"cidr": peer.cidr}
        if peer.except_cidrs:
            block["except_"] = list(peer.except_cidrs)
        return {"ip_block": block}
    out: dict[str, Any] = {}
    if peer.namespace == EVERY_NAMESPACE:
        out["namespace_selector"] = {}
    elif peer.namespace is not None:
        out["namespace_selector"] = {
            "match_labels": {"kubernetes.io/metadata.name": peer.namespace}
        }
    out["pod_selector"] = {"match_labels": dict(peer.pod_labels or {})}
    return out
