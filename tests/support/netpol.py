"""Kubernetes NetworkPolicy semantics, to ask whether one connection is allowed.

Follows the API's documented rules (networking.k8s.io/v1 NetworkPolicy; "Network Policies" in
the Kubernetes docs):

* a pod is isolated for a direction when some policy in its namespace selects it and lists that
  direction in ``policyTypes`` (missing ``policyTypes`` means Ingress, plus Egress when the
  policy has egress rules); an isolated pod accepts only what some such policy allows, the
  policies' rules being added up;
* a connection needs both ends: egress allowed at the source, ingress at the destination;
* a rule with no peers matches every peer, one with no ports every port; a peer is a
  ``podSelector`` (pods of the policy's namespace), a ``namespaceSelector`` (every pod of the
  selected namespaces), both (those pods of those namespaces), or an ``ipBlock`` (addresses in
  ``cidr`` and in none of ``except``);
* selectors: ``matchLabels`` and ``matchExpressions`` (In, NotIn, Exists, DoesNotExist); an
  empty selector selects everything. Namespaces carry ``kubernetes.io/metadata.name``.

Ports are the destination pod's own (container) ports: after kube-proxy's DNAT a Service port
is no longer visible. ipBlock peers are matched against pod addresses too, as most plugins do
(the API leaves it to the implementation). Anything this module does not model (named ports,
SCTP, unknown fields) raises instead of being guessed.

Policies come in the API's camelCase form; :func:`from_terraform` converts the kubernetes
provider's ``kubernetes_network_policy_v1`` blocks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"
_TERRAFORM_KEYS = {
    "pod_selector": "podSelector",
    "namespace_selector": "namespaceSelector",
    "ip_block": "ipBlock",
    "match_labels": "matchLabels",
    "match_expressions": "matchExpressions",
    "policy_types": "policyTypes",
    "end_port": "endPort",
    "except_": "except",
}


@dataclass(frozen=True)
class Pod:
    """A pod: where it runs, its labels, its address."""

    namespace: str
    labels: Mapping[str, str]
    ip: str
    name: str = ""

    def __str__(self) -> str:
        return self.name or f"{self.namespace}/{dict(self.labels)}"


@dataclass(frozen=True)
class Address:
    """Something that is not a pod (a load balancer, an API outside the cluster)."""

    ip: str
    name: str = ""

    def __str__(self) -> str:
        return self.name or self.ip


Endpoint = Pod | Address


@dataclass(frozen=True)
class Cluster:
    """The NetworkPolicies in force and the namespaces' labels."""

    policies: Sequence[Mapping[str, Any]]
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def labels_of(self, namespace: str) -> dict[str, str]:
        return {**self.namespace_labels.get(namespace, {}), NAME_LABEL: namespace}

    def denial(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> str | None:
        """Why ``src`` may not open ``dst:port``, or None when it may."""
        if isinstance(src, Pod):
            why = self._side(src, "Egress", dst, port, protocol)
            if why:
                return f"{src} -> {dst}:{port}: {why}"
        if isinstance(dst, Pod):
            why = self._side(dst, "Ingress", src, port, protocol)
            if why:
                return f"{src} -> {dst}:{port}: {why}"
        return None

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self.denial(src, dst, port, protocol) is None

    def _side(self, pod: Pod, direction: str, peer: Endpoint, port: int, protocol: str) -> str:
        isolating = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and direction in _policy_types(p)
            and selects(p["spec"].get("podSelector"), pod.labels)
        ]
        if not isolating:
            return ""
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in isolating:
            for rule in policy["spec"].get(key) or []:
                _known(rule, {peers_key, "ports"}, f"{key} rule")
                if not _port_matches(rule.get("ports"), port, protocol):
                    continue
                peers = rule.get(peers_key) or []
                if not peers or any(
                    self._peer_matches(item, policy["metadata"]["namespace"], peer)
                    for item in peers
                ):
                    return ""
        names = ", ".join(p["metadata"]["name"] for p in isolating)
        return f"{direction.lower()} of {pod} is limited by {names} and none of them allows it"

    def _peer_matches(self, item: Mapping[str, Any], namespace: str, peer: Endpoint) -> bool:
        _known(item, {"podSelector", "namespaceSelector", "ipBlock"}, "peer")
        if "ipBlock" in item:
            block = item["ipBlock"]
            _known(block, {"cidr", "except"}, "ipBlock")
            address = ipaddress.ip_address(peer.ip)
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(cidr) for cidr in block.get("except") or []
            )
        if not isinstance(peer, Pod):
            return False
        if "namespaceSelector" in item:
            if not selects(item["namespaceSelector"], self.labels_of(peer.namespace)):
                return False
        elif peer.namespace != namespace:
            return False
        return "podSelector" not in item or selects(item["podSelector"], peer.labels)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector selects these labels (an absent or empty one selects all)."""
    if not selector:
        return True
    _known(selector, {"matchLabels", "matchExpressions"}, "selector")
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator)
        if ok is None:
            raise ValueError(f"selector operator {operator!r} is not modelled")
        if not ok:
            return False
    return True


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    _known(spec, {"podSelector", "policyTypes", "ingress", "egress"}, "spec")
    types = spec.get("policyTypes")
    if types:
        return list(types)
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    entries = list(ports or [])
    if not entries:
        return True
    for entry in entries:
        _known(entry, {"port", "protocol", "endPort"}, "port")
        if entry.get("protocol", "TCP") not in ("TCP", "UDP"):
            raise ValueError(f"protocol {entry['protocol']!r} is not modelled")
        if entry.get("protocol", "TCP") != protocol:
            continue
        if entry.get("port") is None:
            return True
        value = entry["port"]
        if isinstance(value, str) and not value.isdigit():
            raise ValueError(f"named port {value!r} is not modelled")
        low = int(value)
        high = int(entry.get("endPort") or low)
        if low <= port <= high:
            return True
    return False


def _known(table: Mapping[str, Any], keys: set[str], what: str) -> None:
    unknown = set(table) - keys
    if unknown:
        raise ValueError(f"{what}: {sorted(unknown)} not modelled")


def from_terraform(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A ``kubernetes_network_policy_v1`` resource block as a NetworkPolicy object."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {_TERRAFORM_KEYS.get(k, k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    metadata = resource["metadata"]
    return {
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": convert(resource["spec"]),
    }
