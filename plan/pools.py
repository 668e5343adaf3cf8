"""Karpenter pool limits from what the graphs need: every graph must fit its pool's limits at
its maximum replicas, with nodes counted the way Karpenter counts them.

Karpenter will not launch a node that would take a NodePool past `spec.limits`, and it
counts a node's memory after subtracting its VM overhead (`karpenter_memory_gib`). A pool
limit the user sets is checked against the least the graphs need (their nodes on the
cheapest type that fits, as the capacity plan prices them); an unset limit is derived as the
larger of the karpenter_*_limits default and the most the graphs could need (every pod on
the largest type the pool may pick for it), so Karpenter's choice of type never blocks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from config.catalog.instances import GpuInstance
from config.graphs import GraphConfig, WorkerRole
from config.karpenter import NodePoolConfig, karpenter_memory_gib
from config.schema import DeploymentConfig
from plan.capacity import CapacityError, plan_graph
from plan.placement import role_instance_types, role_pool


@dataclass(frozen=True)
class Usage:
    cpu: int = 0
    memory_gib: int = 0
    gpus: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory_gib + other.memory_gib, self.gpus + other.gpus)

    def top(self, other: Usage) -> Usage:
        return Usage(
            max(self.cpu, other.cpu), max(self.memory_gib, other.memory_gib), max(self.gpus, other.gpus)
        )


@dataclass(frozen=True)
class PoolNeed:
    least: Usage = Usage()  # on the types the capacity plan chose
    most: Usage = Usage()  # if Karpenter picked the largest type it may for every pod
    graphs: tuple[str, ...] = ()
    # The nodes behind `least`, e.g. "4 x p5.48xlarge", for error messages.
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolLimits:
    cpu: int
    memory_gib: int
    gpus: int | None  # None on CPU pools
    need: PoolNeed = field(default_factory=PoolNeed)


def max_replicas(graph: GraphConfig, role: WorkerRole) -> int:
    """The most engine instances a role runs: its replicas, or what the Planner's GPU budget
    allows (each replica takes tensor_parallel_size GPUs)."""
    if not graph.planner.enabled:
        return role.config.replicas
    return max(graph.planner.min_replicas, graph.planner.max_gpu_budget // role.config.tensor_parallel_size)


def _nodes(instance: GpuInstance, role: WorkerRole, pods: int) -> int:
    per_node = max(1, instance.gpus // max(1, role.gpus_per_pod))
    return math.ceil(pods / per_node)


def _usage(instance: GpuInstance, nodes: int) -> Usage:
    return Usage(
        nodes * instance.vcpu, nodes * karpenter_memory_gib(instance.memory_gib), nodes * instance.gpus
    )


def pool_needs(cfg: DeploymentConfig) -> dict[str, PoolNeed]:
    needs: dict[str, PoolNeed] = {}
    for graph in cfg.graphs:
        if not graph.uses_gpus or graph.skip_capacity_check:
            continue
        try:
            chosen = {plan.role: plan.fit for plan in plan_graph(cfg, graph).roles}
        except CapacityError:
            continue  # reported by the capacity check itself
        for role in graph.worker_roles():
            pool = role_pool(cfg, role)
            types, _ = role_instance_types(cfg, role)
            fit = chosen.get(role.name)
            if pool is None or not types or fit is None:
                continue
            pods = max_replicas(graph, role) * role.config.nodes
            least = _usage(fit.instance, _nodes(fit.instance, role, pods))
            most = Usage()
            for instance in (t for t in types if t.gpus >= role.gpus_per_pod):
                most = most.top(_usage(instance, _nodes(instance, role, pods)))
            before = needs.get(pool.name, PoolNeed())
            nodes = f"{_nodes(fit.instance, role, pods)} x {fit.instance.name}"
            needs[pool.name] = PoolNeed(
                least=before.least + least,
                most=before.most + most,
                graphs=tuple(dict.fromkeys([*before.graphs, graph.name])),
                nodes=(*before.nodes, f"{graph.name}.{role.name}: {nodes}"),
            )
    return needs


def pool_field(cfg: DeploymentConfig, pool: NodePoolConfig) -> str:
    karpenter = cfg.karpenter
    if pool in karpenter.custom_nodepools:
        return f"karpenter.custom_nodepools.{karpenter.custom_nodepools.index(pool)}"
    return f"karpenter.base_nodepools.{karpenter.base_nodepools.index(pool)}"


def resolve_pool_limits(cfg: DeploymentConfig) -> tuple[dict[str, PoolLimits], list[str]]:
    """(limits per pool name, one problem per pool whose own limits cannot hold its graphs)."""
    karpenter = cfg.karpenter
    needs = pool_needs(cfg)
    limits: dict[str, PoolLimits] = {}
    problems: list[str] = []
    for pool in karpenter.pools():
        need = needs.get(pool.name, PoolNeed())
        own = pool.limits
        cpu = own.cpu if own.cpu is not None else max(karpenter.karpenter_cpu_limits, need.most.cpu)
        memory = (
            own.memory_gib
            if own.memory_gib is not None
            else max(karpenter.karpenter_memory_limits, need.most.memory_gib)
        )
        gpus = None
        if pool.is_gpu:
            gpus = own.gpus if own.gpus is not None else max(karpenter.karpenter_gpu_limits, need.most.gpus)
        limits[pool.name] = PoolLimits(cpu=cpu, memory_gib=memory, gpus=gpus, need=need)
        short = [
            (key, have, want)
            for key, have, want in (
                ("gpus", gpus, need.least.gpus),
                ("cpu", cpu, need.least.cpu),
                ("memory_gib", memory, need.least.memory_gib),
            )
            if have is not None and want > have
        ]
        if short:
            key, have, want = short[0]
            unit = {"gpus": " GPUs", "cpu": " vCPUs", "memory_gib": " GiB"}[key]
            problems.append(
                f"{pool_field(cfg, pool)}: pool '{pool.name}' limits.{key} is {have}{unit} but graph(s) "
                f"{', '.join(need.graphs)} need {want}{unit} at their maximum replicas "
                f"({'; '.join(need.nodes)}; memory as Karpenter counts it); raise limits.{key} to "
                f"at least {want}, or remove it to have it derived, or lower the replicas"
            )
    return limits, problems
