"""Per-graph cost and GPU utilisation: what a graph costs, and how much of it is idle.

Upstream publishes nothing for this. The per-graph part (prices from the capacity plan, the
pods a graph's GPUs are counted from) is recorded by each graph's own rules
(k8s_charts/cost_rules.py); this dashboard only aggregates those series by their `graph`
label, so it is the same for one graph or a hundred and a replica change leaves it alone.
"""

from __future__ import annotations

from config.catalog.prices import has_region
from config.schema import DeploymentConfig
from k8s_charts.cost_rules import COST, GPUS_HELD, MEMORY_USED, PRICE, PRICE_NOTE_ANNOTATION, UTILISATION
from k8s_charts.dashboards.builder import GRAPH, RATE, Panel, Query, Row, Table, Text, build, graph_variable

DASHBOARD_UID = "dynamo-eks-cost"
GRAPH_VARIABLE_QUERY = f"label_values({GPUS_HELD}, graph)"

COST_RATE = f"sum by (graph) ({COST}{{{GRAPH}}})"
IDLE_COST = f"{COST_RATE} * on (graph) (1 - {UTILISATION}{{{GRAPH}}} / 100)"
COST_PER_MILLION_TOKENS = (
    f"{COST_RATE} / on (graph) clamp_min(sum by (graph) "
    f"(rate(dynamo_frontend_output_tokens_total{{{GRAPH}}}[{RATE}])) * 3600, 1) * 1e6"
)


def _about(cfg: DeploymentConfig) -> str:
    lines = [
        f"On-Demand prices for **{cfg.region}** from `config/catalog/prices.json`, for the "
        "instance type the capacity plan (`make plan`) gives each role, per GPU-hour. Live cost = "
        "GPUs held by a role's running pods x that price; the planned total at the configured "
        "replicas is `make plan`'s.",
        "",
        "An estimate: Karpenter may launch another type the role's pool allows, whole nodes are "
        "billed even when a pod uses part of one, and Spot or Savings Plans are not known here. "
        "Pods are matched to a graph by name (`<graph>-...<component>-...`): graphs whose names "
        "prefix one another's (`a`, `a-b`) are counted together.",
        "",
        "A role missing from the price table has no price, so no cost; its graph's "
        f"PrometheusRule `<graph>-cost` says why in the annotation `{PRICE_NOTE_ANNOTATION}`.",
    ]
    if not has_region(cfg.region):
        lines += [
            "",
            f"**The catalogue has no price for {cfg.region}**: no role has a price, and the cost "
            "panels stay empty.",
        ]
    return "\n".join(lines)


def rows(cfg: DeploymentConfig) -> tuple[Row, ...]:
    by_graph = "{{graph}}"
    cost = (
        Text("About these numbers", _about(cfg), width=10),
        Table(
            "Prices used",
            "The price per GPU-hour each graph's roles are costed at (recorded by the graph's rules).",
            Query(f"{PRICE}{{{GRAPH}}}", ""),
            (
                ("graph", "graph"),
                ("component", "role"),
                ("instance_type", "instance"),
                ("gpus_per_instance", "GPUs per instance"),
            ),
            "$/GPU-hour",
            unit="currencyUSD",
            width=14,
        ),
        Panel(
            "Estimated cost rate",
            "USD per hour of the GPUs each graph's running pods hold, at the catalogue's "
            "On-Demand price per GPU-hour of the role's planned instance type.",
            (Query(COST_RATE, by_graph),),
            unit="currencyUSD",
        ),
        Panel(
            "Cost of idle GPU time",
            "The part of the cost rate paid for GPU time the graph's GPUs spend idle "
            "(cost rate x (1 - DCGM utilisation)).",
            (Query(IDLE_COST, by_graph),),
            unit="currencyUSD",
        ),
        Panel(
            "Cost per million output tokens",
            "The cost rate divided by the graph's output tokens per hour (frontend), per "
            "million tokens. High when the graph is idle.",
            (Query(COST_PER_MILLION_TOKENS, by_graph),),
            unit="currencyUSD",
        ),
    )
    gpu = (
        Panel(
            "GPUs held by running pods",
            "GPUs requested by each graph's running pods (kube-state-metrics).",
            (Query(f"sum by (graph) ({GPUS_HELD}{{{GRAPH}}})", by_graph),),
        ),
        Panel(
            "GPU utilisation per graph",
            "Average utilisation of the GPUs each graph's pods use (DCGM).",
            (Query(f"max by (graph) ({UTILISATION}{{{GRAPH}}})", by_graph),),
            unit="percent",
        ),
        Panel(
            "GPU memory used per graph",
            "Frame-buffer memory in use on each graph's GPUs (DCGM, MiB).",
            (Query(f"max by (graph) ({MEMORY_USED}{{{GRAPH}}})", by_graph),),
            unit="decmbytes",
        ),
    )
    return (("Cost", cost), ("GPU utilisation", gpu))


def dashboard(cfg: DeploymentConfig) -> dict:
    return build(
        DASHBOARD_UID,
        "Dynamo graph cost and GPU utilisation",
        rows(cfg),
        (graph_variable(GRAPH_VARIABLE_QUERY),),
        ("dynamo", "dynamo-eks", "cost"),
    )
