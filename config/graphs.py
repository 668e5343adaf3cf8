"""Inference graphs: what each DynamoGraphDeployment serves, on what, and how it scales.

A graph is one model behind one frontend. Its topology picks the worker roles: `worker`
for agg/agg_router, `prefill` + `decode` for disagg/disagg_router/multinode. Placement
(Karpenter node pool and/or instance type) may be set per graph and overridden per role.
Everything here is about one graph on its own; what needs other sections (pools exist, EFA,
capacity) is resolved once in plan/ (`plan.load_config`, `plan.resolve`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import INSTANCE_TYPE, MODEL_ID, DnsLabel, Ipv4Cidr, StrictModel
from config.catalog.dynamo_parsers import REASONING_PARSERS
from config.catalog.models import ModelSpec, find_model, reasoning_parser_for
from config.versions import DYNAMO

Backend = Literal["vllm", "sglang", "trtllm", "mocker"]
Topology = Literal["agg", "agg_router", "disagg", "disagg_router", "multinode"]
# A worker role's component name, which is also its DynamoGraphDeployment component type.
RoleName = Literal["worker", "prefill", "decode"]
AGG_TOPOLOGIES = ("agg", "agg_router")
ROUTED_TOPOLOGIES = ("agg_router", "disagg_router")


class WorkerRoleConfig(StrictModel):
    replicas: int = Field(default=1, ge=1, le=64, description="Engine instances of this role.")
    tensor_parallel_size: int = Field(
        default=1,
        ge=1,
        le=64,
        description="GPUs of one engine instance (for multinode: the total across its nodes).",
    )
    nodes: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Nodes (pods) one engine instance spans; above 1 only with topology multinode.",
    )
    node_pool: DnsLabel | None = Field(
        None, description="Karpenter node pool for this role (overrides the graph's)."
    )
    instance_type: str | None = Field(
        None, description="EC2 instance type for this role (overrides the graph's)."
    )
    extra_engine_args: list[str] = Field(
        default_factory=list, description="Extra engine flags for this role only."
    )

    @field_validator("instance_type")
    @classmethod
    def _instance_type_shape(cls, value: str | None) -> str | None:
        if value is not None and not INSTANCE_TYPE.match(value):
            raise ValueError(f"'{value}' is not an EC2 instance type; use e.g. g6e.12xlarge")
        return value


class FrontendConfig(StrictModel):
    replicas: int = Field(default=1, ge=1, le=16, description="Frontend (OpenAI API) pods.")


ALL_NAMESPACES = "*"


class FrontendIngressConfig(StrictModel):
    """Who may open the frontend's port (the graph's NetworkPolicy, k8s_charts/network_policies.py)."""

    namespaces: list[str] = Field(
        default_factory=lambda: [ALL_NAMESPACES],
        description='Namespaces whose pods may call the frontend; ["*"] = every namespace of the '
        "cluster (the default), [] = none.",
    )
    cidrs: list[Ipv4Cidr] = Field(
        default_factory=list,
        description="Address ranges (e.g. a VPC's, for a load balancer sending to pod IPs) that "
        "may call the frontend; default none.",
    )

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        if ALL_NAMESPACES in value and len(value) > 1:
            raise ValueError('"*" already means every namespace; list either "*" or namespace names')
        for name in value:
            if name != ALL_NAMESPACES and not _NAMESPACE.match(name):
                raise ValueError(f"'{name}' is not a namespace name (DNS-1123 label, at most 63 characters)")
        return value

    @field_validator("cidrs")
    @classmethod
    def _not_everywhere(cls, value: list[str]) -> list[str]:
        if any(cidr.endswith("/0") for cidr in value):
            raise ValueError(
                "a /0 range opens the frontend to every address; list the ranges clients come from"
            )
        return value


_NAMESPACE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# The one kind of load balancer a frontend may get: internal, so its addresses are private to
# the VPC (and networks routed into it). Internet-facing ones are refused, not flagged.
INTERNAL_NLB = "internal_nlb"
_PUBLIC_TYPES = ("internet_facing", "internet-facing", "external", "public", "nlb", "elb")
ACM_CERTIFICATE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")


class FrontendExposeConfig(StrictModel):
    """A load balancer in front of the frontend (k8s_charts/frontend_exposure.py). Absent = the
    frontend is reachable only inside the cluster."""

    type: str = Field(
        description='"internal_nlb": an internal Network Load Balancer in the private subnets; '
        "the only kind (internet-facing ones are refused)."
    )
    source_ranges: list[Ipv4Cidr] = Field(
        description="Client address ranges the load balancer admits (its listener and the "
        "frontend's NetworkPolicy); at least one, none /0."
    )
    tls_certificate_arn: str | None = Field(
        None,
        description="ACM certificate: a TLS listener on 443 that ends TLS at the load balancer; "
        "null = plain HTTP on 8000.",
    )

    @field_validator("type")
    @classmethod
    def _internal_only(cls, value: str) -> str:
        if value.lower() in _PUBLIC_TYPES:
            raise ValueError(
                f"'{value}' would put the frontend on the internet; only '{INTERNAL_NLB}' is "
                "offered: reach it over VPN, peering or Direct Connect and list those ranges"
            )
        if value != INTERNAL_NLB:
            raise ValueError(f"unknown load balancer type '{value}'; use '{INTERNAL_NLB}'")
        return value

    @field_validator("source_ranges")
    @classmethod
    def _ranges(cls, value: list[str]) -> list[str]:
        if not value:
            # An empty list would make the service controller open the listener to 0.0.0.0/0.
            raise ValueError("no source ranges; list the client ranges, e.g. [10.0.0.0/16] for the VPC")
        if any(cidr.endswith("/0") for cidr in value):
            raise ValueError(
                "a /0 range admits every address; list the ranges clients come from (e.g. 10.0.0.0/16)"
            )
        return value

    @field_validator("tls_certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not ACM_CERTIFICATE_ARN.match(value):
            raise ValueError(
                f"'{value}' is not an ACM certificate ARN; use "
                "arn:aws:acm:<region>:<account>:certificate/<id> (or null for plain HTTP)"
            )
        return value


class PlannerConfig(StrictModel):
    """Dynamo Planner: autoscaling of the worker roles through scaling adapters.

    Field names are ours; ``k8s_charts.graphs.planner_config`` maps them onto the keys of
    Dynamo 1.6.1's ``PlannerConfig``, and a test feeds every rendered blob to that class.
    """

    enabled: bool = Field(False, description="Add a Planner component that scales the workers.")
    optimization_target: Literal["throughput", "latency", "load", "sla"] = Field(
        "sla",
        description="sla: meet ttft_ms / itl_ms; throughput | latency: built-in queue and KV "
        "thresholds; load: the *_queue_tokens / *_kv_rate thresholds below.",
    )
    ttft_ms: float = Field(
        500.0, gt=0, le=600000, description="Time-to-first-token target (ms); optimization_target sla only."
    )
    itl_ms: float = Field(
        50.0, gt=0, le=60000, description="Inter-token latency target (ms); optimization_target sla only."
    )
    enable_throughput_scaling: bool = Field(
        False,
        description="Predictive scaling; needs profiling data, a disaggregated graph and "
        "optimization_target sla.",
    )
    enable_load_scaling: bool = Field(True, description="Reactive scaling from live engine metrics.")
    max_gpu_budget: int = Field(
        8, ge=1, le=1024, description="Most GPUs the Planner may use for this graph (cost cap)."
    )
    min_replicas: int = Field(1, ge=1, le=64, description="Fewest replicas per scaled role.")
    prefill_scale_up_queue_tokens: int | None = Field(
        None,
        ge=1,
        description="optimization_target load: add prefill workers above this many queued "
        "prefill tokens per worker.",
    )
    prefill_scale_down_queue_tokens: int | None = Field(
        None,
        ge=0,
        description="optimization_target load: remove prefill workers below this many "
        "queued prefill tokens per worker.",
    )
    decode_scale_up_kv_rate: float | None = Field(
        None,
        gt=0,
        le=100,
        description="optimization_target load: add decode workers above this KV-cache utilisation (percent).",
    )
    decode_scale_down_kv_rate: float | None = Field(
        None,
        ge=0,
        lt=100,
        description="optimization_target load: remove decode workers below this "
        "KV-cache utilisation (percent).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PlannerConfig:
        if not self.enabled:
            return self
        if self.optimization_target == "sla" and not (
            self.enable_throughput_scaling or self.enable_load_scaling
        ):
            raise ValueError(
                "optimization_target sla needs enable_throughput_scaling or "
                "enable_load_scaling; set enable_load_scaling: true"
            )
        if self.optimization_target != "sla":
            # Dynamo's PlannerConfig silently turns these off/ignores them for other targets.
            if self.enable_throughput_scaling:
                raise ValueError(
                    f"enable_throughput_scaling needs optimization_target sla (Dynamo ignores it "
                    f"for {self.optimization_target}); set optimization_target: sla or "
                    "enable_throughput_scaling: false"
                )
            stray = sorted({"ttft_ms", "itl_ms"} & self.model_fields_set)
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} apply only to optimization_target sla; remove them or set "
                    "optimization_target: sla"
                )
        thresholds = [
            "prefill_scale_up_queue_tokens",
            "prefill_scale_down_queue_tokens",
            "decode_scale_up_kv_rate",
            "decode_scale_down_kv_rate",
        ]
        if self.optimization_target != "load":
            stray = [name for name in thresholds if getattr(self, name) is not None]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} apply only to optimization_target load; remove them or set "
                    "optimization_target: load"
                )
        return self

    def load_threshold_problem(self, disaggregated: bool) -> str | None:
        """What optimization_target load is missing for this topology (Dynamo refuses to start)."""
        if not self.enabled or self.optimization_target != "load":
            return None
        pairs = [("decode_scale_up_kv_rate", "decode_scale_down_kv_rate", "50 and 20")]
        if disaggregated:
            pairs.insert(
                0, ("prefill_scale_up_queue_tokens", "prefill_scale_down_queue_tokens", "8192 and 1024")
            )
        for up, down, example in pairs:
            up_value, down_value = getattr(self, up), getattr(self, down)
            if up_value is None or down_value is None:
                return (
                    f"planner.optimization_target load needs planner.{up} and planner.{down} (e.g. {example})"
                )
            if up_value <= down_value:
                return f"planner.{up} ({up_value:g}) must be greater than planner.{down} ({down_value:g})"
        if not disaggregated:
            stray = [
                name
                for name in ("prefill_scale_up_queue_tokens", "prefill_scale_down_queue_tokens")
                if getattr(self, name) is not None
            ]
            if stray:
                return f"{', '.join('planner.' + n for n in stray)} apply only to disaggregated graphs; remove them"
        return None


class KvOffloadConfig(StrictModel):
    """KV-cache offload: Dynamo KVBM (vLLM, TRT-LLM) or SGLang HiCache (CPU tier)."""

    enabled: bool = Field(False, description="Offload KV blocks from GPU to host memory (and disk).")
    cpu_cache_gb: int = Field(
        0, ge=0, le=8192, description="Pinned host memory per worker for the CPU tier (GB)."
    )
    disk_cache_gb: int = Field(
        0, ge=0, le=65536, description="Node-local disk per worker for the disk tier (GB; vLLM, TRT-LLM)."
    )

    @model_validator(mode="after")
    def _tiers(self) -> KvOffloadConfig:
        if self.enabled and self.cpu_cache_gb == 0:
            raise ValueError(
                "kv_offload is enabled but cpu_cache_gb is 0; set cpu_cache_gb (e.g. 64): "
                "the disk tier sits behind the CPU tier"
            )
        return self


class ModelSpecConfig(StrictModel):
    """Sizes of a model the catalog does not know (from its config.json)."""

    params_b: float = Field(gt=0, le=5000, description="Parameters in billions (all experts).")
    layers: int = Field(ge=1, le=1000, description="num_hidden_layers.")
    hidden_size: int = Field(ge=1, description="hidden_size.")
    attention_heads: int = Field(ge=1, description="num_attention_heads.")
    kv_heads: int = Field(ge=1, description="num_key_value_heads.")
    head_dim: int = Field(ge=1, le=1024, description="head_dim (hidden_size / heads if absent).")
    max_context: int = Field(ge=256, le=10_000_000, description="max_position_embeddings.")
    weight_bytes: float = Field(2.0, gt=0, le=4, description="Bytes per parameter (2 bf16, 1 fp8).")
    kv_bytes: float = Field(2.0, gt=0, le=4, description="Bytes per KV-cache element.")

    def spec(self) -> ModelSpec:
        return ModelSpec(**self.model_dump())


@dataclass(frozen=True)
class WorkerRole:
    """A worker role resolved from the graph: component name/type and its settings."""

    name: RoleName
    config: WorkerRoleConfig
    node_pool: str | None
    instance_type: str | None

    @property
    def gpus_per_pod(self) -> int:
        return self.config.tensor_parallel_size // self.config.nodes

    @property
    def disaggregation_mode(self) -> Literal["prefill", "decode"] | None:
        return None if self.name == "worker" else self.name


class GraphConfig(StrictModel):
    name: DnsLabel = Field(description="DynamoGraphDeployment name; the frontend Service is <name>-frontend.")
    backend: Backend = Field("vllm", description="Engine: vllm | sglang | trtllm | mocker (CPU simulator).")
    topology: Topology = Field(
        "disagg_router", description="agg | agg_router | disagg | disagg_router | multinode."
    )
    model: str = Field(description="Hugging Face model id, e.g. deepseek-ai/DeepSeek-R1-Distill-Llama-8B.")
    served_model_name: str | None = Field(None, description="Name clients use; default: model.")
    reasoning_parser: str | None = Field(
        None,
        description="Dynamo reasoning parser that moves reasoning text out of `content` (e.g. "
        "deepseek_r1, qwen3); null = the model catalog's choice; none = off.",
    )
    max_model_len: int | None = Field(
        None,
        ge=256,
        le=10_000_000,
        description="Context length the engine starts with; null = the model's maximum.",
    )
    gpu_memory_utilization: float = Field(
        0.9,
        ge=0.1,
        le=0.98,
        description="Share of GPU memory for weights + KV cache (TRT-LLM: of what the weights leave).",
    )
    node_pool: DnsLabel | None = Field(None, description="Karpenter node pool of every worker role.")
    instance_type: str | None = Field(None, description="EC2 instance type of every worker role.")
    efa: bool | None = Field(
        None, description="EFA for KV transfer; null = on when the node pool is an EFA pool."
    )
    frontend: FrontendConfig = Field(FrontendConfig(), description="The OpenAI-compatible frontend.")
    frontend_ingress: FrontendIngressConfig = Field(
        FrontendIngressConfig(),
        description="Where the frontend's port may be reached from inside the cluster (NetworkPolicy).",
    )
    expose: FrontendExposeConfig | None = Field(
        None,
        description="An internal load balancer for the frontend (source ranges, optional TLS); "
        "null = reachable only inside the cluster.",
    )
    worker: WorkerRoleConfig | None = Field(None, description="Workers of agg / agg_router graphs.")
    prefill: WorkerRoleConfig | None = Field(None, description="Prefill workers (disagg*, multinode).")
    decode: WorkerRoleConfig | None = Field(None, description="Decode workers (disagg*, multinode).")
    extra_engine_args: list[str] = Field(
        default_factory=list, description="Extra engine flags for every worker role."
    )
    planner: PlannerConfig = Field(PlannerConfig(), description="SLA-based autoscaling (Dynamo Planner).")
    kv_offload: KvOffloadConfig = Field(KvOffloadConfig(), description="KV-cache offload (KVBM / HiCache).")
    image_source: Literal["ngc", "ecr"] | None = Field(
        None, description="ngc | ecr for this graph; null = images.source."
    )
    shared_memory_gib: int = Field(16, ge=1, le=512, description="/dev/shm per GPU worker pod (GiB).")
    compilation_cache_pvc: DnsLabel | None = Field(
        None, description="Existing PVC (inference namespace) for compiled kernels / CUDA graphs."
    )
    prefetch: bool = Field(True, description="Download the weights into the model cache with a Job first.")
    stack: int | None = Field(
        None,
        ge=1,
        le=99,
        description="Inference stack this graph lives in (1 = <env>-inference, 2 = <env>-inference-2, "
        "...); set it on every graph or none. Pinned graphs never move when others are removed.",
    )
    skip_capacity_check: bool = Field(
        False, description="Skip the GPU memory check (reported as UNCHECKED by `make plan`)."
    )
    model_spec: ModelSpecConfig | None = Field(
        None, description="Sizes of a model that is not in config/catalog/models.py."
    )

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not MODEL_ID.match(value):
            raise ValueError(
                f"'{value}' is not a Hugging Face model id; use organisation/name, e.g. "
                "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
            )
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type_shape(cls, value: str | None) -> str | None:
        return WorkerRoleConfig._instance_type_shape(value)

    @model_validator(mode="after")
    def _consistent(self) -> GraphConfig:
        problem = _graph_problem(self)
        if problem:
            raise ValueError(f"graph '{self.name}': {problem}")
        return self

    # -- derived views used by charts, capacity planner and stacks --------------------

    @property
    def role_names(self) -> tuple[RoleName, ...]:
        return ("worker",) if self.topology in AGG_TOPOLOGIES else ("prefill", "decode")

    def worker_roles(self) -> list[WorkerRole]:
        roles = []
        for name in self.role_names:
            config = getattr(self, name) or WorkerRoleConfig()
            roles.append(
                WorkerRole(
                    name=name,
                    config=config,
                    node_pool=config.node_pool or self.node_pool,
                    instance_type=config.instance_type or self.instance_type,
                )
            )
        return roles

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model

    @property
    def kv_routed(self) -> bool:
        return self.topology in ROUTED_TOPOLOGIES

    @property
    def disaggregated(self) -> bool:
        return self.topology not in AGG_TOPOLOGIES

    @property
    def multinode(self) -> bool:
        return self.topology == "multinode"

    @property
    def uses_gpus(self) -> bool:
        return self.backend != "mocker"

    def model_spec_resolved(self) -> ModelSpec | None:
        return self.model_spec.spec() if self.model_spec else find_model(self.model)

    def effective_max_model_len(self) -> int | None:
        if self.max_model_len is not None:
            return self.max_model_len
        spec = self.model_spec_resolved()
        return spec.max_context if spec else None

    def effective_reasoning_parser(self) -> str | None:
        """The parser Dynamo runs on this graph's output (None: no reasoning parsing)."""
        if self.reasoning_parser == "none" or not self.uses_gpus:
            return None
        return self.reasoning_parser or reasoning_parser_for(self.model)

    def frontend_service(self) -> str:
        """Service the Dynamo operator creates for the frontend component."""
        return f"{self.name}-frontend"

    def frontend_load_balancer_service(self) -> str:
        """Our LoadBalancer Service in front of the frontend, when `expose` is set."""
        return f"{self.name}-frontend-lb"


def _graph_problem(graph: GraphConfig) -> str | None:
    """The first inconsistency in one graph, as the message after "graph 'name': "."""
    allowed = graph.role_names
    for name in ("worker", "prefill", "decode"):
        if getattr(graph, name) is not None and name not in allowed:
            want = " and ".join(allowed)
            return f"'{name}' does not apply to topology {graph.topology}; configure {want} instead"
    roles = graph.worker_roles()
    if graph.backend == "mocker":
        if graph.multinode:
            return "the mocker backend runs on CPU and cannot span nodes; use agg or disagg"
        if graph.kv_offload.enabled:
            return "kv_offload needs a GPU engine; the mocker backend has no KV cache to offload"
        if any(role.config.tensor_parallel_size > 1 for role in roles):
            return "the mocker backend uses no GPUs; leave tensor_parallel_size at 1"
    for role in roles:
        config = role.config
        if config.nodes > 1 and not graph.multinode:
            return (
                f"{role.name}.nodes is {config.nodes} but topology is {graph.topology}; "
                "use topology: multinode to span nodes"
            )
        if config.tensor_parallel_size % config.nodes:
            return (
                f"{role.name}.tensor_parallel_size {config.tensor_parallel_size} is not a multiple "
                f"of {role.name}.nodes {config.nodes}; every node runs the same number of GPUs"
            )
        if graph.uses_gpus and not (role.node_pool or role.instance_type):
            return (
                f"{role.name} has no placement; set node_pool (a Karpenter pool) or instance_type "
                "on the graph or the role"
            )
    if graph.multinode and all(role.config.nodes == 1 for role in roles):
        return "topology multinode needs prefill.nodes or decode.nodes of 2 or more"
    if graph.kv_offload.enabled and graph.backend == "sglang" and graph.kv_offload.disk_cache_gb:
        return (
            "SGLang offloads to CPU memory (HiCache) only; set kv_offload.disk_cache_gb: 0 or use "
            "vllm/trtllm for a disk tier"
        )
    planner = graph.planner
    if planner.enabled and not graph.disaggregated and planner.enable_throughput_scaling:
        return (
            "planner throughput scaling supports only disaggregated graphs; set "
            "planner.enable_throughput_scaling: false (load scaling works for agg)"
        )
    problem = planner.load_threshold_problem(graph.disaggregated)
    if problem:
        return problem
    if planner.enabled:
        for role in roles:
            if "replicas" in role.config.model_fields_set:
                return (
                    f"{role.name}.replicas is set but the Planner owns the replicas of scaled roles "
                    f"(the operator refuses anyone else's change); remove {role.name}.replicas and "
                    "set planner.min_replicas"
                )
    parser = graph.reasoning_parser
    if parser is not None and parser != "none" and parser not in REASONING_PARSERS:
        close = difflib.get_close_matches(parser, sorted(REASONING_PARSERS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"reasoning_parser '{parser}' is not one of Dynamo {DYNAMO}'s parsers; {hint}use none or one "
            f"of {', '.join(sorted(REASONING_PARSERS)[:8])}, ... (config/catalog/dynamo_parsers.json)"
        )
    if graph.backend == "mocker" and parser not in (None, "none"):
        return "the mocker backend takes no reasoning_parser; remove it"
    spec = graph.model_spec_resolved()
    if spec and graph.max_model_len and graph.max_model_len > spec.max_context:
        return (
            f"max_model_len {graph.max_model_len} exceeds {graph.model}'s context of "
            f"{spec.max_context}; use at most {spec.max_context}"
        )
    return None
