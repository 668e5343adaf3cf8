"""Inference graphs -> one DynamoGraphDeployment (plus an optional model prefetch Job) each.

Semantics follow upstream's examples (examples/backends/*/deploy, the 1.6.1 profiler
templates and the EKS example): KV routing = frontend `DYN_ROUTER_MODE=kv` with workers
publishing KV events; disaggregation = `--disaggregation-mode prefill|decode` plus the
backend's NIXL transfer settings; multinode = `multinode.nodeCount` (Grove + KAI from the
platform). One chart per graph, so a stack can apply and delete graphs one by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_36 import k8s

from config.graphs import GraphConfig, WorkerRole, role_efa, role_instance_types
from config.images import image_uri
from config.schema import DeploymentConfig
from k8s_charts.dynamo_graph import (
    CompilationCache,
    Component,
    DynamoGraphDeployment,
    DynamoGraphDeploymentSpec,
    Multinode,
    ScalingAdapter,
)
from stacks.names import (
    FRONTEND_SERVICE_PORT,
    GPU_TAINT_KEY,
    HF_TOKEN_SECRET,
    INFERENCE_NAMESPACE,
    MODEL_CACHE_MOUNT_PATH,
    MODEL_CACHE_PVC,
    prometheus_url,
)

HF_HOME = f"{MODEL_CACHE_MOUNT_PATH}/huggingface"  # same as the prefetch Job's
EFA_RESOURCE = "vpc.amazonaws.com/efa"
# On prefill/decode pods only (our own label, not the operator's): the zone affinity must
# not follow the frontend, which runs on CPU nodes in whatever zone had room.
KV_PEER_LABEL = "dynamo-eks/kv-peers"
KV_EVENTS_PORT = 20080
SGLANG_BOOTSTRAP_PORT = 12345
PLANNER_METRICS_PORT = 9085
KVBM_DISK_PATH = "/kvbm-disk"
RUNTIME_IMAGES = {"vllm": "vllm-runtime", "sglang": "sglang-runtime", "trtllm": "tensorrtllm-runtime"}


@dataclass(frozen=True)
class GraphInputs:
    prometheus_url: str


def review_inputs(cfg: DeploymentConfig) -> GraphInputs:
    return GraphInputs(prometheus_url=prometheus_url())


def build(app: cdk8s.App, cfg: DeploymentConfig, inputs: GraphInputs) -> list[cdk8s.Chart]:
    return [graph_chart(app, cfg, graph, inputs) for graph in cfg.graphs]


def chart_id(graph: GraphConfig) -> str:
    return f"graph-{graph.name}"


def port_forward_command(graph: GraphConfig) -> str:
    return (
        f"kubectl port-forward -n {INFERENCE_NAMESPACE} svc/{graph.frontend_service()} "
        f"{FRONTEND_SERVICE_PORT}:{FRONTEND_SERVICE_PORT}"
    )


def graph_chart(
    app: cdk8s.App, cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs
) -> cdk8s.Chart:
    chart = cdk8s.Chart(app, chart_id(graph), namespace=INFERENCE_NAMESPACE, disable_resource_name_hashes=True)
    components = [frontend_component(cfg, graph)]
    if graph.planner.enabled:
        components.append(planner_component(cfg, graph, inputs))
    components.extend(worker_component(cfg, graph, role) for role in graph.worker_roles())
    DynamoGraphDeployment(
        chart,
        "graph",
        name=graph.name,
        namespace=INFERENCE_NAMESPACE,
        labels={"app.kubernetes.io/part-of": "dynamo-eks", "dynamo-eks/graph": graph.name},
        spec=DynamoGraphDeploymentSpec(
            components=components,
            backend_framework=None if graph.backend == "mocker" else graph.backend,
        ),
    )
    if graph.prefetch and graph.uses_gpus:
        from k8s_charts.model_prefetch import model_prefetch_job

        cache = cfg.platform.model_cache
        model_prefetch_job(
            chart,
            graph_name=graph.name,
            model_id=graph.model,
            image=_image(cfg, graph, RUNTIME_IMAGES[graph.backend]),
            backoff_limit=cache.prefetch_backoff_limit,
            timeout_minutes=cache.prefetch_timeout_minutes,
        )
    return chart


# -- images ----------------------------------------------------------------------------


def _image(cfg: DeploymentConfig, graph: GraphConfig, name: str, *, efa: bool = False) -> str:
    if graph.image_source is not None and graph.image_source != cfg.images.source:
        images = cfg.images.model_copy(update={"source": graph.image_source})
        cfg = cfg.model_copy(update={"images": images})
    return image_uri(cfg, name, efa=efa)


def worker_image(cfg: DeploymentConfig, graph: GraphConfig, efa: bool) -> str:
    if graph.backend == "mocker":
        return _image(cfg, graph, "dynamo-planner")
    return _image(cfg, graph, RUNTIME_IMAGES[graph.backend], efa=efa)


# -- shared pod pieces -------------------------------------------------------------------


def _cache_volume() -> k8s.Volume:
    return k8s.Volume(
        name="model-cache",
        persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name=MODEL_CACHE_PVC),
    )


def _cache_mount() -> k8s.VolumeMount:
    return k8s.VolumeMount(name="model-cache", mount_path=MODEL_CACHE_MOUNT_PATH)


def _hf_env() -> list[k8s.EnvVar]:
    return [k8s.EnvVar(name="HF_HOME", value=HF_HOME), k8s.EnvVar(name="HF_HUB_DISABLE_TELEMETRY", value="1")]


def _hf_token() -> list[k8s.EnvFromSource]:
    return [k8s.EnvFromSource(secret_ref=k8s.SecretEnvSource(name=HF_TOKEN_SECRET))]


def _q(value: str | int) -> k8s.Quantity:
    return k8s.Quantity.from_string(str(value))


def _pod_labels(graph: GraphConfig) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "dynamo-eks", "dynamo-eks/graph": graph.name}


# -- components --------------------------------------------------------------------------


def frontend_component(cfg: DeploymentConfig, graph: GraphConfig) -> Component:
    env = _hf_env()
    if graph.kv_routed:
        env.append(k8s.EnvVar(name="DYN_ROUTER_MODE", value="kv"))
    container = k8s.Container(
        name="main",
        image=_image(cfg, graph, "dynamo-frontend"),
        command=["python3", "-m", "dynamo.frontend"],
        args=["--http-port", str(FRONTEND_SERVICE_PORT)],
        env=env,
        env_from=_hf_token(),
        volume_mounts=[_cache_mount()],
        resources=k8s.ResourceRequirements(requests={"cpu": _q(2), "memory": _q("4Gi")}),
    )
    return Component(
        name="frontend",
        type="frontend",
        replicas=graph.frontend.replicas,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels=_pod_labels(graph)),
            spec=k8s.PodSpec(containers=[container], volumes=[_cache_volume()]),
        ),
    )


def planner_config(graph: GraphConfig) -> dict:
    planner = graph.planner
    roles = {role.name: role for role in graph.worker_roles()}
    config: dict = {
        "environment": "kubernetes",
        "backend": graph.backend,
        "mode": "disagg" if graph.disaggregated else "agg",
        "optimization_target": planner.optimization_target,
        "ttft_ms": planner.ttft_ms,
        "itl_ms": planner.itl_ms,
        "enable_throughput_scaling": planner.enable_throughput_scaling,
        "enable_load_scaling": planner.enable_load_scaling,
        "max_gpu_budget": planner.max_gpu_budget,
        "min_endpoint": planner.min_replicas,
        "metric_reporting_prometheus_port": PLANNER_METRICS_PORT,
    }
    if graph.disaggregated:
        config["prefill_engine_num_gpu"] = roles["prefill"].config.tensor_parallel_size
        config["decode_engine_num_gpu"] = roles["decode"].config.tensor_parallel_size
    if not planner.enable_throughput_scaling:
        # Without throughput scaling there is no performance model to bootstrap.
        config["pre_deployment_sweeping_mode"] = "none"
    return config


def planner_component(cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs) -> Component:
    container = k8s.Container(
        name="main",
        image=_image(cfg, graph, "dynamo-planner"),
        command=["python3", "-m", "dynamo.planner"],
        args=["--config", json.dumps(planner_config(graph), sort_keys=True)],
        env=[k8s.EnvVar(name="PROMETHEUS_ENDPOINT", value=inputs.prometheus_url)],
        ports=[k8s.ContainerPort(name="metrics", container_port=PLANNER_METRICS_PORT)],
        resources=k8s.ResourceRequirements(requests={"cpu": _q(1), "memory": _q("2Gi")}),
    )
    return Component(
        name="planner",
        type="planner",
        replicas=1,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels=_pod_labels(graph)),
            spec=k8s.PodSpec(containers=[container]),
        ),
    )


def worker_args(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[str]:
    """Engine arguments after `python3 -m dynamo.<backend>`."""
    config = role.config
    mode = role.disaggregation_mode
    max_len = graph.effective_max_model_len()
    publishes_kv = graph.kv_routed and mode != "decode"
    offload = graph.kv_offload
    args: list[str]
    if graph.backend == "vllm":
        args = ["--model", graph.model]
        if graph.served_model_name:
            args += ["--served-model-name", graph.served_model_name]
        args += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
        if max_len:
            args += ["--max-model-len", str(max_len)]
        args += ["--gpu-memory-utilization", str(graph.gpu_memory_utilization)]
        if mode:
            args += ["--disaggregation-mode", mode]
        if offload.enabled:
            # Dynamo's connector list: KVBM offload, plus NIXL for disaggregated transfer
            # (KVBM applies to prefill; decode only receives KV).
            connectors = {None: ["kvbm"], "prefill": ["kvbm", "nixl"], "decode": ["nixl"]}[mode]
            args += ["--connector", *connectors]
        elif mode:
            transfer: dict = {
                "kv_connector": "NixlConnector",
                "kv_role": "kv_producer" if mode == "prefill" else "kv_consumer",
            }
            if efa:
                transfer["kv_connector_extra_config"] = {"backends": ["LIBFABRIC"]}
            args += ["--kv-transfer-config", json.dumps(transfer, separators=(",", ":"))]
        if publishes_kv:
            events = {
                "publisher": "zmq",
                "topic": "kv-events",
                "endpoint": f"tcp://*:{KV_EVENTS_PORT}",
                "enable_kv_cache_events": True,
            }
            args += ["--kv-events-config", json.dumps(events, separators=(",", ":"))]
    elif graph.backend == "sglang":
        args = ["--model-path", graph.model, "--served-model-name", graph.model_name]
        args += ["--tp", str(config.tensor_parallel_size), "--page-size", "16"]
        if max_len:
            args += ["--context-length", str(max_len)]
        args += ["--mem-fraction-static", str(graph.gpu_memory_utilization)]
        if mode:
            args += [
                "--disaggregation-mode", mode,
                "--disaggregation-transfer-backend", "nixl",
                "--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT),
                "--host", "0.0.0.0",
            ]
        if offload.enabled and mode != "decode":
            args += ["--enable-hierarchical-cache", "--hicache-size", str(offload.cpu_cache_gb)]
        if publishes_kv:
            events = {"publisher": "zmq", "topic": "kv-events", "endpoint": f"tcp://*:{KV_EVENTS_PORT}"}
            args += ["--kv-events-config", json.dumps(events, separators=(",", ":"))]
    elif graph.backend == "trtllm":
        args = ["--model-path", graph.model, "--served-model-name", graph.model_name]
        args += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
        if max_len:
            args += ["--max-seq-len", str(max_len)]
        args += ["--free-gpu-memory-fraction", str(graph.gpu_memory_utilization)]
        if mode:
            args += ["--disaggregation-mode", mode]
            overrides: dict = {"cache_transceiver_config": {"backend": "NIXL"}}
            if mode == "prefill":
                overrides["disable_overlap_scheduler"] = True
            args += ["--override-engine-args", json.dumps(overrides, separators=(",", ":"), sort_keys=True)]
        if offload.enabled and mode != "decode":
            args += ["--connector", "kvbm"]
        if publishes_kv:
            args += ["--publish-kv-events"]
    else:  # mocker: simulated engine, real tokenizer, no GPU
        args = ["--model-path", graph.model, "--model-name", graph.model_name, "--speedup-ratio", "1.0"]
        if mode:
            args += ["--disaggregation-mode", mode]
    return [*args, *graph.extra_engine_args, *config.extra_engine_args]


def _efa_interfaces(cfg: DeploymentConfig, role: WorkerRole) -> int:
    """EFA devices per pod: the node's interfaces shared out by GPUs requested."""
    types, _ = role_instance_types(cfg, role)
    candidates = [t for t in types or [] if t.efa and t.gpus >= role.gpus_per_pod]
    if not candidates:
        return 1
    smallest = min(candidates, key=lambda t: t.efa_interfaces)
    return max(1, smallest.efa_interfaces * role.gpus_per_pod // smallest.gpus)


def worker_component(cfg: DeploymentConfig, graph: GraphConfig, role: WorkerRole) -> Component:
    config = role.config
    efa = role_efa(cfg, graph, role)
    env = _hf_env()
    volumes = [_cache_volume()]
    mounts = [_cache_mount()]
    requests: dict[str, k8s.Quantity] = {"ephemeral-storage": _q("2Gi")}
    limits: dict[str, k8s.Quantity] = {}
    offload = graph.kv_offload
    if offload.enabled and graph.backend in ("vllm", "trtllm") and role.disaggregation_mode != "decode":
        env.append(k8s.EnvVar(name="DYN_KVBM_CPU_CACHE_GB", value=str(offload.cpu_cache_gb)))
        if offload.disk_cache_gb:
            env += [
                k8s.EnvVar(name="DYN_KVBM_DISK_CACHE_GB", value=str(offload.disk_cache_gb)),
                k8s.EnvVar(name="DYN_KVBM_DISK_CACHE_DIR", value=KVBM_DISK_PATH),
            ]
            volumes.append(k8s.Volume(
                name="kvbm-disk",
                empty_dir=k8s.EmptyDirVolumeSource(size_limit=_q(f"{offload.disk_cache_gb}G")),
            ))
            mounts.append(k8s.VolumeMount(name="kvbm-disk", mount_path=KVBM_DISK_PATH))
            requests["ephemeral-storage"] = _q(f"{offload.disk_cache_gb + 2}G")
    if offload.enabled and role.disaggregation_mode != "decode":
        # Pinned host memory for the CPU tier is the pod's memory, not the engine's.
        requests["memory"] = _q(f"{offload.cpu_cache_gb + 16}G")
    if graph.uses_gpus:
        limits["nvidia.com/gpu"] = _q(role.gpus_per_pod)
        requests["nvidia.com/gpu"] = _q(role.gpus_per_pod)
    else:
        requests.update({"cpu": _q(1), "memory": _q("2Gi")})
    security = None
    if efa:
        count = _q(_efa_interfaces(cfg, role))
        limits[EFA_RESOURCE] = count
        requests[EFA_RESOURCE] = count
        # libfabric registers (pins) memory for RDMA.
        security = k8s.SecurityContext(capabilities=k8s.Capabilities(add=["IPC_LOCK"]))
    container = k8s.Container(
        name="main",
        image=worker_image(cfg, graph, efa),
        command=["python3", "-m", f"dynamo.{graph.backend}"],
        args=worker_args(graph, role, efa),
        env=env,
        env_from=_hf_token(),
        volume_mounts=mounts,
        resources=k8s.ResourceRequirements(requests=requests, limits=limits or None),
        security_context=security,
        working_dir="/workspace",
    )
    node_selector: dict[str, str] = {}
    if role.node_pool:
        node_selector["karpenter.sh/nodepool"] = role.node_pool
    if role.instance_type:
        node_selector["node.kubernetes.io/instance-type"] = role.instance_type
    tolerations = []
    if graph.uses_gpus:
        tolerations.append(k8s.Toleration(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule"))
    if efa:
        tolerations.append(k8s.Toleration(key=EFA_RESOURCE, operator="Exists", effect="NoSchedule"))
    affinity = None
    if graph.disaggregated and graph.uses_gpus:
        # Prefill and decode exchange KV caches (GBs): one zone keeps that traffic off
        # cross-zone links (latency, and $ per GB transferred). EFA only works within one.
        # The first worker matches its own selector, so it may land in any zone; the rest
        # follow it.
        affinity = k8s.Affinity(pod_affinity=k8s.PodAffinity(
            required_during_scheduling_ignored_during_execution=[k8s.PodAffinityTerm(
                label_selector=k8s.LabelSelector(match_labels={KV_PEER_LABEL: graph.name}),
                topology_key="topology.kubernetes.io/zone",
            )]
        ))
    spec = k8s.PodSpec(
        containers=[container],
        volumes=volumes,
        node_selector=node_selector or None,
        tolerations=tolerations or None,
        affinity=affinity,
        # Workers drain in-flight requests; give long generations time to finish.
        termination_grace_period_seconds=300 if graph.uses_gpus else 30,
    )
    return Component(
        name=role.name,
        type=role.name,  # worker | prefill | decode
        replicas=config.replicas,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(
                labels={**_pod_labels(graph), **({KV_PEER_LABEL: graph.name} if affinity else {})}
            ),
            spec=spec,
        ),
        multinode=Multinode(node_count=config.nodes) if config.nodes > 1 else None,
        compilation_cache=(
            CompilationCache(pvc_name=graph.compilation_cache_pvc) if graph.compilation_cache_pvc else None
        ),
        scaling_adapter=ScalingAdapter() if graph.planner.enabled else None,
        shared_memory_size=f"{graph.shared_memory_gib}Gi" if graph.uses_gpus else None,
    )

