"""Per-graph cost and GPU utilisation: what a graph costs, and how much of it is idle.

Upstream publishes nothing for this. Prices are the config's On-Demand catalogue
(config/catalog/prices.json, for the config's region), fixed into the queries when the
chart is rendered: the capacity plan (`plan.capacity.plan_graph`, as `ops plan` prints it)
says which instance type each worker role gets, and a role's price per GPU-hour is that
instance's hourly price divided by its GPUs. The live part comes from kube-state-metrics
(GPUs requested by the graph's running pods) and DCGM (their utilisation). It is an
estimate, and says so: Karpenter may launch another type the role's pool allows, whole nodes
are billed even when a pod uses part of one, and Savings Plans or Spot are not known here.

Pods are matched by name: the operator names a graph's pods after the graph and the
component (`<graph>-...<component>-...`), as the overview dashboard assumes; graphs whose
names prefix one another's (`a` and `a-b`) would share pods in these queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.names import INFERENCE_NAMESPACE
from config.schema import DeploymentConfig
from k8s_charts.dashboards.builder import RATE, Panel, Query, Row, Text, build
from plan.capacity import CapacityError, plan_graph

DASHBOARD_UID = "dynamo-eks-cost"
GPU_RESOURCE = "nvidia_com_gpu"  # kube-state-metrics' name for nvidia.com/gpu


@dataclass(frozen=True)
class RolePrice:
    role: str
    instance: str
    gpus_per_instance: int
    usd_per_gpu_hour: float


@dataclass(frozen=True)
class GraphPrice:
    graph: str
    roles: tuple[RolePrice, ...]
    note: str  # why a role or the graph has no price, or "" when every role has one


def graph_prices(cfg: DeploymentConfig) -> list[GraphPrice]:
    prices = []
    for graph in cfg.graphs:
        if not graph.uses_gpus:
            continue
        try:
            plan = plan_graph(cfg, graph)
        except CapacityError as err:
            prices.append(GraphPrice(graph.name, (), f"no capacity plan: {err}"))
            continue
        roles = []
        notes = []
        for role in plan.roles:
            if role.fit is None or role.usd_per_hour is None or not role.node_count:
                notes.append(f"{role.role}: no price ({role.pricing if role.fit else 'unchecked'})")
                continue
            instance = role.fit.instance
            per_gpu = role.usd_per_hour / role.node_count / instance.gpus
            roles.append(RolePrice(role.role, instance.name, instance.gpus, per_gpu))
        prices.append(GraphPrice(graph.name, tuple(roles), "; ".join(notes)))
    return prices


def _pods(graph: str, component: str = "") -> str:
    middle = f"(.*-)?{component}-" if component else ""
    return f'namespace="{INFERENCE_NAMESPACE}",pod=~"{graph}-{middle}.*"'


def _gpus(graph: str, component: str = "") -> str:
    """GPUs requested by the running pods of a graph (or of one of its components)."""
    return (
        f'sum(kube_pod_container_resource_requests{{{_pods(graph, component)},resource="{GPU_RESOURCE}"}}'
        f' and on (namespace, pod) (kube_pod_status_phase{{{_pods(graph, component)},phase="Running"}} == 1))'
    )


def cost_per_hour(price: GraphPrice) -> str:
    """$/h of the GPUs the graph's running pods hold, at its roles' prices per GPU-hour."""
    return " + ".join(
        f"({_gpus(price.graph, r.role)} or vector(0)) * {r.usd_per_gpu_hour:.4f}" for r in price.roles
    )


def _utilisation(graph: str) -> str:
    return f'avg(DCGM_FI_DEV_GPU_UTIL{{pod=~"{graph}-.*"}})'


def _plan_table(prices: list[GraphPrice], cfg: DeploymentConfig) -> str:
    lines = [
        f"On-Demand prices for **{cfg.region}** from `config/catalog/prices.json` (the capacity "
        "plan's instance per role). Live cost = GPUs held by running pods x the role's price per "
        "GPU-hour; the planned total at the configured replicas is `make plan`'s (not repeated "
        "here, so a replica change does not change this dashboard).",
        "",
        "| graph | role | instance | GPUs per instance | $/GPU-hour |",
        "| --- | --- | --- | --- | --- |",
    ]
    for price in prices:
        for role in price.roles:
            lines.append(
                f"| {price.graph} | {role.role} | {role.instance} | {role.gpus_per_instance} "
                f"| {role.usd_per_gpu_hour:.4f} |"
            )
        if price.note:
            lines.append(f"| {price.graph} | {price.note} | | | |")
    if not prices:
        lines.append("| no GPU graphs in this config | | | | |")
    return "\n".join(lines)


def rows(cfg: DeploymentConfig) -> tuple[Row, ...]:
    prices = graph_prices(cfg)
    priced = [p for p in prices if p.roles]
    gpu_graphs = [p.graph for p in prices]
    cost: tuple[Panel | Text, ...] = (
        Text("Prices used", _plan_table(prices, cfg), height=6 + sum(len(p.roles) + 2 for p in prices) // 2),
    )
    if priced:
        cost += (
            Panel(
                "Estimated cost rate",
                "USD per hour of the GPUs each graph's running pods hold, at the catalogue's "
                "On-Demand price per GPU-hour of the role's planned instance type.",
                tuple(Query(cost_per_hour(p), p.graph) for p in priced),
                unit="currencyUSD",
            ),
            Panel(
                "Cost of idle GPU time",
                "The part of the cost rate paid for GPU time the graph's GPUs spend idle "
                "(cost rate x (1 - DCGM utilisation)).",
                tuple(
                    Query(f"({cost_per_hour(p)}) * (1 - {_utilisation(p.graph)} / 100)", p.graph)
                    for p in priced
                ),
                unit="currencyUSD",
            ),
            Panel(
                "Cost per million output tokens",
                "The cost rate divided by the graph's output tokens per hour (frontend), per "
                "million tokens. High when the graph is idle.",
                tuple(
                    Query(
                        f"({cost_per_hour(p)}) / clamp_min(sum(rate(dynamo_frontend_output_tokens_total"
                        f'{{graph="{p.graph}"}}[{RATE}])) * 3600, 1) * 1e6',
                        p.graph,
                    )
                    for p in priced
                ),
                unit="currencyUSD",
            ),
        )
    gpu: tuple[Panel | Text, ...] = ()
    if gpu_graphs:
        gpu = (
            Panel(
                "GPUs held by running pods",
                "GPUs requested by each graph's running pods (kube-state-metrics).",
                tuple(Query(_gpus(g), g) for g in gpu_graphs),
            ),
            Panel(
                "GPU utilisation per graph",
                "Average utilisation of the GPUs each graph's pods use (DCGM).",
                tuple(Query(_utilisation(g), g) for g in gpu_graphs),
                unit="percent",
            ),
            Panel(
                "GPU memory used per graph",
                "Frame-buffer memory in use on each graph's GPUs (DCGM, MiB).",
                tuple(Query(f'sum(DCGM_FI_DEV_FB_USED{{pod=~"{g}-.*"}})', g) for g in gpu_graphs),
                unit="decmbytes",
            ),
        )
    return (("Cost", cost), ("GPU utilisation", gpu)) if gpu else (("Cost", cost),)


def dashboard(cfg: DeploymentConfig) -> dict:
    return build(
        DASHBOARD_UID,
        "Dynamo graph cost and GPU utilisation",
        rows(cfg),
        (),
        ("dynamo", "dynamo-eks", "cost"),
    )
