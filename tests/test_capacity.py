"""Capacity planner arithmetic on hand-computed cases, and its one-line refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from config import ConfigError
from config.catalog.instances import INSTANCE_TYPES
from config.catalog.models import MODELS, find_model
from plan import load_config
from plan.capacity import GB, GIB, RESERVE_GIB, fit_role, parallelism_problem, plan_graph
from tests.conftest import REPO
from tests.tools.configs import MINIMAL

BASE = MINIMAL


def write(tmp_path, *graphs: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "graphs": list(graphs)}))
    return path


def graph(**overrides) -> dict:
    return {
        "name": "g",
        "topology": "agg",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "max_model_len": 16384,
        "instance_type": "g6e.xlarge",
        **overrides,
    }


def test_llama_8b_weights_and_kv_per_token():
    spec = MODELS["meta-llama/Llama-3.1-8B"]
    # 8.03e9 parameters x 2 bytes (bf16)
    assert spec.weights_bytes_total / GB == pytest.approx(16.06)
    # 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x 2 bytes
    assert spec.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2 == 131_072
    # TP=2 splits the 8 KV heads: half per GPU; TP=16 cannot split below one head per GPU.
    assert spec.kv_bytes_per_token(2) == 65_536
    assert spec.kv_bytes_per_token(16) == 2 * 32 * 1 * 128 * 2


def test_llama_8b_on_one_l4_by_hand():
    spec = MODELS["meta-llama/Llama-3.1-8B"]
    fit = fit_role(
        spec,
        INSTANCE_TYPES["g6.xlarge"],
        tensor_parallel=1,
        nodes=1,
        utilization=0.9,
        max_model_len=16384,
        backend="vllm",
    )
    # An L4 reports 23,034 MiB (nvidia-smi), not the 24 GiB AWS lists.
    usable = 23_034 * 2**20 * 0.9 / GB  # 21.74 GB
    kv = usable - 16.06 - RESERVE_GIB * GIB / GB  # 21.74 - 16.06 - 2.15 = 3.53 GB
    assert fit.usable_per_gpu_gb == pytest.approx(usable)
    assert fit.kv_budget_per_gpu_gb == pytest.approx(kv)
    assert fit.kv_tokens == int(kv * GB // 131_072)  # about 26,900 tokens
    assert 26_000 < fit.kv_tokens < 28_000
    assert fit.concurrent_sequences == 1  # 26.9k // 16384


def test_70b_tp4_on_l40s_by_hand():
    spec = find_model("deepseek-ai/DeepSeek-R1-Distill-Llama-70B")
    fit = fit_role(
        spec,
        INSTANCE_TYPES["g6e.12xlarge"],
        tensor_parallel=4,
        nodes=1,
        utilization=0.9,
        max_model_len=32768,
        backend="vllm",
    )
    assert fit.weights_per_gpu_gb == pytest.approx(70.6 * 2 / 4)  # 35.3 GB
    # 80 layers, 8 KV heads over TP=4 -> 2 per GPU: 2 x 80 x 2 x 128 x 2 = 81,920 B/token
    assert spec.kv_bytes_per_token(4) == 81_920
    expected = (46_068 * 2**20 * 0.9 / GB - 35.3 - RESERVE_GIB * GIB / GB) * GB // 81_920
    assert fit.kv_tokens == int(expected)


def test_trtllm_fraction_applies_to_free_memory():
    spec = MODELS["meta-llama/Llama-3.1-8B"]
    fit = fit_role(
        spec,
        INSTANCE_TYPES["g6e.xlarge"],
        tensor_parallel=1,
        nodes=1,
        utilization=0.5,
        max_model_len=8192,
        backend="trtllm",
    )
    free = 46_068 * 2**20 / GB - 16.06 - RESERVE_GIB * GIB / GB
    assert fit.kv_budget_per_gpu_gb == pytest.approx(free * 0.5)


@pytest.mark.parametrize("tp,ok", [(1, True), (2, True), (3, False), (8, True), (16, True), (64, False)])
def test_tensor_parallel_must_divide_heads(tp, ok):
    # Llama 8B: 32 attention heads, 8 KV heads.
    assert (parallelism_problem(MODELS["meta-llama/Llama-3.1-8B"], tp) is None) == ok


def one_line(tmp_path, *graphs: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, *graphs))
    (line,) = raised.value.lines
    assert "\n" not in line
    return line


def test_seed_70b_on_l4_is_rejected_with_numbers_and_fix(tmp_path):
    """The seed's 70B example: TP=4 on the 24 GB L4 pool cannot hold the weights."""
    line = one_line(
        tmp_path,
        graph(
            name="r1-70b",
            model="deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
            instance_type=None,
            node_pool="gpu-g6",
            worker={"tensor_parallel_size": 4},
        ),
    )
    assert "graph 'r1-70b'" in line
    assert "70.6B bf16 weights need 141 GB" in line
    assert "TP=4 on g6.12xlarge gives 4x22.5 GiB L4" in line
    assert "use g6e.12xlarge (TP=4)" in line


def test_tp_larger_than_node(tmp_path):
    line = one_line(
        tmp_path,
        graph(
            worker={"tensor_parallel_size": 8},
            instance_type="g6e.12xlarge",
            model="meta-llama/Llama-3.1-70B-Instruct",
        ),
    )
    assert "needs 8 GPUs per node but g6e.12xlarge has 4" in line


def test_max_model_len_too_long_suggests_a_length(tmp_path):
    line = one_line(tmp_path, graph(instance_type="g6.xlarge", max_model_len=131072))
    assert "max_model_len is 131,072" in line and "set max_model_len <= 26624" in line


def test_heads_not_divisible(tmp_path):
    line = one_line(tmp_path, graph(instance_type="g6e.12xlarge", worker={"tensor_parallel_size": 3}))
    assert "does not divide the model's 32 attention heads; use one of 1, 2, 4, 8, 16, 32" in line


def test_unknown_model_needs_sizes_or_skip(tmp_path):
    line = one_line(tmp_path, graph(model="acme/secret-model"))
    assert "not in the capacity catalog" in line and "skip_capacity_check: true" in line


def test_skip_capacity_check_is_reported_unchecked(tmp_path):
    cfg = load_config(write(tmp_path, graph(model="acme/secret-model", skip_capacity_check=True)))
    plan = plan_graph(cfg, cfg.graphs[0])
    assert not plan.checked and "UNCHECKED" in plan.note


def test_model_spec_in_config(tmp_path):
    spec = {
        "params_b": 8.03,
        "layers": 32,
        "hidden_size": 4096,
        "attention_heads": 32,
        "kv_heads": 8,
        "head_dim": 128,
        "max_context": 131072,
    }
    cfg = load_config(write(tmp_path, graph(model="acme/llama-clone", model_spec=spec)))
    plan = plan_graph(cfg, cfg.graphs[0])
    assert plan.checked and plan.roles[0].fit.weights_per_gpu_gb == pytest.approx(16.06)


def test_kv_offload_must_fit_host_memory(tmp_path):
    line = one_line(tmp_path, graph(kv_offload={"enabled": True, "cpu_cache_gb": 64}))
    assert "kv_offload.cpu_cache_gb 64" in line and "g6e.xlarge has 34 GB per pod" in line


def test_instance_type_must_be_launchable_by_a_pool(tmp_path):
    line = one_line(tmp_path, graph(instance_type="p4d.24xlarge"))
    assert "cannot be launched by any Karpenter GPU pool" in line


def test_unknown_pool(tmp_path):
    line = one_line(tmp_path, graph(instance_type=None, node_pool="gpu-h200"))
    assert "'gpu-h200' is not a Karpenter node pool; use one of the GPU pools gpu-g6, gpu-g6e, gpu-p5" in line


def test_plan_cost_and_node_count(tmp_path):
    cfg = load_config(write(tmp_path, graph(worker={"replicas": 3}, instance_type=None, node_pool="gpu-g6e")))
    (role,) = plan_graph(cfg, cfg.graphs[0]).roles
    # Karpenter may launch any g6e size; the plan prices the cheapest that fits.
    assert role.fit.instance.name == "g6e.xlarge" and role.node_count == 3
    assert role.usd_per_hour == pytest.approx(3 * INSTANCE_TYPES["g6e.xlarge"].on_demand_usd_per_hour)


def test_ops_plan_prints_every_column(tmp_path):
    path = write(
        tmp_path,
        graph(),
        graph(name="hello", backend="mocker", model="Qwen/Qwen3-0.6B", instance_type=None, node_pool="cpu"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "ops", "plan", "--config", str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    for column in ("GPUs", "nodes", "weights/GPU", "KV tokens", "seqs@max_len", "$/hour"):
        assert column in header
    assert "g6e.xlarge (1x L40S 45.0 GiB)" in result.stdout
    assert "hello: mocker agg" in result.stdout and "UNCHECKED" in result.stdout


def test_ops_plan_bad_config_is_one_line(tmp_path):
    path = write(tmp_path, graph(instance_type="g6.xlarge", max_model_len=131072))
    result = subprocess.run(
        [sys.executable, "-m", "ops", "plan", "--config", str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_multinode_graph_that_fits_one_node_is_warned_about(tmp_path):
    fits_one = graph(
        topology="multinode",
        model="deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        instance_type=None,
        node_pool="gpu-p5",
        prefill={"nodes": 2, "tensor_parallel_size": 16},
        decode={"nodes": 2, "tensor_parallel_size": 16},
    )
    cfg = load_config(write(tmp_path, fits_one))
    warnings = plan_graph(cfg, cfg.graphs[0]).warnings
    assert len(warnings) == 2 and "fits one p5.48xlarge with tensor_parallel_size 8" in warnings[0]
    shipped = load_config(REPO / "config/examples/graphs/vllm-multinode-405b-p5-efa.yaml")
    assert plan_graph(shipped, shipped.graphs[0]).warnings == []  # 405B bf16 needs two nodes


def test_sglang_hicache_host_memory_counts_every_rank(tmp_path):
    # g6e.12xlarge: 384 GiB for one TP=4 pod; 4 ranks x 96 GB + 16 GB does not fit in 90% of it.
    too_big = graph(
        backend="sglang",
        instance_type="g6e.12xlarge",
        worker={"tensor_parallel_size": 4},
        kv_offload={"enabled": True, "cpu_cache_gb": 96},
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, too_big))
    assert "96 x 4 TP ranks" in raised.value.lines[0] and "lower cpu_cache_gb to" in raised.value.lines[0]
