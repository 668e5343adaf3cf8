"""Where a graph's worker roles can run: the instance types Karpenter may launch for a role
and whether (and how much) EFA it gets. Resolved once here; the capacity plan, the checks
and the charts all read these answers."""

from __future__ import annotations

from config.catalog.instances import INSTANCE_TYPES, GpuInstance
from config.graphs import GraphConfig, WorkerRole
from config.karpenter import NodePoolConfig
from config.schema import DeploymentConfig


def role_instance_types(
    cfg: DeploymentConfig, role: WorkerRole
) -> tuple[list[GpuInstance] | None, str | None]:
    """(instance types Karpenter may launch for the role, problem) from its placement."""
    pools = {pool.name: pool for pool in cfg.karpenter.pools()}
    pool = None
    if role.node_pool is not None:
        pool = pools.get(role.node_pool)
        if pool is None:
            known = ", ".join(name for name, p in pools.items() if p.is_gpu) or "none"
            return None, (
                f"{role.name}.node_pool '{role.node_pool}' is not a Karpenter node pool; use one "
                f"of the GPU pools {known} (karpenter section)"
            )
        if not pool.is_gpu:
            gpu_pools = ", ".join(name for name, p in pools.items() if p.is_gpu) or "none"
            return None, (
                f"{role.name}.node_pool '{role.node_pool}' has no GPU instance types; use one of "
                f"the GPU pools {gpu_pools}"
            )
    if role.instance_type is None:
        return (pool.launchable() if pool else None), None
    instance = INSTANCE_TYPES.get(role.instance_type)
    if instance is None:
        return None, (
            f"{role.name}.instance_type '{role.instance_type}' is not a GPU type in the catalog; "
            "use e.g. g6e.xlarge, g6e.12xlarge or p5.48xlarge (see config/catalog/instances.py)"
        )
    allowed = [pool] if pool else [p for p in pools.values() if p.is_gpu]
    if not any(instance in p.launchable() for p in allowed):
        where = f"node pool '{pool.name}'" if pool else "any Karpenter GPU pool"
        options = sorted({t.name for p in allowed for t in p.launchable()})
        return None, (
            f"{role.name}.instance_type {instance.name} cannot be launched by {where}; pick one "
            f"of {', '.join(options[:6]) or 'none'} or add a pool for it (karpenter section)"
        )
    return [instance], None


def efa_interfaces_per_pod(cfg: DeploymentConfig, role: WorkerRole) -> int:
    """EFA devices one pod of the role gets: the node's interfaces shared out by its GPUs, on
    the EFA type with the fewest interfaces per GPU. 0 when a pod's share is less than one
    interface: requesting a whole one would leave the node's other GPUs idle."""
    types, _ = role_instance_types(cfg, role)
    candidates = [t for t in types or [] if t.efa and t.gpus >= role.gpus_per_pod]
    if not candidates:
        return 0
    return min(t.efa_interfaces * role.gpus_per_pod // t.gpus for t in candidates)


def role_efa(cfg: DeploymentConfig, graph: GraphConfig, role: WorkerRole) -> bool:
    """EFA for a role: the graph's explicit setting, else on where the role's pool is an EFA
    pool and each pod gets at least one whole interface."""
    if not graph.uses_gpus:
        return False
    if graph.efa is not None:
        return graph.efa
    pools = {pool.name: pool for pool in cfg.karpenter.pools()}
    pool = pools.get(role.node_pool or "")
    return bool(pool and pool.efa) and efa_interfaces_per_pod(cfg, role) >= 1


def role_pool(cfg: DeploymentConfig, role: WorkerRole) -> NodePoolConfig | None:
    """The pool a role's nodes come from: its node_pool, else the highest-weight pool that
    can launch its instance type (Karpenter tries pools by weight)."""
    pools = cfg.karpenter.pools()
    if role.node_pool:
        return next((pool for pool in pools if pool.name == role.node_pool), None)
    if role.instance_type:
        able = [pool for pool in pools if any(t.name == role.instance_type for t in pool.launchable())]
        return max(able, key=cfg.karpenter.weight, default=None)
    return None
