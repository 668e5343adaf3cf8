"""Graph configs -> DynamoGraphDeployments: every example renders, validates against the
DGD schema and the Kubernetes PodTemplateSpec schema, and follows upstream's semantics for
its topology and backend (examples/backends/*/deploy and the 1.6.1 profiler templates)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cdk8s
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from config import ConfigError
from config.loader import describe_errors
from config.schema import DeploymentConfig
from k8s_charts import graphs as graph_charts
from k8s_charts.registry import render
from plan import load_config, plan_problems
from plan.graphs import has_multinode
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.tools.configs import MINIMAL
from tests.tools.k8s_schema import schema_errors

EXAMPLES = sorted((REPO / "config" / "examples" / "graphs").glob("*.yaml"))
BASE = MINIMAL


@functools.cache
def rendered(path: Path) -> list[dict]:
    cfg = load_config(path)
    app = cdk8s.App()
    return [
        o for chart in graph_charts.build(app, cfg, graph_charts.review_inputs(cfg)) for o in chart.to_json()
    ]


def dgds(path: Path) -> list[dict]:
    return [o for o in rendered(path) if o["kind"] == "DynamoGraphDeployment"]


def component(dgd: dict, name: str) -> dict:
    (found,) = [c for c in dgd["spec"]["components"] if c["name"] == name]
    return found


def main(comp: dict) -> dict:
    (container,) = [c for c in comp["podTemplate"]["spec"]["containers"] if c["name"] == "main"]
    return container


def env(comp: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in main(comp).get("env", [])}


def flag(comp: dict, name: str) -> str | None:
    args = main(comp).get("args", [])
    return args[args.index(name) + 1] if name in args else None


def example(name: str) -> dict:
    (dgd,) = dgds(REPO / "config" / "examples" / "graphs" / f"{name}.yaml")
    return dgd


# -- every example -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DEFAULT_CONFIG, *EXAMPLES], ids=lambda p: p.stem)
def test_example_renders_valid_objects(path):
    objects = rendered(path)
    assert any(o["kind"] == "DynamoGraphDeployment" for o in objects)
    assert schema_errors(objects) == []


def test_examples_cover_every_topology_and_backend():
    shapes = {(g.backend, g.topology) for p in EXAMPLES for g in load_config(p).graphs}
    for topology in ("agg", "agg_router", "disagg", "disagg_router", "multinode"):
        assert ("vllm", topology) in shapes
    for backend in ("sglang", "trtllm"):
        assert {(backend, "agg"), (backend, "disagg")} <= shapes
    graphs = [g for p in EXAMPLES for g in load_config(p).graphs]
    assert any(g.planner.enabled for g in graphs)
    assert any(g.kv_offload.enabled for g in graphs)
    assert any(g.backend == "mocker" for g in graphs)


def test_default_is_one_disagg_router_graph():
    (graph,) = load_config(DEFAULT_CONFIG).graphs
    assert (graph.backend, graph.topology, graph.model) == (
        "vllm",
        "disagg_router",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    )


def test_make_manifests_renders_graphs():
    cfg = load_config(DEFAULT_CONFIG)
    kinds = [o["kind"] for o in render(cfg)["graphs"]]
    # The cost recording rules come with monitoring, which the default config turns on.
    assert kinds == ["NetworkPolicy"] * 6 + ["DynamoGraphDeployment", "Job", "PrometheusRule"]


# -- upstream semantics per topology -------------------------------------------------------


def test_agg_matches_upstream():
    dgd = example("vllm-agg")
    assert [(c["name"], c["type"]) for c in dgd["spec"]["components"]] == [
        ("frontend", "frontend"),
        ("worker", "worker"),
    ]
    worker = component(dgd, "worker")
    assert main(worker)["command"] == ["python3", "-m", "dynamo.vllm"]
    assert flag(worker, "--model") == "Qwen/Qwen3-8B"
    assert "DYN_ROUTER_MODE" not in env(component(dgd, "frontend"))
    assert flag(worker, "--disaggregation-mode") is None and flag(worker, "--kv-events-config") is None
    assert dgd["spec"]["backendFramework"] == "vllm"


def test_agg_router_matches_upstream():
    dgd = example("vllm-agg-router")
    assert env(component(dgd, "frontend"))["DYN_ROUTER_MODE"] == "kv"
    events = json.loads(flag(component(dgd, "worker"), "--kv-events-config"))
    assert events == {
        "publisher": "zmq",
        "topic": "kv-events",
        "endpoint": "tcp://*:20080",
        "enable_kv_cache_events": True,
    }
    assert component(dgd, "worker")["replicas"] == 2


@pytest.mark.parametrize("name,routed", [("vllm-disagg", False), ("vllm-disagg-router", True)])
def test_disagg_matches_upstream(name, routed):
    dgd = example(name)
    assert [c["type"] for c in dgd["spec"]["components"]] == ["frontend", "prefill", "decode"]
    prefill, decode = component(dgd, "prefill"), component(dgd, "decode")
    assert flag(prefill, "--disaggregation-mode") == "prefill"
    assert flag(decode, "--disaggregation-mode") == "decode"
    assert json.loads(flag(prefill, "--kv-transfer-config")) == {
        "kv_connector": "NixlConnector",
        "kv_role": "kv_producer",
    }
    assert json.loads(flag(decode, "--kv-transfer-config")) == {
        "kv_connector": "NixlConnector",
        "kv_role": "kv_consumer",
    }
    assert (env(component(dgd, "frontend")).get("DYN_ROUTER_MODE") == "kv") == routed
    # Upstream's disagg_router publishes KV events from prefill only.
    assert (flag(prefill, "--kv-events-config") is not None) == routed
    assert flag(decode, "--kv-events-config") is None
    # KV moves between prefill and decode: both stay in one zone.
    affinity = prefill["podTemplate"]["spec"]["affinity"]["podAffinity"]
    assert (
        affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"]
        == "topology.kubernetes.io/zone"
    )


def test_multinode_on_p5_with_efa():
    dgd = example("vllm-multinode-405b-p5-efa")
    for name in ("prefill", "decode"):
        comp = component(dgd, name)
        container = main(comp)
        assert comp["multinode"] == {"nodeCount": 2}
        assert flag(comp, "--tensor-parallel-size") == "16"
        # TP 16 over 2 nodes: 8 GPUs and all 32 EFA interfaces of each p5.48xlarge.
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
        assert container["image"].endswith("/vllm-runtime:1.6.1-efa")
        # IPC_LOCK would not be effective for uid 1000 (k8s_charts/pod_security.py).
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        transfer = json.loads(flag(comp, "--kv-transfer-config"))
        assert transfer["kv_connector_extra_config"] == {"backends": ["LIBFABRIC"]}
        assert comp["podTemplate"]["spec"]["nodeSelector"] == {"karpenter.sh/nodepool": "gpu-p5"}
    assert has_multinode(load_config(REPO / "config/examples/graphs/vllm-multinode-405b-p5-efa.yaml").graphs)
    assert not has_multinode(load_config(DEFAULT_CONFIG).graphs)


def test_sglang_flags():
    agg = component(example("sglang-agg"), "worker")
    assert main(agg)["command"] == ["python3", "-m", "dynamo.sglang"]
    assert flag(agg, "--model-path") == "Qwen/Qwen3-8B" and flag(agg, "--tp") == "1"
    assert flag(agg, "--mem-fraction-static") == "0.9"
    prefill = component(example("sglang-disagg"), "prefill")
    assert flag(prefill, "--disaggregation-mode") == "prefill"
    assert flag(prefill, "--disaggregation-transfer-backend") == "nixl"
    assert flag(prefill, "--disaggregation-bootstrap-port") == "12345"


def test_trtllm_flags():
    agg = component(example("trtllm-agg"), "worker")
    assert main(agg)["command"] == ["python3", "-m", "dynamo.trtllm"]
    assert main(agg)["image"] == "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1"
    assert flag(agg, "--free-gpu-memory-fraction") == "0.85"
    dgd = example("trtllm-disagg")
    prefill, decode = component(dgd, "prefill"), component(dgd, "decode")
    assert flag(prefill, "--disaggregation-mode") == "prefill"
    assert json.loads(flag(prefill, "--override-engine-args"))["cache_transceiver_config"] == {
        "backend": "NIXL"
    }
    assert flag(decode, "--disaggregation-mode") == "decode"


def test_planner_graph():
    dgd = example("planner")
    planner = component(dgd, "planner")
    assert planner["type"] == "planner"
    assert main(planner)["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.6.1"
    assert main(planner)["command"] == ["python3", "-m", "dynamo.planner"]
    config = json.loads(flag(planner, "--config"))
    assert config["environment"] == "kubernetes" and config["backend"] == "vllm"
    assert (config["ttft_ms"], config["itl_ms"], config["mode"]) == (500, 50, "disagg")
    assert env(planner)["PROMETHEUS_ENDPOINT"].startswith(
        "http://kube-prometheus-stack-prometheus.monitoring"
    )
    for name in ("prefill", "decode"):
        assert component(dgd, name)["scalingAdapter"] == {}
    assert "scalingAdapter" not in component(dgd, "frontend")


def test_kv_offload_graph():
    worker = component(example("kv-offload"), "worker")
    # Dynamo 1.6.1's vLLM worker refuses --connector; KVBM is vLLM's DynamoConnector.
    assert flag(worker, "--connector") is None
    assert json.loads(flag(worker, "--kv-transfer-config")) == {
        "kv_connector": "DynamoConnector",
        "kv_connector_module_path": "kvbm.vllm_integration.connector",
        "kv_role": "kv_both",
    }
    assert env(worker)["DYN_KVBM_CPU_CACHE_GB"] == "64"
    assert env(worker)["DYN_KVBM_DISK_CACHE_GB"] == "200"
    volumes = {v["name"]: v for v in worker["podTemplate"]["spec"]["volumes"]}
    assert volumes["kvbm-disk"]["emptyDir"] == {"sizeLimit": "200G"}
    assert main(worker)["resources"]["requests"]["memory"] == "80G"


def render_graph(tmp_path, graph_config: dict, **top) -> dict:
    # A new file each time: rendered() caches by path.
    path = tmp_path / f"graph-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "graphs": [graph_config]}))
    (dgd,) = [o for o in rendered(path) if o["kind"] == "DynamoGraphDeployment"]
    return dgd


def test_kv_offload_disaggregated_vllm_on_efa(tmp_path):
    """Prefill offloads through KVBM and hands KV to decode over NIXL (LIBFABRIC on EFA)."""
    dgd = render_graph(
        tmp_path,
        graph(
            topology="disagg",
            model="meta-llama/Llama-3.1-70B-Instruct",
            node_pool="gpu-p5",
            prefill={"tensor_parallel_size": 8},
            decode={"tensor_parallel_size": 8},
            kv_offload={"enabled": True, "cpu_cache_gb": 256},
        ),
    )
    prefill = json.loads(flag(component(dgd, "prefill"), "--kv-transfer-config"))
    assert prefill["kv_connector"] == "PdConnector"
    first, second = prefill["kv_connector_extra_config"]["connectors"]
    assert first["kv_connector"] == "DynamoConnector"
    assert second == {
        "kv_connector": "NixlConnector",
        "kv_role": "kv_producer",
        "kv_connector_extra_config": {"backends": ["LIBFABRIC"]},
    }
    decode = json.loads(flag(component(dgd, "decode"), "--kv-transfer-config"))
    assert decode == {
        "kv_connector": "NixlConnector",
        "kv_role": "kv_consumer",
        "kv_connector_extra_config": {"backends": ["LIBFABRIC"]},
    }
    assert "DYN_KVBM_CPU_CACHE_GB" not in env(component(dgd, "decode"))


def test_efa_kv_transport_per_backend(tmp_path):
    base = {
        "topology": "disagg",
        "model": "meta-llama/Llama-3.1-70B-Instruct",
        "node_pool": "gpu-p5",
        "prefill": {"tensor_parallel_size": 8},
        "decode": {"tensor_parallel_size": 8},
    }
    sglang = render_graph(tmp_path, graph(backend="sglang", **base))
    trtllm = render_graph(tmp_path, graph(backend="trtllm", **base))
    for name in ("prefill", "decode"):
        assert env(component(sglang, name))["SGLANG_DISAGGREGATION_NIXL_BACKEND"] == "LIBFABRIC"
        assert env(component(trtllm, name))["TRTLLM_NIXL_KVCACHE_BACKEND"] == "LIBFABRIC"
    plain = render_graph(tmp_path, graph(backend="sglang", **{**base, "efa": False}))
    assert "SGLANG_DISAGGREGATION_NIXL_BACKEND" not in env(component(plain, "prefill"))


def test_efa_pool_leaves_pods_too_small_for_an_interface_without_efa(tmp_path):
    """g6e.12xlarge shares one EFA interface among 4 GPUs: a 1-GPU pod gets no EFA (auto)."""
    pools = {
        "karpenter": {
            "enable_custom_karpenter_nodepools": True,
            "custom_nodepools": [{"name": "l40s-efa", "instance_types": ["g6e.12xlarge"], "efa": True}],
        }
    }
    small = render_graph(tmp_path, graph(node_pool="l40s-efa"), **pools)
    assert "vpc.amazonaws.com/efa" not in json.dumps(component(small, "worker"))
    whole = render_graph(tmp_path, graph(node_pool="l40s-efa", worker={"tensor_parallel_size": 4}), **pools)
    assert main(component(whole, "worker"))["resources"]["limits"]["vpc.amazonaws.com/efa"] == "1"


def test_sglang_hicache_host_memory_is_per_tensor_parallel_rank(tmp_path):
    dgd = render_graph(
        tmp_path,
        graph(
            backend="sglang",
            instance_type="g6e.12xlarge",
            worker={"tensor_parallel_size": 4},
            kv_offload={"enabled": True, "cpu_cache_gb": 32},
        ),
    )
    worker = component(dgd, "worker")
    assert flag(worker, "--hicache-size") == "32"
    assert main(worker)["resources"]["requests"]["memory"] == f"{32 * 4 + 16}G"


def test_trtllm_takes_long_prompts():
    agg = component(example("trtllm-agg"), "worker")
    assert flag(agg, "--model") and flag(agg, "--model-path") is None
    assert flag(agg, "--max-num-tokens") == "8192"
    overrides = json.loads(flag(agg, "--override-engine-args"))
    assert overrides["enable_chunked_prefill"] is True
    assert overrides["cuda_graph_config"] == {"enable_padding": True}
    prefill = json.loads(flag(component(example("trtllm-disagg"), "prefill"), "--override-engine-args"))
    assert prefill["enable_chunked_prefill"] is True and prefill["disable_overlap_scheduler"] is True
    decode = json.loads(flag(component(example("trtllm-disagg"), "decode"), "--override-engine-args"))
    assert "enable_chunked_prefill" not in decode and decode["cache_transceiver_config"] == {
        "backend": "NIXL"
    }


def test_reasoning_models_get_a_reasoning_parser(tmp_path):
    r1 = component(example("vllm-disagg-router"), "decode")
    assert flag(r1, "--dyn-reasoning-parser") == "deepseek_r1"
    assert flag(component(example("sglang-agg"), "worker"), "--dyn-reasoning-parser") == "qwen3"
    off = render_graph(tmp_path, graph(reasoning_parser="none"))
    assert flag(component(off, "worker"), "--dyn-reasoning-parser") is None
    llama = render_graph(tmp_path, graph(model="meta-llama/Llama-3.1-8B-Instruct"))
    assert flag(component(llama, "worker"), "--dyn-reasoning-parser") is None


def test_planner_scaled_roles_never_claim_replicas(tmp_path):
    """The operator's webhook refuses anyone but the operator changing a scaled role's
    replicas; a later deploy with unrelated changes must not claim the field either."""
    base = graph(topology="disagg", planner={"enabled": True, "min_replicas": 2})
    first = render_graph(tmp_path, base)
    second = render_graph(tmp_path, {**base, "max_model_len": 4096, "gpu_memory_utilization": 0.85})
    for dgd in (first, second):
        for name in ("prefill", "decode"):
            comp = component(dgd, name)
            assert "replicas" not in comp and comp["scalingAdapter"] == {}
        assert component(dgd, "frontend")["replicas"] == 1
    assert flag(component(first, "prefill"), "--max-model-len") != flag(
        component(second, "prefill"), "--max-model-len"
    )


def test_mocker_hello_world_needs_no_gpu():
    dgd = example("mocker-hello-world")
    worker = component(dgd, "worker")
    assert main(worker)["command"] == ["python3", "-m", "dynamo.mocker"]
    assert main(worker)["image"] == "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.6.1"
    assert "nvidia.com/gpu" not in json.dumps(worker)
    assert "backendFramework" not in dgd["spec"]
    kinds = [o["kind"] for o in rendered(REPO / "config/examples/graphs/mocker-hello-world.yaml")]
    assert [k for k in kinds if k != "NetworkPolicy"] == ["DynamoGraphDeployment"]  # no weights to prefetch


def test_every_gpu_worker_has_the_basics():
    for path in [DEFAULT_CONFIG, *EXAMPLES]:
        for dgd in dgds(path):
            for comp in dgd["spec"]["components"]:
                container = main(comp)
                spec = comp["podTemplate"]["spec"]
                assert {"secretRef": {"name": "hf-token-secret"}} in container.get("envFrom", []) or comp[
                    "type"
                ] == "planner"
                if comp["type"] in ("worker", "prefill", "decode") and dgd["spec"].get("backendFramework"):
                    assert env(comp)["HF_HOME"] == "/model-cache/huggingface"
                    assert {
                        "name": "model-cache",
                        "persistentVolumeClaim": {"claimName": "model-cache"},
                    } in spec["volumes"]
                    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                        "tolerations"
                    ]
                    assert spec["nodeSelector"]
                    assert comp["sharedMemorySize"] == "16Gi"


def test_ecr_image_source_per_graph(tmp_path):
    data = yaml.safe_load((REPO / "config/examples/graphs/vllm-agg.yaml").read_text())
    data["account"] = "111122223333"
    data["graphs"][0]["image_source"] = "ecr"
    path = tmp_path / "ecr.yaml"
    path.write_text(yaml.safe_dump(data))
    (dgd,) = [o for o in rendered(path) if o["kind"] == "DynamoGraphDeployment"]
    assert main(component(dgd, "worker"))["image"] == (
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/dynamo-dev/vllm-runtime:1.6.1"
    )


# -- graph config errors ---------------------------------------------------------------------


def graph(**overrides) -> dict:
    return {
        "name": "g",
        "topology": "agg",
        "model": "Qwen/Qwen3-8B",
        "max_model_len": 8192,
        "node_pool": "gpu-g6e",
        **overrides,
    }


CASES = {
    "role for other topology": (
        graph(prefill={}),
        "graphs.0",
        "'prefill' does not apply to topology agg; configure worker",
    ),
    "nodes without multinode": (
        graph(worker={"nodes": 2, "tensor_parallel_size": 2}),
        "graphs.0",
        "use topology: multinode",
    ),
    "multinode without nodes": (
        graph(topology="multinode"),
        "graphs.0",
        "needs prefill.nodes or decode.nodes of 2 or more",
    ),
    "no placement": (graph(node_pool=None), "graphs.0", "set node_pool (a Karpenter pool) or instance_type"),
    "managed flag": (
        graph(extra_engine_args=["--tensor-parallel-size", "2"]),
        "graph 'g'",
        "set tensor_parallel_size instead",
    ),
    "managed flag under an alias": (
        graph(worker={"extra_engine_args": ["-tp", "2"]}),
        "graph 'g'",
        "set tensor_parallel_size instead",
    ),
    "bad name": (graph(name="My_Graph"), "graphs.0.name", "not a DNS-1123 label"),
    "bad model id": (graph(model="llama"), "graphs.0.model", "not a Hugging Face model id"),
    "unknown backend": (graph(backend="tgi"), "graphs.0.backend", "got 'tgi'"),
    "typo": (graph(toplogy="agg"), "graphs.0.toplogy", "did you mean 'topology'"),
    "too long context": (graph(max_model_len=131072), "graphs.0", "exceeds Qwen/Qwen3-8B's context of 40960"),
    "offload without cpu": (graph(kv_offload={"enabled": True}), "kv_offload", "set cpu_cache_gb"),
    "mocker multinode": (
        graph(backend="mocker", topology="multinode", prefill={"nodes": 2}),
        "graphs.0",
        "cannot span nodes",
    ),
    "duplicate": (None, "(top level)", "defined twice"),
    "cpu pool for gpu": (graph(node_pool="cpu"), "graph 'g'", "has no GPU instance types"),
    "efa on non-efa types": (graph(efa=True), "graph 'g'", "without EFA"),
    "planner throughput agg": (
        graph(planner={"enabled": True, "enable_throughput_scaling": True}),
        "graphs.0",
        "supports only disaggregated",
    ),
    "planner load without thresholds": (
        graph(planner={"enabled": True, "optimization_target": "load"}),
        "graphs.0",
        "needs planner.decode_scale_up_kv_rate and planner.decode_scale_down_kv_rate",
    ),
    "planner load disagg without prefill thresholds": (
        graph(
            topology="disagg",
            planner={
                "enabled": True,
                "optimization_target": "load",
                "decode_scale_up_kv_rate": 60,
                "decode_scale_down_kv_rate": 20,
            },
        ),
        "graphs.0",
        "needs planner.prefill_scale_up_queue_tokens",
    ),
    "planner load thresholds inverted": (
        graph(
            planner={
                "enabled": True,
                "optimization_target": "load",
                "decode_scale_up_kv_rate": 20,
                "decode_scale_down_kv_rate": 50,
            }
        ),
        "graphs.0",
        "must be greater than planner.decode_scale_down_kv_rate",
    ),
    "planner thresholds without load": (
        graph(planner={"enabled": True, "decode_scale_up_kv_rate": 60}),
        "planner",
        "apply only to optimization_target load",
    ),
    "planner throughput scaling without sla": (
        graph(
            topology="disagg",
            planner={"enabled": True, "optimization_target": "throughput", "enable_throughput_scaling": True},
        ),
        "planner",
        "needs optimization_target sla",
    ),
    "planner ttft without sla": (
        graph(planner={"enabled": True, "optimization_target": "latency", "ttft_ms": 200}),
        "planner",
        "apply only to optimization_target sla",
    ),
    "planner and role replicas": (
        graph(planner={"enabled": True}, worker={"replicas": 2}),
        "graphs.0",
        "the Planner owns the replicas",
    ),
    "unknown reasoning parser": (
        graph(reasoning_parser="deepseek-r1"),
        "graphs.0",
        "is not one of Dynamo 1.6.1's parsers",
    ),
    "efa pod smaller than an interface": (
        graph(efa=True, instance_type="g6e.12xlarge", node_pool=None),
        "graph 'g'",
        "tensor_parallel_size to at least 4 or efa: false",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_graph_gives_one_line(tmp_path, case):
    item, field, fix = CASES[case]
    graphs = [graph(), graph()] if item is None else [item]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "graphs": graphs}))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    (line,) = raised.value.lines
    assert fix in line, line
    if field != "(top level)":
        assert field in line, line


# -- generated configs: a valid CR or one line, never a traceback ----------------------------

MODELS = [
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-8B",
    "meta-llama/Llama-3.1-70B-Instruct",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "acme/unknown-model",
]
role = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.integers(0, 4),
        "tensor_parallel_size": st.sampled_from([1, 2, 3, 4, 8, 16]),
        "nodes": st.integers(1, 3),
        "instance_type": st.sampled_from(
            ["g6e.xlarge", "g6e.12xlarge", "g6.12xlarge", "p5.48xlarge", "m7i.large", "bogus"]
        ),
    },
)
graph_strategy = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True),
        "backend": st.sampled_from(["vllm", "sglang", "trtllm", "mocker"]),
        "topology": st.sampled_from(["agg", "agg_router", "disagg", "disagg_router", "multinode"]),
        "model": st.sampled_from(MODELS),
    },
    optional={
        "max_model_len": st.sampled_from([256, 4096, 32768, 131072, 200000]),
        "node_pool": st.sampled_from(["gpu-g6", "gpu-g6e", "gpu-p5", "cpu", "nope"]),
        "gpu_memory_utilization": st.floats(0.05, 1.0),
        "worker": role,
        "prefill": role,
        "decode": role,
        "efa": st.booleans(),
        "planner": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={"enable_throughput_scaling": st.booleans(), "enable_load_scaling": st.booleans()},
        ),
        "kv_offload": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={"cpu_cache_gb": st.integers(0, 300), "disk_cache_gb": st.integers(0, 500)},
        ),
        "skip_capacity_check": st.booleans(),
        "image_source": st.sampled_from(["ngc", "ecr"]),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_strategy)
def test_generated_graphs_render_valid_crs_or_fail_in_one_line(generated):
    data = {**BASE, "graphs": [generated]}
    try:
        cfg = DeploymentConfig.model_validate(data)
    except ValidationError as err:
        lines = describe_errors(Path("config.yaml"), err)
        assert lines and all("\n" not in line and line.startswith("config.yaml: ") for line in lines)
        return
    problems = plan_problems(cfg)
    if problems:  # the plan cannot be resolved: one line per failing graph
        assert all(line and "\n" not in line for line in problems)
        return
    app = cdk8s.App()
    objects = [o for c in graph_charts.build(app, cfg, graph_charts.review_inputs(cfg)) for o in c.to_json()]
    assert schema_errors(objects) == []


@st.composite
def plausible_graph(draw) -> dict:
    """Mostly-valid graphs, so the rendering path is exercised across every combination."""
    topology = draw(st.sampled_from(["agg", "agg_router", "disagg", "disagg_router", "multinode"]))
    backend = draw(
        st.sampled_from(["vllm", "sglang", "trtllm"] + (["mocker"] if topology != "multinode" else []))
    )
    multinode = topology == "multinode"
    pool = "gpu-p5" if multinode else draw(st.sampled_from(["gpu-g6e", "gpu-p5"]))
    if backend == "mocker":
        pool = "cpu"

    def role_config():
        nodes = 2 if multinode else 1
        tp = 1 if backend == "mocker" else draw(st.sampled_from([1, 2, 4])) * nodes
        return {"replicas": draw(st.integers(1, 3)), "tensor_parallel_size": tp, "nodes": nodes}

    roles = ["worker"] if topology.startswith("agg") else ["prefill", "decode"]
    graph = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True)),
        "backend": backend,
        "topology": topology,
        "model": draw(
            st.sampled_from(
                [
                    "Qwen/Qwen3-8B",
                    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                    "meta-llama/Llama-3.2-3B-Instruct",
                ]
            )
        ),
        "max_model_len": draw(st.sampled_from([4096, 16384])),
        "gpu_memory_utilization": draw(st.sampled_from([0.8, 0.9])),
        "node_pool": pool,
        **{name: role_config() for name in roles},
    }
    if draw(st.booleans()):
        graph["planner"] = {"enabled": True}
    if backend in ("vllm", "trtllm") and not multinode and draw(st.booleans()):
        graph["kv_offload"] = {
            "enabled": True,
            "cpu_cache_gb": 8,
            "disk_cache_gb": draw(st.sampled_from([0, 50])),
        }
    return graph


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plausible_graph())
def test_plausible_graphs_render_valid_crs_or_fail_in_one_line(generated):
    test_generated_graphs_render_valid_crs_or_fail_in_one_line.hypothesis.inner_test(generated)


def test_disaggregated_workers_share_a_zone_without_following_the_frontend():
    (dgd,) = dgds(DEFAULT_CONFIG)
    peers = {graph_charts.KV_PEER_LABEL: dgd["metadata"]["name"]}
    for name in ("prefill", "decode"):
        template = component(dgd, name)["podTemplate"]
        assert peers.items() <= template["metadata"]["labels"].items()
        (term,) = template["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term == {"labelSelector": {"matchLabels": peers}, "topologyKey": "topology.kubernetes.io/zone"}
    frontend = component(dgd, "frontend")["podTemplate"]
    assert graph_charts.KV_PEER_LABEL not in frontend["metadata"]["labels"]


def test_every_failing_graph_gets_its_own_line(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    good = data["graphs"][0]
    data["graphs"] = [
        {**good, "name": "bad-pool", "node_pool": "nope"},
        {**good, "name": "too-big", "model": "meta-llama/Llama-3.1-70B-Instruct", "node_pool": "gpu-g6"},
        good,
    ]
    path = tmp_path / "two-bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    lines = raised.value.lines
    assert len(lines) == 3, lines  # one per failing graph, and each failing role of it
    assert "graph 'bad-pool': prefill.node_pool 'nope' is not a Karpenter node pool" in lines[0]
    assert "graph 'too-big': prefill: 70.6B bf16 weights need 141 GB" in lines[1]
    assert "graph 'too-big': decode: 70.6B bf16 weights need 141 GB" in lines[2]
