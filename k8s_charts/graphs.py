"""Inference graphs -> one DynamoGraphDeployment each, plus an optional model prefetch Job
and, with monitoring, the graph's cost recording rules (k8s_charts/cost_rules.py).

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

from config.graphs import GraphConfig, WorkerRole
from config.names import (
    BUILD_FRAMEWORKS,
    FRONTEND_SERVICE_PORT,
    GPU_TAINT_KEY,
    HF_HOME,
    HF_TOKEN_SECRET,
    INFERENCE_NAMESPACE,
    MODEL_CACHE_MOUNT_PATH,
    MODEL_CACHE_PVC,
    prometheus_url,
)
from config.schema import DeploymentConfig
from k8s_charts.cost_rules import cost_rules
from k8s_charts.dynamo_graph import (
    CompilationCache,
    Component,
    DynamoGraphDeployment,
    DynamoGraphDeploymentSpec,
    Multinode,
    ScalingAdapter,
)
from k8s_charts.frontend_exposure import frontend_load_balancer
from k8s_charts.network_policies import COMPONENT_LABEL, GRAPH_LABEL, graph_network_policies
from k8s_charts.pod_security import (
    container_security_context,
    pod_security_context,
    scratch_mounts,
    scratch_volumes,
)
from k8s_charts.tracing import tracing_env
from plan.capacity import WORKER_HOST_GB, offload_host_gb
from plan.engine_args import PLANNER_METRICS_PORT, planner_config, worker_args
from plan.images import image_uri
from plan.resolve import ResolvedGraph, RolePlan, resolve_graph

EFA_RESOURCE = "vpc.amazonaws.com/efa"
# On prefill/decode pods only (our own label, not the operator's): the zone affinity must
# not follow the frontend, which runs on CPU nodes in whatever zone had room.
KV_PEER_LABEL = "dynamo-eks/kv-peers"
KVBM_DISK_PATH = "/kvbm-disk"
# KVBM serves its metrics (prefix kvbm_) on its own port when DYN_KVBM_METRICS is set; 6880 is
# its default (DYN_KVBM_METRICS_PORT, kvbm 1.6.1), named for the `kvbm` PodMonitor.
KVBM_METRICS_PORT = 6880
KVBM_METRICS_PORT_NAME = "kvbm-metrics"
# Workers' system port (DYN_SYSTEM_PORT, set by the operator), scraped as `system`
# (k8s_charts/platform_charts.py DYNAMO_MONITORS, upstream's "Set Up Metrics Collection").
WORKER_SYSTEM_PORT = 9090
# The runtime image of each engine: the same names our image build produces.
RUNTIME_IMAGES = BUILD_FRAMEWORKS


@dataclass(frozen=True)
class GraphInputs:
    prometheus_url: str
    # The account of ECR images: the config's, else the deploying stack's (a token).
    account: str


def review_inputs(cfg: DeploymentConfig) -> GraphInputs:
    return GraphInputs(prometheus_url=prometheus_url(), account=cfg.account or REVIEW_ACCOUNT)


# What `make manifests` shows for the account of a config that leaves it to the credentials.
REVIEW_ACCOUNT = "<deploying-account>"


def build(app: cdk8s.App, cfg: DeploymentConfig, inputs: GraphInputs) -> list[cdk8s.Chart]:
    return [graph_chart(app, cfg, resolve_graph(cfg, graph), inputs) for graph in cfg.graphs]


def chart_id(graph: GraphConfig) -> str:
    return f"graph-{graph.name}"


def port_forward_command(graph: GraphConfig) -> str:
    return (
        f"kubectl port-forward -n {INFERENCE_NAMESPACE} svc/{graph.frontend_service()} "
        f"{FRONTEND_SERVICE_PORT}:{FRONTEND_SERVICE_PORT}"
    )


def graph_chart(
    app: cdk8s.App, cfg: DeploymentConfig, resolved: ResolvedGraph, inputs: GraphInputs
) -> cdk8s.Chart:
    """One graph's DGD (+ prefetch Job and cost recording rules), from its resolved plan:
    placement, EFA and capacity were decided once in plan/."""
    graph = resolved.graph
    chart = cdk8s.Chart(
        app, chart_id(graph), namespace=INFERENCE_NAMESPACE, disable_resource_name_hashes=True
    )
    components = [frontend_component(cfg, graph, inputs)]
    if graph.planner.enabled:
        components.append(planner_component(cfg, graph, inputs))
    components.extend(worker_component(cfg, graph, role, inputs) for role in resolved.roles)
    # First in the manifest: the graph's pods start with their allowed flows in place.
    graph_network_policies(
        chart,
        graph,
        frontend_port=FRONTEND_SERVICE_PORT,
        metrics_ports=metrics_ports(graph, resolved) if cfg.platform.monitoring.enabled else None,
    )
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
    frontend_load_balancer(
        chart,
        graph,
        frontend_port=FRONTEND_SERVICE_PORT,
        pod_labels={GRAPH_LABEL: graph.name, COMPONENT_LABEL: "frontend"},
    )
    if graph.prefetch and graph.uses_gpus:
        from k8s_charts.model_prefetch import model_prefetch_job

        cache = cfg.platform.model_cache
        model_prefetch_job(
            chart,
            graph_name=graph.name,
            model_id=graph.model,
            image=_image(cfg, graph, inputs, RUNTIME_IMAGES[graph.backend]),
            backoff_limit=cache.prefetch_backoff_limit,
            timeout_minutes=cache.prefetch_timeout_minutes,
        )
    # Only with monitoring: the PrometheusRule CRD comes with kube-prometheus-stack.
    if cfg.platform.monitoring.enabled and graph.uses_gpus:
        cost_rules(chart, cfg, graph, resolved.capacity)
    return chart


def runs_kvbm(graph: GraphConfig, role: WorkerRole) -> bool:
    """KVBM offload (and its metrics port): vLLM and TRT-LLM workers that keep KV, not decode."""
    offload = graph.kv_offload
    return offload.enabled and graph.backend in ("vllm", "trtllm") and role.disaggregation_mode != "decode"


def metrics_ports(graph: GraphConfig, resolved: ResolvedGraph) -> dict[str, list[int]]:
    """Component -> the ports monitoring scrapes on its pods (DYNAMO_MONITORS)."""
    ports = {"frontend": [FRONTEND_SERVICE_PORT]}
    if graph.planner.enabled:
        ports["planner"] = [PLANNER_METRICS_PORT]
    for placed in resolved.roles:
        role = placed.role
        ports[role.name] = [WORKER_SYSTEM_PORT, *([KVBM_METRICS_PORT] if runs_kvbm(graph, role) else [])]
    return ports


# -- images ----------------------------------------------------------------------------


def _image(
    cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs, name: str, *, efa: bool = False
) -> str:
    if graph.image_source is not None and graph.image_source != cfg.images.source:
        images = cfg.images.model_copy(update={"source": graph.image_source})
        cfg = cfg.model_copy(update={"images": images})
    return image_uri(cfg, name, account=inputs.account, efa=efa)


def worker_image(cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs, efa: bool) -> str:
    if graph.backend == "mocker":
        return _image(cfg, graph, inputs, "dynamo-planner")
    return _image(cfg, graph, inputs, RUNTIME_IMAGES[graph.backend], efa=efa)


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


def _pod_labels(graph: GraphConfig, component: str) -> dict[str, str]:
    # The network policies (k8s_charts/network_policies.py) select on these two.
    return {"app.kubernetes.io/part-of": "dynamo-eks", GRAPH_LABEL: graph.name, COMPONENT_LABEL: component}


# -- components --------------------------------------------------------------------------


def frontend_component(cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs) -> Component:
    env = _hf_env()
    if graph.kv_routed:
        env.append(k8s.EnvVar(name="DYN_ROUTER_MODE", value="kv"))
    env += tracing_env(cfg, graph, "frontend")
    container = k8s.Container(
        name="main",
        image=_image(cfg, graph, inputs, "dynamo-frontend"),
        command=["python3", "-m", "dynamo.frontend"],
        args=["--http-port", str(FRONTEND_SERVICE_PORT)],
        env=env,
        env_from=_hf_token(),
        volume_mounts=[_cache_mount(), *scratch_mounts()],
        resources=k8s.ResourceRequirements(requests={"cpu": _q(2), "memory": _q("4Gi")}),
        security_context=container_security_context(),
    )
    return Component(
        name="frontend",
        type="frontend",
        replicas=graph.frontend.replicas,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels=_pod_labels(graph, "frontend")),
            spec=k8s.PodSpec(
                containers=[container],
                volumes=[_cache_volume(), *scratch_volumes()],
                security_context=pod_security_context(),
            ),
        ),
    )


def planner_component(cfg: DeploymentConfig, graph: GraphConfig, inputs: GraphInputs) -> Component:
    container = k8s.Container(
        name="main",
        image=_image(cfg, graph, inputs, "dynamo-planner"),
        command=["python3", "-m", "dynamo.planner"],
        args=["--config", json.dumps(planner_config(graph), sort_keys=True)],
        env=[
            k8s.EnvVar(name="PROMETHEUS_ENDPOINT", value=inputs.prometheus_url),
            *tracing_env(cfg, graph, "planner"),
        ],
        ports=[k8s.ContainerPort(name="metrics", container_port=PLANNER_METRICS_PORT)],
        resources=k8s.ResourceRequirements(requests={"cpu": _q(1), "memory": _q("2Gi")}),
        volume_mounts=scratch_mounts(),
        security_context=container_security_context(),
    )
    return Component(
        name="planner",
        type="planner",
        replicas=1,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels=_pod_labels(graph, "planner")),
            spec=k8s.PodSpec(
                containers=[container], volumes=scratch_volumes(), security_context=pod_security_context()
            ),
        ),
    )


def worker_env(graph: GraphConfig, role: WorkerRole, efa: bool) -> list[k8s.EnvVar]:
    env = _hf_env()
    mode = role.disaggregation_mode
    offload = graph.kv_offload
    if offload.enabled and graph.backend in ("vllm", "trtllm") and mode != "decode":
        env.append(k8s.EnvVar(name="DYN_KVBM_CPU_CACHE_GB", value=str(offload.cpu_cache_gb)))
        env += [
            k8s.EnvVar(name="DYN_KVBM_METRICS", value="true"),
            k8s.EnvVar(name="DYN_KVBM_METRICS_PORT", value=str(KVBM_METRICS_PORT)),
        ]
        if offload.disk_cache_gb:
            env += [
                k8s.EnvVar(name="DYN_KVBM_DISK_CACHE_GB", value=str(offload.disk_cache_gb)),
                k8s.EnvVar(name="DYN_KVBM_DISK_CACHE_DIR", value=KVBM_DISK_PATH),
            ]
    if efa and mode:
        # The NIXL backend for KV transfer over EFA, where the engine takes it from the
        # environment (SGLang 0.5.21 environ.py; TensorRT-LLM's disaggregated-serving docs).
        if graph.backend == "sglang":
            env.append(k8s.EnvVar(name="SGLANG_DISAGGREGATION_NIXL_BACKEND", value="LIBFABRIC"))
        elif graph.backend == "trtllm":
            env.append(k8s.EnvVar(name="TRTLLM_NIXL_KVCACHE_BACKEND", value="LIBFABRIC"))
    return env


def host_memory_request_gb(graph: GraphConfig, role: WorkerRole) -> int | None:
    """Pod memory request of a worker that keeps a KV tier in host memory (pinned, so it is
    the pod's memory, not the engine's); None when it keeps none."""
    offload = graph.kv_offload
    if not offload.enabled or role.disaggregation_mode == "decode":
        return None
    return offload_host_gb(graph, role) + WORKER_HOST_GB


def worker_component(
    cfg: DeploymentConfig, graph: GraphConfig, placed: RolePlan, inputs: GraphInputs
) -> Component:
    role, efa = placed.role, placed.efa
    config = role.config
    volumes = [_cache_volume(), *scratch_volumes()]
    mounts = [_cache_mount(), *scratch_mounts()]
    requests: dict[str, k8s.Quantity] = {"ephemeral-storage": _q("2Gi")}
    limits: dict[str, k8s.Quantity] = {}
    offload = graph.kv_offload
    kvbm = runs_kvbm(graph, role)
    if kvbm and offload.disk_cache_gb:
        volumes.append(
            k8s.Volume(
                name="kvbm-disk",
                empty_dir=k8s.EmptyDirVolumeSource(size_limit=_q(f"{offload.disk_cache_gb}G")),
            )
        )
        mounts.append(k8s.VolumeMount(name="kvbm-disk", mount_path=KVBM_DISK_PATH))
        requests["ephemeral-storage"] = _q(f"{offload.disk_cache_gb + 2}G")
    host_gb = host_memory_request_gb(graph, role)
    if host_gb is not None:
        requests["memory"] = _q(f"{host_gb}G")
    if graph.uses_gpus:
        limits["nvidia.com/gpu"] = _q(role.gpus_per_pod)
        requests["nvidia.com/gpu"] = _q(role.gpus_per_pod)
    else:
        requests.update({"cpu": _q(1), "memory": _q("2Gi")})
    if efa:
        count = _q(placed.efa_interfaces)
        limits[EFA_RESOURCE] = count
        requests[EFA_RESOURCE] = count
    container = k8s.Container(
        name="main",
        image=worker_image(cfg, graph, inputs, efa),
        command=["python3", "-m", f"dynamo.{graph.backend}"],
        args=worker_args(graph, role, efa),
        env=worker_env(graph, role, efa) + tracing_env(cfg, graph, role.name),
        env_from=_hf_token(),
        ports=[k8s.ContainerPort(name=KVBM_METRICS_PORT_NAME, container_port=KVBM_METRICS_PORT)]
        if kvbm
        else None,
        volume_mounts=mounts,
        resources=k8s.ResourceRequirements(requests=requests, limits=limits or None),
        # No IPC_LOCK for EFA: see k8s_charts/pod_security.py (EFA and locked memory).
        security_context=container_security_context(),
        working_dir="/workspace",
    )
    node_selector = placed.node_selector
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
        affinity = k8s.Affinity(
            pod_affinity=k8s.PodAffinity(
                required_during_scheduling_ignored_during_execution=[
                    k8s.PodAffinityTerm(
                        label_selector=k8s.LabelSelector(match_labels={KV_PEER_LABEL: graph.name}),
                        topology_key="topology.kubernetes.io/zone",
                    )
                ]
            )
        )
    spec = k8s.PodSpec(
        containers=[container],
        volumes=volumes,
        security_context=pod_security_context(),
        node_selector=node_selector or None,
        tolerations=tolerations or None,
        affinity=affinity,
        # Workers drain in-flight requests; give long generations time to finish.
        termination_grace_period_seconds=300 if graph.uses_gpus else 30,
    )
    return Component(
        name=role.name,
        type=role.name,  # worker | prefill | decode
        # A scaled role's replicas belong to the Planner (through its scaling adapter): the
        # v1beta1 webhook refuses anyone else's change, so the manifest must not claim them.
        replicas=None if graph.planner.enabled else config.replicas,
        pod_template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(
                labels={**_pod_labels(graph, role.name), **({KV_PEER_LABEL: graph.name} if affinity else {})}
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
