"""Capacity planner: does each worker role's model fit the GPUs it will land on?

Pure arithmetic over the catalogs, run at config load (a graph that cannot start never
reaches CloudFormation) and by `ops plan` (what a config costs and holds). Units: weights
and KV in decimal GB (1e9 bytes, as model sizes are quoted), GPU memory in GiB as AWS lists it.

Per GPU, for an engine with tensor parallelism TP over `nodes` pods:
  weights/GPU  = params x bytes-per-param / TP
  usable       = GPU memory x gpu_memory_utilization            (vLLM, SGLang)
  KV budget    = usable - weights/GPU - RESERVE_GIB              (TRT-LLM: utilisation
                                                                  applies to what is left)
  KV/token/GPU = 2 (K,V) x layers x max(1, kv_heads/TP) x head_dim x kv bytes
  tokens       = KV budget / KV per token; sequences = tokens // max_model_len
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from config.catalog.instances import INSTANCE_TYPES, GpuInstance
from config.catalog.models import ModelSpec
from config.catalog.prices import on_demand_usd_per_hour
from config.graphs import GraphConfig, WorkerRole
from config.schema import DeploymentConfig
from plan.placement import role_instance_types, role_pool

GIB = 2**30
GB = 1e9
# Per GPU, outside the engine's weight + KV accounting: CUDA context, NCCL buffers, the
# activations of the engine's profiling forward pass and captured CUDA graphs.
RESERVE_GIB = 2.0


class CapacityError(Exception):
    """One line: graph, numbers, fix."""


@dataclass(frozen=True)
class RoleFit:
    """The arithmetic for one engine instance of a role on one instance type."""

    instance: GpuInstance
    tensor_parallel: int
    nodes: int
    weights_per_gpu_gb: float
    usable_per_gpu_gb: float
    kv_budget_per_gpu_gb: float
    kv_tokens: int
    max_model_len: int

    @property
    def gpus_per_pod(self) -> int:
        return self.tensor_parallel // self.nodes

    @property
    def concurrent_sequences(self) -> int:
        return max(0, self.kv_tokens // self.max_model_len)


@dataclass(frozen=True)
class RolePlan:
    role: str
    replicas: int
    tensor_parallel: int
    nodes: int
    fit: RoleFit | None  # None when unchecked (mocker, skip_capacity_check, unknown pool)
    node_count: int | None
    usd_per_hour: float | None  # None: no price (unchecked, or none for the region)
    # How the nodes are paid for: on-demand (priced in the config's region), reserved (the
    # reservation is paid for whether used or not: 0 here), or why there is no price.
    pricing: str = "on-demand"

    @property
    def gpus(self) -> int:
        return self.replicas * self.tensor_parallel


@dataclass(frozen=True)
class GraphPlan:
    graph: str
    backend: str
    topology: str
    model: str
    checked: bool
    note: str
    roles: list[RolePlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # legal but wasteful choices

    @property
    def usd_per_hour(self) -> float | None:
        prices = [role.usd_per_hour for role in self.roles]
        return None if not prices or None in prices else sum(p for p in prices if p is not None)


def fit_role(
    spec: ModelSpec,
    instance: GpuInstance,
    *,
    tensor_parallel: int,
    nodes: int,
    utilization: float,
    max_model_len: int,
    backend: str,
) -> RoleFit:
    memory_gb = instance.gpu_memory_gib * GIB / GB
    reserve_gb = RESERVE_GIB * GIB / GB
    weights = spec.weights_bytes_total / tensor_parallel / GB
    if backend == "trtllm":
        usable = memory_gb
        kv_budget = (memory_gb - weights - reserve_gb) * utilization
    else:
        usable = memory_gb * utilization
        kv_budget = usable - weights - reserve_gb
    per_token = spec.kv_bytes_per_token(tensor_parallel)
    tokens = int(max(0.0, kv_budget) * GB // per_token)
    return RoleFit(
        instance=instance,
        tensor_parallel=tensor_parallel,
        nodes=nodes,
        weights_per_gpu_gb=weights,
        usable_per_gpu_gb=usable,
        kv_budget_per_gpu_gb=kv_budget,
        kv_tokens=tokens,
        max_model_len=max_model_len,
    )


def parallelism_problem(spec: ModelSpec, tensor_parallel: int) -> str | None:
    if spec.attention_heads % tensor_parallel:
        options = [tp for tp in (1, 2, 4, 8, 16, 32) if spec.attention_heads % tp == 0]
        return (
            f"tensor_parallel_size {tensor_parallel} does not divide the model's "
            f"{spec.attention_heads} attention heads; use one of {', '.join(map(str, options))}"
        )
    kv = spec.kv_heads
    if (tensor_parallel <= kv and kv % tensor_parallel) or (tensor_parallel > kv and tensor_parallel % kv):
        return (
            f"tensor_parallel_size {tensor_parallel} neither divides nor is a multiple of the "
            f"model's {kv} KV heads; use a power of two up to {spec.attention_heads}"
        )
    return None


def fits(role_fit: RoleFit) -> bool:
    return role_fit.kv_budget_per_gpu_gb > 0 and role_fit.concurrent_sequences >= 1


def smallest_fitting_tp(
    spec: ModelSpec,
    instance: GpuInstance,
    gpus_per_node: Iterable[int],
    *,
    nodes: int,
    utilization: float,
    max_model_len: int,
    backend: str,
) -> int | None:
    """The first tensor-parallel size (GPUs per node x nodes) that holds one sequence on
    `instance`, trying `gpus_per_node` in order; None when none does."""
    for per_node in gpus_per_node:
        if per_node > instance.gpus:
            break
        tp = per_node * nodes
        if parallelism_problem(spec, tp):
            continue
        trial = fit_role(
            spec,
            instance,
            tensor_parallel=tp,
            nodes=nodes,
            utilization=utilization,
            max_model_len=max_model_len,
            backend=backend,
        )
        if fits(trial):
            return tp
    return None


def suggest(
    spec: ModelSpec,
    *,
    nodes: int,
    utilization: float,
    max_model_len: int,
    backend: str,
    exclude: str | None = None,
    limit: int = 2,
) -> str:
    """Cheapest catalog instance types (with the TP to use) that hold one sequence."""
    found: list[tuple[float, str]] = []
    for instance in INSTANCE_TYPES.values():
        if instance.name == exclude:
            continue
        tp = smallest_fitting_tp(
            spec,
            instance,
            (1, 2, 4, 8),
            nodes=nodes,
            utilization=utilization,
            max_model_len=max_model_len,
            backend=backend,
        )
        if tp is not None:
            found.append((instance.on_demand_usd_per_hour, f"{instance.name} (TP={tp})"))
    found.sort()
    names = [name for _, name in found[:limit]]
    if not names:
        return "a larger GPU type or topology: multinode"
    return " or ".join(names)


def check_fit(graph: GraphConfig, role: WorkerRole, spec: ModelSpec, role_fit: RoleFit) -> None:
    """Raise CapacityError naming the numbers and a fix when the fit fails."""
    tp, nodes, instance = role_fit.tensor_parallel, role_fit.nodes, role_fit.instance
    util = graph.gpu_memory_utilization
    where = f"graph '{graph.name}': {role.name}"
    # First the fix that keeps the user's instance type: more GPUs of it per engine.
    own = _more_tensor_parallel(graph, role, spec, role_fit)
    advice = (
        f"set {own}"
        if own
        else "use "
        + suggest(
            spec,
            nodes=nodes,
            utilization=util,
            max_model_len=role_fit.max_model_len,
            backend=graph.backend,
            exclude=instance.name,
        )
    )
    if role_fit.gpus_per_pod > instance.gpus:
        raise CapacityError(
            f"{where}: tensor_parallel_size {tp} over {nodes} node(s) needs {role_fit.gpus_per_pod} "
            f"GPUs per node but {instance.name} has {instance.gpus}; {advice}"
        )
    reserve_gb = RESERVE_GIB * GIB / GB
    total = spec.weights_bytes_total / GB
    if role_fit.kv_budget_per_gpu_gb <= 0:
        raise CapacityError(
            f"{where}: {spec.params_b:g}B {spec.dtype_name} weights need {total:.0f} GB "
            f"({role_fit.weights_per_gpu_gb:.1f} GB per GPU + {RESERVE_GIB:g} GiB reserve) but "
            f"TP={tp} on {instance.name} gives {role_fit.gpus_per_pod}x{instance.gpu_memory_gib:.1f} GiB "
            f"{instance.gpu_model} ({role_fit.usable_per_gpu_gb - reserve_gb:.1f} GB per GPU at "
            f"gpu_memory_utilization {util}); {advice}"
        )
    if role_fit.concurrent_sequences < 1:
        per_token = spec.kv_bytes_per_token(tp)
        longest = int(role_fit.kv_budget_per_gpu_gb * GB // per_token) // 1024 * 1024
        fix = f"set max_model_len <= {longest}, or {advice}" if longest >= 1024 else advice
        raise CapacityError(
            f"{where}: after {role_fit.weights_per_gpu_gb:.1f} GB of weights per GPU, TP={tp} on "
            f"{instance.name} leaves KV cache for {role_fit.kv_tokens:,} tokens but max_model_len is "
            f"{role_fit.max_model_len:,}; {fix}"
        )


def _more_tensor_parallel(
    graph: GraphConfig, role: WorkerRole, spec: ModelSpec, role_fit: RoleFit
) -> str | None:
    """`<role>.tensor_parallel_size: N on the same <type>` when a larger TP on it fits."""
    instance = role_fit.instance
    tp = smallest_fitting_tp(
        spec,
        instance,
        range(role_fit.gpus_per_pod + 1, instance.gpus + 1),
        nodes=role_fit.nodes,
        utilization=graph.gpu_memory_utilization,
        max_model_len=role_fit.max_model_len,
        backend=graph.backend,
    )
    return f"{role.name}.tensor_parallel_size: {tp} on the same {instance.name}" if tp else None


# Host memory a worker pod needs besides the KV CPU tier (engine process, tokenizer, NCCL).
WORKER_HOST_GB = 16


def offload_host_gb(graph: GraphConfig, role: WorkerRole) -> int:
    """Host memory of the KV CPU tier in one pod. SGLang's HiCache keeps a pool of
    `--hicache-size` per tensor-parallel rank; KVBM sizes one tier per worker."""
    offload = graph.kv_offload
    if graph.backend == "sglang":
        return offload.cpu_cache_gb * role.gpus_per_pod
    return offload.cpu_cache_gb


def _check_host_memory(graph: GraphConfig, role: WorkerRole, instance: GpuInstance) -> None:
    offload = graph.kv_offload
    if not offload.enabled or role.disaggregation_mode == "decode":
        return
    pods_per_node = max(1, instance.gpus // max(1, role.gpus_per_pod))
    host_gb = instance.memory_gib * GIB / GB / pods_per_node
    tier = offload_host_gb(graph, role)
    need = tier + WORKER_HOST_GB
    if need > host_gb * 0.9:
        per_rank = graph.backend == "sglang" and role.gpus_per_pod > 1
        what = (
            f"kv_offload.cpu_cache_gb {offload.cpu_cache_gb} x {role.gpus_per_pod} TP ranks"
            if per_rank
            else f"kv_offload.cpu_cache_gb {offload.cpu_cache_gb}"
        )
        fit = max(0, int(host_gb * 0.9) - WORKER_HOST_GB) // (role.gpus_per_pod if per_rank else 1)
        raise CapacityError(
            f"graph '{graph.name}': {role.name}: {what} + {WORKER_HOST_GB} GB for the engine needs "
            f"{need} GB of host memory per pod but {instance.name} has {host_gb:.0f} GB per pod "
            f"({instance.memory_gib} GiB shared by {pods_per_node}); lower cpu_cache_gb to {fit} "
            "or use an instance type with more memory"
        )


def _node_count(instance: GpuInstance, gpus_per_pod: int, pods: int) -> int:
    per_node = max(1, instance.gpus // max(1, gpus_per_pod))
    return math.ceil(pods / per_node)


def plan_graph(cfg: DeploymentConfig, graph: GraphConfig) -> GraphPlan:
    """Check every worker role and return the plan; raises CapacityError on a misfit."""
    graph_plan = partial(
        GraphPlan, graph=graph.name, backend=graph.backend, topology=graph.topology, model=graph.model
    )

    def unchecked(note: str) -> GraphPlan:
        roles = []
        for role in graph.worker_roles():
            cfg_role = role.config
            roles.append(
                RolePlan(
                    role.name,
                    cfg_role.replicas,
                    cfg_role.tensor_parallel_size,
                    cfg_role.nodes,
                    None,
                    None,
                    None,
                )
            )
        return graph_plan(checked=False, note=note, roles=roles)

    if not graph.uses_gpus:
        return unchecked("mocker: CPU only, no GPUs to check")
    if graph.skip_capacity_check:
        return unchecked("UNCHECKED: skip_capacity_check is true")
    spec = graph.model_spec_resolved()
    if spec is None:
        raise CapacityError(
            f"graph '{graph.name}': model '{graph.model}' is not in the capacity catalog; add "
            "model_spec (params_b, layers, hidden_size, attention_heads, kv_heads, head_dim, "
            "max_context from its config.json) or set skip_capacity_check: true"
        )
    max_len = graph.effective_max_model_len() or spec.max_context
    roles: list[RolePlan] = []
    notes: list[str] = []
    warnings: list[str] = []
    failures: list[str] = []
    for role in graph.worker_roles():
        try:
            planned, warning = _plan_role(cfg, graph, role, spec, max_len)
        except CapacityError as err:
            failures.append(str(err))  # every failing role, not only the first
            continue
        roles.append(planned)
        if warning:
            warnings.append(warning)
        if planned.fit is None:
            notes.append(f"{role.name}: pool '{role.node_pool}' lists no instance types, unchecked")
    if failures:
        raise CapacityError("\n".join(failures))
    checked = all(role.fit is not None for role in roles)
    return graph_plan(checked=checked, note="; ".join(notes) or "ok", roles=roles, warnings=warnings)


def _plan_role(
    cfg: DeploymentConfig, graph: GraphConfig, role: WorkerRole, spec: ModelSpec, max_len: int
) -> tuple[RolePlan, str | None]:
    """One role's plan (and a warning), or CapacityError with the numbers and a fix."""
    config = role.config
    problem = parallelism_problem(spec, config.tensor_parallel_size)
    if problem:
        raise CapacityError(f"graph '{graph.name}': {role.name}.{problem}")
    candidates, problem = role_instance_types(cfg, role)
    if problem:
        raise CapacityError(f"graph '{graph.name}': {problem}")
    if candidates is None:
        unchecked = RolePlan(
            role.name, config.replicas, config.tensor_parallel_size, config.nodes, None, None, None
        )
        return unchecked, None
    gpus_per_pod = role.gpus_per_pod
    # Karpenter only launches types with enough GPUs for the pod; any of those may come.
    usable = [t for t in candidates if t.gpus >= gpus_per_pod] or candidates
    fits_found: list[RoleFit] = []
    for instance in usable:
        _check_host_memory(graph, role, instance)
        role_fit = fit_role(
            spec,
            instance,
            tensor_parallel=config.tensor_parallel_size,
            nodes=config.nodes,
            utilization=graph.gpu_memory_utilization,
            max_model_len=max_len,
            backend=graph.backend,
        )
        check_fit(graph, role, spec, role_fit)
        fits_found.append(role_fit)
    # Which type Karpenter launches first: the cheapest that fits (catalog prices rank them).
    cheapest = min(fits_found, key=lambda f: f.instance.on_demand_usd_per_hour)
    warning = (
        _single_node_warning(graph, role, spec, cheapest.instance, max_len) if config.nodes > 1 else None
    )
    count = _node_count(cheapest.instance, gpus_per_pod, config.replicas * config.nodes)
    pool = role_pool(cfg, role)
    regional = on_demand_usd_per_hour(cheapest.instance.name, cfg.region)
    usd: float | None
    if pool is not None and pool.capacity_types == ["reserved"]:
        usd, pricing = 0.0, "reserved"
    elif regional is None:
        usd, pricing = None, f"no {cfg.region} price"
    else:
        usd, pricing = count * regional, "on-demand"
    planned = RolePlan(
        role.name, config.replicas, config.tensor_parallel_size, config.nodes, cheapest, count, usd, pricing
    )
    return planned, warning


def _single_node_warning(
    graph: GraphConfig, role: WorkerRole, spec: ModelSpec, instance: GpuInstance, max_len: int
) -> str | None:
    """A multinode role whose model would fit one node: tensor parallelism across nodes
    all-reduces over the network on every layer, so one node is faster and cheaper."""
    tp = instance.gpus
    if parallelism_problem(spec, tp):
        return None
    trial = fit_role(
        spec,
        instance,
        tensor_parallel=tp,
        nodes=1,
        utilization=graph.gpu_memory_utilization,
        max_model_len=max_len,
        backend=graph.backend,
    )
    if not fits(trial):
        return None
    return (
        f"graph '{graph.name}': {role.name} spans {role.config.nodes} nodes but fits one "
        f"{instance.name} with tensor_parallel_size {tp} ({trial.concurrent_sequences} sequences of "
        f"{max_len:,} tokens); tensor parallelism across nodes all-reduces over the network on every "
        f"layer, so set {role.name}.nodes: 1, tensor_parallel_size: {tp} and a disagg topology"
    )
