"""Resolve a validated config into its deployment plan."""

from __future__ import annotations

from dataclasses import dataclass

from config.catalog.instances import GpuInstance
from config.graphs import GraphConfig, WorkerRole
from config.schema import DeploymentConfig
from plan.capacity import GraphPlan, plan_graph
from plan.graphs import has_multinode
from plan.placement import efa_interfaces_per_pod, role_efa, role_instance_types


@dataclass(frozen=True)
class RolePlan:
    """One worker role, placed: what Karpenter may launch for it and its EFA share."""

    role: WorkerRole
    instance_types: tuple[GpuInstance, ...] | None  # None: the pool lists none (unchecked)
    efa: bool
    efa_interfaces: int  # per pod; 0 without EFA

    @property
    def node_selector(self) -> dict[str, str]:
        selector: dict[str, str] = {}
        if self.role.node_pool:
            selector["karpenter.sh/nodepool"] = self.role.node_pool
        if self.role.instance_type:
            selector["node.kubernetes.io/instance-type"] = self.role.instance_type
        return selector


@dataclass(frozen=True)
class ResolvedGraph:
    graph: GraphConfig
    roles: tuple[RolePlan, ...]
    capacity: GraphPlan

    def role(self, name: str) -> RolePlan:
        (found,) = [plan for plan in self.roles if plan.role.name == name]
        return found


@dataclass(frozen=True)
class DeploymentPlan:
    config: DeploymentConfig
    graphs: tuple[ResolvedGraph, ...]

    @property
    def multinode(self) -> bool:
        """Grove + KAI: the platform chart installs them only for multinode graphs."""
        return has_multinode([resolved.graph for resolved in self.graphs])

    @property
    def kv_offload(self) -> bool:
        return any(resolved.graph.kv_offload.enabled for resolved in self.graphs)

    @property
    def planner(self) -> bool:
        return any(resolved.graph.planner.enabled for resolved in self.graphs)

    def graph(self, name: str) -> ResolvedGraph:
        (found,) = [resolved for resolved in self.graphs if resolved.graph.name == name]
        return found


def resolve_graph(cfg: DeploymentConfig, graph: GraphConfig) -> ResolvedGraph:
    roles = []
    for role in graph.worker_roles():
        types, _ = role_instance_types(cfg, role) if graph.uses_gpus else (None, None)
        efa = role_efa(cfg, graph, role)
        roles.append(
            RolePlan(
                role=role,
                instance_types=tuple(types) if types is not None else None,
                efa=efa,
                efa_interfaces=efa_interfaces_per_pod(cfg, role) if efa else 0,
            )
        )
    return ResolvedGraph(graph=graph, roles=tuple(roles), capacity=plan_graph(cfg, graph))


def resolve(cfg: DeploymentConfig) -> DeploymentPlan:
    """The plan of a config that `plan.load_config` accepted (resolving a refused one raises)."""
    return DeploymentPlan(config=cfg, graphs=tuple(resolve_graph(cfg, graph) for graph in cfg.graphs))
