"""What each process of a graph is started with: engine arguments per backend and the
Planner's config blob. Pure: the charts put these into pod templates, and the behaviour gate
(tests/test_dynamo_contract.py) feeds them to Dynamo 1.6.1's own parsers.

Each backend declares the flags the graph manages (`MANAGED_FLAGS`, flag -> the setting that
sets it). A builder can only emit a declared flag, and `extra_engine_args` may not repeat
one: the list of managed flags is the builders' own, never a second copy.
"""

from __future__ import annotations

import json

from config.graphs import GraphConfig, WorkerRole

KV_EVENTS_PORT = 20080
SGLANG_BOOTSTRAP_PORT = 12345
PLANNER_METRICS_PORT = 9085

_COMMON = {
    "--dyn-reasoning-parser": "reasoning_parser",
    "--disaggregation-mode": "topology",
    "--connector": "kv_offload",
}
# Flag -> the graph setting that decides it. Aliases the engines accept for the same option
# are listed too, so extra_engine_args cannot set a managed value under another name.
MANAGED_FLAGS: dict[str, dict[str, str]] = {
    "vllm": {
        **_COMMON,
        "--model": "model",
        "--served-model-name": "served_model_name",
        "--tensor-parallel-size": "tensor_parallel_size",
        "-tp": "tensor_parallel_size",
        "--max-model-len": "max_model_len",
        "--gpu-memory-utilization": "gpu_memory_utilization",
        "--device-memory-utilization": "gpu_memory_utilization",
        "--kv-transfer-config": "topology / kv_offload",
        "--kv-events-config": "topology (the *_router topologies publish KV events)",
    },
    "sglang": {
        **_COMMON,
        "--model-path": "model",
        "--model": "model",
        "--served-model-name": "served_model_name",
        "--tp": "tensor_parallel_size",
        "--tp-size": "tensor_parallel_size",
        "--tensor-parallel-size": "tensor_parallel_size",
        "--page-size": "the graph (KV events need a fixed page size)",
        "--context-length": "max_model_len",
        "--mem-fraction-static": "gpu_memory_utilization",
        "--disaggregation-transfer-backend": "topology",
        "--disaggregation-bootstrap-port": "topology",
        "--host": "topology",
        "--enable-hierarchical-cache": "kv_offload",
        "--hicache-size": "kv_offload.cpu_cache_gb",
        "--kv-events-config": "topology (the *_router topologies publish KV events)",
        "--enable-metrics": "always on (Dynamo serves SGLang's sglang:* metrics only with it)",
    },
    "trtllm": {
        **_COMMON,
        "--model": "model",
        "--model-path": "model",
        "--served-model-name": "served_model_name",
        "--tensor-parallel-size": "tensor_parallel_size",
        "--max-seq-len": "max_model_len",
        "--max-num-tokens": "the graph (chunked prefill's token budget)",
        "--free-gpu-memory-fraction": "gpu_memory_utilization",
        "--override-engine-args": "the graph's engine settings",
        "--publish-kv-events": "topology (the *_router topologies publish KV events)",
    },
    "mocker": {
        "--model-path": "model",
        "--model-name": "served_model_name",
        "--speedup-ratio": "the graph (the mocker runs at real-time speed)",
        "--disaggregation-mode": "topology",
    },
}


class Args:
    """An argv under construction that only takes flags its backend declares."""

    def __init__(self, backend: str) -> None:
        self.managed = MANAGED_FLAGS[backend]
        self.tokens: list[str] = []

    def add(self, flag: str, *values: str) -> None:
        if flag not in self.managed:
            raise ValueError(f"{flag} is not declared in MANAGED_FLAGS; declare it with its setting")
        self.tokens += [flag, *values]


def managed_flag_problem(graph: GraphConfig) -> str | None:
    """extra_engine_args that would set a flag the graph already manages."""
    managed = MANAGED_FLAGS[graph.backend]
    for role in graph.worker_roles():
        for arg in [*graph.extra_engine_args, *role.config.extra_engine_args]:
            flag = arg.split("=", 1)[0]
            if flag in managed:
                return f"extra_engine_args sets {flag}, which the graph manages; set {managed[flag]} instead"
    return None


def _compact(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _kv_events(*, vllm: bool) -> str:
    events: dict = {"publisher": "zmq", "topic": "kv-events", "endpoint": f"tcp://*:{KV_EVENTS_PORT}"}
    if vllm:
        events["enable_kv_cache_events"] = True
    return _compact(events)


KVBM_MODULE = "kvbm.vllm_integration.connector"
KVBM_CONNECTOR = {
    "kv_connector": "DynamoConnector",
    "kv_connector_module_path": KVBM_MODULE,
    "kv_role": "kv_both",
}


def _nixl_connector(role: str, efa: bool) -> dict:
    connector: dict = {"kv_connector": "NixlConnector", "kv_role": role}
    if efa:
        # NIXL's default UCX backend does not drive EFA; LIBFABRIC does.
        connector["kv_connector_extra_config"] = {"backends": ["LIBFABRIC"]}
    return connector


def vllm_kv_transfer(graph: GraphConfig, mode: str | None, efa: bool) -> dict | None:
    """`--kv-transfer-config` of a vLLM worker (Dynamo 1.6.1 refuses the old `--connector`).

    KVBM offload is vLLM's DynamoConnector; a prefill worker that offloads and also hands KV
    to decode runs both through KVBM's PdConnector (offload connector first, NIXL second);
    decode only receives KV over NIXL.
    """
    offload = graph.kv_offload.enabled
    if mode is None:
        return dict(KVBM_CONNECTOR) if offload else None
    if mode == "decode" or not offload:
        return _nixl_connector("kv_producer" if mode == "prefill" else "kv_consumer", efa)
    return {
        "kv_connector": "PdConnector",
        "kv_role": "kv_both",
        "kv_connector_module_path": KVBM_MODULE,
        "kv_connector_extra_config": {
            "connectors": [dict(KVBM_CONNECTOR), _nixl_connector("kv_producer", efa)]
        },
    }


# TRT-LLM: chunked prefill lets prompts longer than one iteration's token budget through; the
# budget itself stays at TRT-LLM's default, written out so a reviewer sees it.
TRTLLM_MAX_NUM_TOKENS = 8192


def _reasoning(args: Args, graph: GraphConfig) -> None:
    parser = graph.effective_reasoning_parser()
    if parser:
        args.add("--dyn-reasoning-parser", parser)


def _vllm_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    mode = role.disaggregation_mode
    max_len = graph.effective_max_model_len()
    args = Args("vllm")
    args.add("--model", graph.model)
    if graph.served_model_name:
        args.add("--served-model-name", graph.served_model_name)
    args.add("--tensor-parallel-size", str(role.config.tensor_parallel_size))
    if max_len:
        args.add("--max-model-len", str(max_len))
    args.add("--gpu-memory-utilization", str(graph.gpu_memory_utilization))
    if mode:
        args.add("--disaggregation-mode", mode)
    transfer = vllm_kv_transfer(graph, mode, efa)
    if transfer:
        args.add("--kv-transfer-config", _compact(transfer))
    if graph.kv_routed and mode != "decode":
        args.add("--kv-events-config", _kv_events(vllm=True))
    _reasoning(args, graph)
    return args.tokens


def _sglang_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    mode = role.disaggregation_mode
    max_len = graph.effective_max_model_len()
    args = Args("sglang")
    args.add("--model-path", graph.model)
    args.add("--served-model-name", graph.model_name)
    args.add("--tp", str(role.config.tensor_parallel_size))
    args.add("--page-size", "16")
    if max_len:
        args.add("--context-length", str(max_len))
    args.add("--mem-fraction-static", str(graph.gpu_memory_utilization))
    # Dynamo 1.6.1 registers SGLang's own sglang:* metrics on its metrics endpoint only when
    # the engine runs with it (dynamo/sglang/publisher.py); the SGLang and disaggregation
    # dashboards read them.
    args.add("--enable-metrics")
    if mode:
        args.add("--disaggregation-mode", mode)
        args.add("--disaggregation-transfer-backend", "nixl")
        args.add("--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT))
        args.add("--host", "0.0.0.0")
    if graph.kv_offload.enabled and mode != "decode":
        # Per tensor-parallel rank: each rank keeps its own host pool of this size.
        args.add("--enable-hierarchical-cache")
        args.add("--hicache-size", str(graph.kv_offload.cpu_cache_gb))
    if graph.kv_routed and mode != "decode":
        args.add("--kv-events-config", _kv_events(vllm=False))
    _reasoning(args, graph)
    return args.tokens


def trtllm_engine_overrides(mode: str | None) -> dict:
    """`--override-engine-args` of a TRT-LLM worker (LlmArgs keys of the pinned TRT-LLM)."""
    overrides: dict = {}
    if mode != "decode":
        overrides["enable_chunked_prefill"] = True
    if mode:
        overrides["cache_transceiver_config"] = {"backend": "NIXL"}
    if mode == "prefill":
        overrides["disable_overlap_scheduler"] = True
    else:
        overrides["cuda_graph_config"] = {"enable_padding": True}
    return overrides


def _trtllm_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    mode = role.disaggregation_mode
    max_len = graph.effective_max_model_len()
    args = Args("trtllm")
    args.add("--model", graph.model)
    args.add("--served-model-name", graph.model_name)
    args.add("--tensor-parallel-size", str(role.config.tensor_parallel_size))
    if max_len:
        args.add("--max-seq-len", str(max_len))
    args.add("--max-num-tokens", str(TRTLLM_MAX_NUM_TOKENS))
    args.add("--free-gpu-memory-fraction", str(graph.gpu_memory_utilization))
    if mode:
        args.add("--disaggregation-mode", mode)
    args.add("--override-engine-args", _compact(trtllm_engine_overrides(mode)))
    if graph.kv_offload.enabled and mode != "decode":
        args.add("--connector", "kvbm")
    if graph.kv_routed and mode != "decode":
        args.add("--publish-kv-events")
    _reasoning(args, graph)
    return args.tokens


def _mocker_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    # Simulated engine, real tokenizer, no GPU.
    args = Args("mocker")
    args.add("--model-path", graph.model)
    args.add("--model-name", graph.model_name)
    args.add("--speedup-ratio", "1.0")
    if role.disaggregation_mode:
        args.add("--disaggregation-mode", role.disaggregation_mode)
    return args.tokens


ARG_BUILDERS = {"vllm": _vllm_args, "sglang": _sglang_args, "trtllm": _trtllm_args, "mocker": _mocker_args}


def worker_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    """Engine arguments after `python3 -m dynamo.<backend>`."""
    args = ARG_BUILDERS[graph.backend](graph, role, efa)
    return [*args, *graph.extra_engine_args, *role.config.extra_engine_args]


def planner_config(graph: GraphConfig) -> dict:
    """The blob `python -m dynamo.planner --config` reads (Dynamo 1.6.1 PlannerConfig keys)."""
    planner = graph.planner
    roles = {role.name: role for role in graph.worker_roles()}
    config: dict = {
        "environment": "kubernetes",
        "backend": graph.backend,
        "mode": "disagg" if graph.disaggregated else "agg",
        "optimization_target": planner.optimization_target,
        "enable_throughput_scaling": planner.enable_throughput_scaling,
        "enable_load_scaling": planner.enable_load_scaling,
        "max_gpu_budget": planner.max_gpu_budget,
        "min_endpoint": planner.min_replicas,
        "metric_reporting_prometheus_port": PLANNER_METRICS_PORT,
    }
    if planner.optimization_target == "sla":
        config["ttft_ms"] = planner.ttft_ms
        config["itl_ms"] = planner.itl_ms
    if planner.optimization_target == "load":
        for key in LOAD_THRESHOLD_KEYS:
            value = getattr(planner, key)
            if value is not None:
                config[key] = value
    if graph.disaggregated:
        config["prefill_engine_num_gpu"] = roles["prefill"].config.tensor_parallel_size
        config["decode_engine_num_gpu"] = roles["decode"].config.tensor_parallel_size
    if not planner.enable_throughput_scaling:
        # Without throughput scaling there is no performance model to bootstrap.
        config["pre_deployment_sweeping_mode"] = "none"
    return config


LOAD_THRESHOLD_KEYS = (
    "prefill_scale_up_queue_tokens",
    "prefill_scale_down_queue_tokens",
    "decode_scale_up_kv_rate",
    "decode_scale_down_kv_rate",
)
