"""Per-graph cost and GPU recording rules: one PrometheusRule in each graph's own chart.

Everything that names a graph lives here, not in the cost dashboard: a dashboard holding
per-graph queries grows with the fleet (about 4 KB a graph), and its ConfigMap crosses the
256 KiB that client-side `kubectl apply` (how KubernetesManifest applies it) can store in
its last-applied annotation at about 65 graphs. Recorded per graph, the series carry a
`graph` label, the dashboard aggregates by it and stays the same size, and the rules are
applied and deleted with the graph by its Inference stack.

Prices are the config's On-Demand catalogue (config/catalog/prices.json, for the config's
region): the capacity plan (`plan.capacity.plan_graph`, as `ops plan` prints it) says which
instance type each worker role gets, and a role's price per GPU-hour is that instance's
hourly price divided by its GPUs. It is an estimate: Karpenter may launch another type the
role's pool allows, whole nodes are billed even when a pod uses part of one, and Savings
Plans or Spot are not known here.

Pods are matched by name: the operator names a graph's pods after the graph and the
component (`<graph>-...<component>-...`), as the overview dashboard assumes; graphs whose
names prefix one another's (`a` and `a-b`) would share pods in these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s

from config.catalog.prices import on_demand_usd_per_hour
from config.graphs import GraphConfig
from config.names import INFERENCE_NAMESPACE
from config.schema import DeploymentConfig
from k8s_charts.imports.prometheus_operator.com.coreos import monitoring as prom
from k8s_charts.network_policies import GRAPH_LABEL
from k8s_charts.platform_helm_values import MONITOR_SELECTOR_LABELS
from plan.capacity import CapacityError, GraphPlan, plan_graph

# Recorded series (Prometheus' `level:metric` naming). Labels: graph, component (a worker
# role), instance_type and gpus_per_instance on the price; graph and component on GPUs held;
# those and instance_type on cost; graph only on utilisation and memory.
PRICE = "dynamo_eks:gpu_price_usd_per_gpu_hour"
GPUS_HELD = "dynamo_eks:graph_gpus_held"
COST = "dynamo_eks:graph_cost_usd_per_hour"
UTILISATION = "dynamo_eks:graph_gpu_utilisation_percent"
MEMORY_USED = "dynamo_eks:graph_gpu_memory_used_mib"

GPU_RESOURCE = "nvidia_com_gpu"  # kube-state-metrics' name for nvidia.com/gpu
# On the PrometheusRule object: recording rules cannot carry annotations, and the reason a
# role has no price must be findable next to the rules that lack it.
PRICE_NOTE_ANNOTATION = "dynamo-eks/price-note"


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


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str]


def graph_price(cfg: DeploymentConfig, graph: GraphConfig, plan: GraphPlan | None = None) -> GraphPrice:
    """`plan`: the graph's capacity plan when the caller has it (the graph chart's resolved
    graph); otherwise it is made here."""
    if plan is None:
        try:
            plan = plan_graph(cfg, graph)
        except CapacityError as err:
            return GraphPrice(graph.name, (), f"no capacity plan: {err}")
    roles = []
    notes = []
    for role in plan.roles:
        if role.fit is None or role.usd_per_hour is None:
            notes.append(f"{role.role}: no price ({role.pricing if role.fit else 'unchecked'})")
            continue
        instance = role.fit.instance
        # From the catalogue, not the plan's total / nodes: the total scales with replicas,
        # and the division would leave float noise that moves the rules on a replica change.
        hourly = 0.0 if role.pricing == "reserved" else on_demand_usd_per_hour(instance.name, cfg.region)
        if hourly is None:
            notes.append(f"{role.role}: no price (no {cfg.region} price)")
            continue
        roles.append(RolePrice(role.role, instance.name, instance.gpus, hourly / instance.gpus))
    return GraphPrice(graph.name, tuple(roles), "; ".join(notes))


def format_price(usd_per_gpu_hour: float) -> str:
    return f"{usd_per_gpu_hour:.6f}"


def _pods(graph: str, component: str = "") -> str:
    middle = f"(.*-)?{component}-" if component else ""
    return f'namespace="{INFERENCE_NAMESPACE}",pod=~"{graph}-{middle}.*"'


def gpus_held_expr(graph: str, component: str) -> str:
    """GPUs requested by the running pods of one component of a graph; 0, not absent, when
    none run, so the cost of a scaled-down role reads 0."""
    pods = _pods(graph, component)
    return (
        f'sum(kube_pod_container_resource_requests{{{pods},resource="{GPU_RESOURCE}"}}'
        f' and on (namespace, pod) (kube_pod_status_phase{{{pods},phase="Running"}} == 1))'
        " or vector(0)"
    )


def graph_rules(
    cfg: DeploymentConfig, graph: GraphConfig, plan: GraphPlan
) -> tuple[list[RecordingRule], str]:
    """The graph's recording rules (evaluated in this order: each may use the ones before)
    and why any of its roles has no price ("" when all have one). Nothing here depends on
    replicas: a replica change must change only the DynamoGraphDeployment."""
    price = graph_price(cfg, graph, plan)
    name = graph.name
    rules = [
        RecordingRule(
            PRICE,
            f"vector({format_price(role.usd_per_gpu_hour)})",
            {
                "graph": name,
                "component": role.role,
                "instance_type": role.instance,
                "gpus_per_instance": str(role.gpus_per_instance),
            },
        )
        for role in price.roles
    ]
    rules += [
        RecordingRule(GPUS_HELD, gpus_held_expr(name, role.name), {"graph": name, "component": role.name})
        for role in graph.worker_roles()
    ]
    if price.roles:
        rules.append(
            RecordingRule(
                COST,
                f'{GPUS_HELD}{{graph="{name}"}} * on (graph, component) group_left (instance_type)'
                f' {PRICE}{{graph="{name}"}}',
                {"graph": name},
            )
        )
    rules += [
        RecordingRule(UTILISATION, f'avg(DCGM_FI_DEV_GPU_UTIL{{pod=~"{name}-.*"}})', {"graph": name}),
        RecordingRule(MEMORY_USED, f'sum(DCGM_FI_DEV_FB_USED{{pod=~"{name}-.*"}})', {"graph": name}),
    ]
    return rules, price.note


def rule_name(graph: GraphConfig) -> str:
    return f"{graph.name}-cost"


def cost_rules(
    chart: cdk8s.Chart, cfg: DeploymentConfig, graph: GraphConfig, plan: GraphPlan
) -> prom.PrometheusRule:
    rules, note = graph_rules(cfg, graph, plan)
    return prom.PrometheusRule(
        chart,
        "cost-rules",
        metadata=cdk8s.ApiObjectMetadata(
            name=rule_name(graph),
            namespace=INFERENCE_NAMESPACE,
            # The selector label is what Prometheus's ruleSelector picks up (any namespace).
            labels={
                **MONITOR_SELECTOR_LABELS,
                "app.kubernetes.io/part-of": "dynamo-eks",
                GRAPH_LABEL: graph.name,
            },
            annotations={PRICE_NOTE_ANNOTATION: note} if note else None,
        ),
        spec=prom.PrometheusRuleSpec(
            groups=[
                prom.PrometheusRuleSpecGroups(
                    name=f"dynamo-eks-cost-{graph.name}",
                    rules=[
                        prom.PrometheusRuleSpecGroupsRules(
                            record=rule.record,
                            expr=prom.PrometheusRuleSpecGroupsRulesExpr.from_string(rule.expr),
                            labels=rule.labels,
                        )
                        for rule in rules
                    ],
                )
            ]
        ),
    )
