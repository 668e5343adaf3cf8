"""A small evaluator of Kubernetes NetworkPolicy ingress semantics (networking.k8s.io/v1),
written from the API reference, for tests that ask "may this source reach this pod on this
port?" of rendered policies.

- A pod is isolated for ingress iff some policy in its namespace selects it and lists
  `Ingress` in policyTypes; a pod no such policy selects accepts everything.
- An isolated pod accepts a connection iff some policy selecting it has an ingress rule whose
  `from` matches the source (empty/missing = every source) and whose `ports` match the
  port (empty/missing = every port); rules and policies are additive.
- A peer: `podSelector` alone = pods of the policy's namespace; `namespaceSelector` alone =
  every pod of the matching namespaces; both = matching pods in matching namespaces;
  `ipBlock` = source addresses in `cidr` and not in `except`. Namespaces carry
  `kubernetes.io/metadata.name`. A source with no namespace is outside the cluster (a load
  balancer's client): only ipBlock peers can match it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; {} selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for req in selector.get("matchExpressions") or []:
        key, op, values = req["key"], req["operator"], req.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown operator {op}")
    return True


def _peer_matches(peer: dict, policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        if source.ip is None:
            return False
        address = ipaddress.ip_address(source.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except") or []
        )
    if not source.namespace:
        return False
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None:
        namespace_ok = source.namespace == policy_namespace
    else:
        namespace_ok = selects(namespaces, source.namespace_labels)
    pod_ok = pods is None or selects(pods, source.labels)
    return namespace_ok and pod_ok


def _port_matches(ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        if "port" not in item:
            return True
        if not isinstance(item["port"], int):
            raise ValueError(f"named ports are not evaluated: {item['port']}")
        if item["port"] <= port <= item.get("endPort", item["port"]):
            return True
    return False


def _selecting(policies: list[dict], dest: Pod) -> list[dict]:
    return [
        p
        for p in policies
        if p["kind"] == "NetworkPolicy"
        and p["metadata"]["namespace"] == dest.namespace
        and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])
        and selects(p["spec"].get("podSelector"), dest.labels)
    ]


def ingress_allowed(policies: list[dict], source: Pod, dest: Pod, port: int, protocol: str = "TCP") -> bool:
    selecting = _selecting(policies, dest)
    if not selecting:
        return True  # not isolated
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            sources = rule.get("from")
            source_ok = not sources or any(
                _peer_matches(peer, policy["metadata"]["namespace"], source) for peer in sources
            )
            if source_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False
