"""Checks of the graphs that need other sections (node pools, capacity): one problem per
failing graph, as the one-line errors a config gets."""

from __future__ import annotations

from config.graphs import GraphConfig
from config.schema import DeploymentConfig
from plan.capacity import CapacityError, plan_graph
from plan.engine_args import managed_flag_problem
from plan.placement import efa_interfaces_per_pod, role_efa, role_instance_types


def has_multinode(graphs: list[GraphConfig]) -> bool:
    """Whether the platform must install Grove + KAI (multinode orchestration)."""
    return any(graph.multinode for graph in graphs)


def check_graphs(cfg: DeploymentConfig) -> list[str]:
    """The problems of every failing graph across checks that need other sections (pools,
    capacity): a graph's first failing check, with one line per role when it is capacity, so a
    config with several bad graphs or roles reports all of them at once."""
    problems: list[str] = _stack_pinning_problems(cfg)
    for graph in _unique_graphs(cfg, problems):
        problem = _cross_section_problem(cfg, graph)
        if problem:
            problems.extend(problem.splitlines())
    return problems


# A pinned stack may hold more than the automatic shard size; this keeps it well inside
# CloudFormation's limits (each graph is ~16 KB of template and two outputs).
MAX_GRAPHS_PER_PINNED_STACK = 25


def _stack_pinning_problems(cfg: DeploymentConfig) -> list[str]:
    pinned = [graph for graph in cfg.graphs if graph.stack is not None]
    if not pinned:
        return []
    if len(pinned) != len(cfg.graphs):
        loose = ", ".join(graph.name for graph in cfg.graphs if graph.stack is None)
        return [f"graphs {loose} have no stack while others do; set stack on every graph or on none"]
    problems = []
    for number in sorted({graph.stack for graph in pinned if graph.stack is not None}):
        members = [graph.name for graph in pinned if graph.stack == number]
        if len(members) > MAX_GRAPHS_PER_PINNED_STACK:
            problems.append(
                f"stack {number} holds {len(members)} graphs; put at most "
                f"{MAX_GRAPHS_PER_PINNED_STACK} in one stack (move some to another stack number)"
            )
    return problems


def _unique_graphs(cfg: DeploymentConfig, problems: list[str]) -> list[GraphConfig]:
    seen: set[str] = set()
    unique = []
    for graph in cfg.graphs:
        if graph.name in seen:
            problems.append(f"graph '{graph.name}' is defined twice; graph names must be unique")
            continue
        seen.add(graph.name)
        unique.append(graph)
    return unique


def _cross_section_problem(cfg: DeploymentConfig, graph: GraphConfig) -> str | None:
    """The first problem of one graph against its engine's flags, the pools and the capacity
    plan."""
    problem = managed_flag_problem(graph)
    if problem:
        return f"graph '{graph.name}': {problem}"
    for role in graph.worker_roles():
        if not graph.uses_gpus:
            pools = [pool.name for pool in cfg.karpenter.pools()]
            if role.node_pool and role.node_pool not in pools:
                return (
                    f"graph '{graph.name}': {role.name}.node_pool '{role.node_pool}' is not a "
                    f"Karpenter node pool; use one of {', '.join(pools)}"
                )
            continue
        _, problem = role_instance_types(cfg, role)
        if problem:
            return f"graph '{graph.name}': {problem}"
        if role_efa(cfg, graph, role):
            types, _ = role_instance_types(cfg, role)
            lacking = [t.name for t in types or [] if not t.efa]
            if lacking:
                return (
                    f"graph '{graph.name}': efa is on but {role.name} may run on "
                    f"{', '.join(lacking)} without EFA; use e.g. p5.48xlarge or g6e.12xlarge, "
                    "or set efa: false"
                )
            if efa_interfaces_per_pod(cfg, role) < 1:
                per_interface = max(t.gpus // max(1, t.efa_interfaces) for t in types or [])
                return (
                    f"graph '{graph.name}': efa is true but a {role.name} pod uses "
                    f"{role.gpus_per_pod} GPU(s), less than the {per_interface} GPUs that share one "
                    f"EFA interface, so one pod would hold the node's interface and its other GPUs "
                    f"would idle; set {role.name}.tensor_parallel_size to at least "
                    f"{per_interface * role.config.nodes} or efa: false"
                )
    try:
        plan_graph(cfg, graph)
    except CapacityError as err:
        return str(err)
    return None
