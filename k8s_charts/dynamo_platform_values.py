"""Typed Helm values for the `dynamo-platform` chart (config/versions.py DYNAMO).

Every key rendered here exists in the upstream chart's values.yaml (vendored as test data in
tests/data/upstream/dynamo-platform-1.6.0-values.yaml; tests/test_dynamo_platform_values.py checks it),
except the KAI scheduler argument in SUBCHART_KEYS, which belongs to the KAI subchart and is
what the Dynamo 1.6 multinode docs tell users to set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k8s_charts.placement import SYSTEM_TOLERATIONS, system_node_affinity

# Keys of bundled subcharts that the platform chart's own values.yaml does not list, with
# the upstream source that documents them.
SUBCHART_KEYS = {
    "kai-scheduler.scheduler.args.default-staleness-grace-period": (
        "docs.nvidia.com/dynamo/v1.6.x/kubernetes/installation/multinode-orchestration "
        "(managed install: --set-string "
        "kai-scheduler.scheduler.args.default-staleness-grace-period=-1s)"
    ),
}


# The operator's controller-runtime metrics (dynamo_operator_*, the upstream operator
# dashboard). Upstream's values bind them to 127.0.0.1:8080 ("localhost only"), which nothing
# can scrape; with monitoring on we bind all interfaces and scrape the port (PodMonitor
# `dynamo-operator`). Helm replaces lists, so the health-probe argument is repeated as upstream
# has it.
OPERATOR_METRICS_PORT = 8080
OPERATOR_MANAGER_ARGS = [
    "--health-probe-bind-address=:8081",
    f"--metrics-bind-address=:{OPERATOR_METRICS_PORT}",
]


def has_multinode_graph(cfg: Any) -> bool:
    """True if any configured graph uses the multinode topology (needs Grove + KAI).

    `graphs` is read defensively: configs without a graphs section simply have none.
    """
    return any(
        getattr(graph, "topology", None) == "multinode" for graph in getattr(cfg, "graphs", None) or []
    )


@dataclass(frozen=True)
class Placement:
    tolerations: list[dict] = field(default_factory=lambda: list(SYSTEM_TOLERATIONS))
    affinity: dict = field(default_factory=system_node_affinity)


@dataclass(frozen=True)
class MultinodeOrchestration:
    """Grove (gang-scheduled PodCliqueSets) and the KAI scheduler, installed as subcharts."""

    placement: Placement = field(default_factory=Placement)
    # Upstream's documented setting for the managed install: never treat a pod group's
    # scheduling state as stale, so multinode groups are not split while nodes come up.
    kai_staleness_grace_period: str = "-1s"


@dataclass(frozen=True)
class DynamoPlatformValues:
    operator_placement: Placement = field(default_factory=Placement)
    # Empty = no PROMETHEUS_ENDPOINT injected into Dynamo pods (monitoring disabled).
    prometheus_endpoint: str = ""
    multinode: MultinodeOrchestration | None = None

    def to_helm(self) -> dict:
        install_multinode = self.multinode is not None
        values: dict = {
            "global": {
                # Upstream default since 1.0: Kubernetes-native discovery and TCP/ZMQ request
                # planes, so no etcd or NATS to run, back up or secure.
                "etcd": {"install": False},
                "nats": {"install": False},
                "grove": {"install": install_multinode},
                "kai-scheduler": {"install": install_multinode},
            },
            "dynamo-operator": {
                # The operator applies its CRDs from its own image (crd-apply init container);
                # the 1.6 chart ships no CRD files.
                "upgradeCRD": True,
                "discoveryBackend": "kubernetes",
                "controllerManager": {
                    "tolerations": self.operator_placement.tolerations,
                    "affinity": self.operator_placement.affinity,
                },
                "dynamo": {"metrics": {"prometheusEndpoint": self.prometheus_endpoint}},
            },
        }
        if self.prometheus_endpoint:
            values["dynamo-operator"]["controllerManager"]["manager"] = {"args": list(OPERATOR_MANAGER_ARGS)}
        if self.multinode is not None:
            placement = self.multinode.placement
            values["grove"] = {
                "tolerations": placement.tolerations,
                "affinity": placement.affinity,
            }
            values["kai-scheduler"] = {
                "global": {"tolerations": placement.tolerations, "affinity": placement.affinity},
                "scheduler": {
                    "args": {"default-staleness-grace-period": self.multinode.kai_staleness_grace_period}
                },
            }
        return values


def dynamo_platform_values(cfg: Any, *, prometheus_endpoint: str) -> DynamoPlatformValues:
    return DynamoPlatformValues(
        prometheus_endpoint=prometheus_endpoint,
        multinode=MultinodeOrchestration() if has_multinode_graph(cfg) else None,
    )
