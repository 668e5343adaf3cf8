"""Where platform pods run: on the tainted system node group, never on GPU capacity."""

from __future__ import annotations

from config.names import CRITICAL_ADDONS_TAINT, SYSTEM_NODE_LABEL

# Helm-values shaped (plain dicts): charts take them verbatim as tolerations / affinity.
SYSTEM_TOLERATIONS: list[dict] = [
    {"key": CRITICAL_ADDONS_TAINT, "operator": "Exists", "effect": "NoSchedule"}
]


def system_node_affinity() -> dict:
    """Required node affinity for the system node group (for charts without nodeSelector)."""
    key, value = SYSTEM_NODE_LABEL
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}
                ]
            }
        }
    }


def system_node_selector() -> dict[str, str]:
    key, value = SYSTEM_NODE_LABEL
    return {key: value}
