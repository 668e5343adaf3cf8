"""Per graph: default-deny ingress for its pods, plus exactly the flows the graph needs.

Rendered into the graph's own chart (k8s_charts/graphs.py graph_chart), so each graph's
policies are applied and deleted with its DynamoGraphDeployment. Enforcement is the VPC
CNI's network policy agent (stacks/eks_addons.py). Egress is not restricted: the Planner
talks to the Kubernetes API, workers download weights, everything resolves DNS.

Flows:
- the frontend's port from `frontend_ingress` (every namespace of the cluster by default,
  plus any CIDRs the config lists);
- the graph's own pods to each other, on every port. Dynamo 1.6.1 runs with Kubernetes
  discovery and TCP/ZMQ request planes (no etcd or NATS; k8s_charts/dynamo_platform_values.py),
  and the ports between its processes are not all fixed: the request plane's TCP server,
  NIXL/UCX (or libfabric) KV transfer and vLLM's NIXL side channel, and multinode engines'
  own launchers (Ray, MPI) pick theirs at run time. The fixed ones (KV events
  plan/engine_args.py KV_EVENTS_PORT, SGLang's bootstrap port SGLANG_BOOTSTRAP_PORT) are
  among them. Other graphs' pods are not the graph's own: they reach it only through the
  frontend rule;
- metrics ports from the monitoring namespace (what the PodMonitors in
  k8s_charts/platform_charts.py scrape), when monitoring is on;
- the frontend's port from `expose.source_ranges`, when the graph has an internal load
  balancer (k8s_charts/frontend_exposure.py): its Service keeps the client's address, so the
  clients' ranges are what reaches the pod, not the load balancer's or the nodes'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cdk8s
from cdk8s_plus_36 import k8s

from config.graphs import ALL_NAMESPACES, GraphConfig
from config.names import INFERENCE_NAMESPACE, MONITORING_NAMESPACE

GRAPH_LABEL = "dynamo-eks/graph"
COMPONENT_LABEL = "dynamo-eks/component"
# The label the API server sets on every namespace (its name).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _selector(graph: GraphConfig, component: str | None = None) -> k8s.LabelSelector:
    labels = {GRAPH_LABEL: graph.name}
    if component:
        labels[COMPONENT_LABEL] = component
    return k8s.LabelSelector(match_labels=labels)


def _namespaces(names: Sequence[str]) -> k8s.LabelSelector:
    return k8s.LabelSelector(
        match_expressions=[
            k8s.LabelSelectorRequirement(key=NAMESPACE_NAME_LABEL, operator="In", values=list(names))
        ]
    )


def _ports(ports: Sequence[int]) -> list[k8s.NetworkPolicyPort]:
    return [
        k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(p)) for p in sorted(set(ports))
    ]


def _policy(
    chart: cdk8s.Chart,
    name: str,
    selector: k8s.LabelSelector,
    ingress: list[k8s.NetworkPolicyIngressRule],
) -> None:
    k8s.KubeNetworkPolicy(
        chart,
        name,
        metadata=k8s.ObjectMeta(
            name=name, namespace=INFERENCE_NAMESPACE, labels={"app.kubernetes.io/part-of": "dynamo-eks"}
        ),
        spec=k8s.NetworkPolicySpec(pod_selector=selector, policy_types=["Ingress"], ingress=ingress or None),
    )


def frontend_peers(graph: GraphConfig) -> list[k8s.NetworkPolicyPeer]:
    allowed = graph.frontend_ingress
    peers: list[k8s.NetworkPolicyPeer] = []
    if allowed.namespaces == [ALL_NAMESPACES]:
        peers.append(k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector()))
    elif allowed.namespaces:
        peers.append(k8s.NetworkPolicyPeer(namespace_selector=_namespaces(allowed.namespaces)))
    peers += [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in allowed.cidrs]
    return peers


def graph_network_policies(
    chart: cdk8s.Chart,
    graph: GraphConfig,
    *,
    frontend_port: int,
    metrics_ports: Mapping[str, Sequence[int]] | None,
) -> None:
    """`metrics_ports`: component -> the ports monitoring scrapes on it; None = monitoring off."""
    name = graph.name
    # Isolates every pod of the graph for ingress: what no rule below allows is dropped.
    _policy(chart, f"{name}-default-deny-ingress", _selector(graph), [])
    _policy(
        chart,
        f"{name}-within-graph",
        _selector(graph),
        [k8s.NetworkPolicyIngressRule(from_=[k8s.NetworkPolicyPeer(pod_selector=_selector(graph))])],
    )
    peers = frontend_peers(graph)
    if peers:
        _policy(
            chart,
            f"{name}-frontend-clients",
            _selector(graph, "frontend"),
            [k8s.NetworkPolicyIngressRule(from_=peers, ports=_ports([frontend_port]))],
        )
    if graph.expose is not None:
        _policy(
            chart,
            f"{name}-frontend-load-balancer",
            _selector(graph, "frontend"),
            [
                k8s.NetworkPolicyIngressRule(
                    from_=[
                        k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=c))
                        for c in graph.expose.source_ranges
                    ],
                    ports=_ports([frontend_port]),
                )
            ],
        )
    monitoring = k8s.NetworkPolicyPeer(namespace_selector=_namespaces([MONITORING_NAMESPACE]))
    for component, ports in (metrics_ports or {}).items():
        _policy(
            chart,
            f"{name}-metrics-{component}",
            _selector(graph, component),
            [k8s.NetworkPolicyIngressRule(from_=[monitoring], ports=_ports(ports))],
        )
