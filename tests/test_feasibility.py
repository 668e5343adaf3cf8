"""Every accepted graph can be scheduled: pool limits counted as Karpenter counts them, GPU
memory as the GPU reports it, reservations that exist in the config. A corpus of infeasible
configs is refused with one line each; every shipped config is shown to be feasible."""

from __future__ import annotations

import pytest
import yaml

from config import ConfigError, versions
from config.karpenter import KARPENTER_VM_MEMORY_OVERHEAD, karpenter_memory_gib
from k8s_charts.registry import render
from plan import load_config
from plan.pools import resolve_pool_limits
from tests.tools.configs import MINIMAL, all_configs
from tests.tools.synth import REPO

BASE = MINIMAL
MULTINODE = REPO / "config" / "examples" / "graphs" / "vllm-multinode-405b-p5-efa.yaml"
EXAMPLES = sorted((REPO / "config" / "examples" / "graphs").glob("*.yaml"))


def test_memory_overhead_is_karpenters_own_default():
    """The pinned chart's settings.vmMemoryOverheadPercent (vendored for KARPENTER)."""
    values = yaml.safe_load(
        (REPO / "tests" / "data" / "karpenter" / f"chart-values-v{versions.KARPENTER}.yaml").read_text()
    )
    assert values["settings"]["vmMemoryOverheadPercent"] == KARPENTER_VM_MEMORY_OVERHEAD
    # A p5.48xlarge (2048 GiB) counts as ~1895 GiB against a pool's memory limit.
    assert karpenter_memory_gib(2048) == 1895


def test_the_multinode_example_fits_its_pool():
    """Four p5.48xlarge at the example's replicas: 7,580 GiB as Karpenter counts them, more
    than the old global default of 4,000 GiB, so the pool's limit is derived to fit."""
    cfg = load_config(MULTINODE)
    limits, problems = resolve_pool_limits(cfg)
    assert problems == []
    p5 = limits["gpu-p5"]
    assert p5.need.least.memory_gib == 4 * 1895 and p5.memory_gib >= 4 * 1895
    assert p5.gpus is not None and p5.gpus >= 32
    (pool,) = [
        o
        for o in render(cfg)["karpenter-pools"]
        if o["kind"] == "NodePool" and o["metadata"]["name"] == "gpu-p5"
    ]
    assert pool["spec"]["limits"] == {"cpu": "1000", "memory": "7580Gi", "nvidia.com/gpu": "32"}


@pytest.mark.parametrize("path", [*all_configs(), *EXAMPLES], ids=lambda p: p.stem)
def test_every_shipped_config_is_feasible(path):
    cfg = load_config(path)  # refuses an infeasible plan
    limits, problems = resolve_pool_limits(cfg)
    assert problems == []
    for name, need in ((n, lim.need) for n, lim in limits.items()):
        lim = limits[name]
        assert need.least.cpu <= lim.cpu and need.least.memory_gib <= lim.memory_gib
        assert lim.gpus is None or need.least.gpus <= lim.gpus


def _p5_pool(**extra) -> dict:
    return {"name": "gpu-p5", "instance_types": ["p5.48xlarge"], "efa": True, **extra}


def _multinode_graph(**extra) -> dict:
    return {
        "name": "big",
        "backend": "vllm",
        "topology": "multinode",
        "model": "meta-llama/Llama-3.1-405B-Instruct",
        "max_model_len": 32768,
        "node_pool": "gpu-p5",
        "prefill": {"nodes": 2, "tensor_parallel_size": 16},
        "decode": {"nodes": 2, "tensor_parallel_size": 16},
        **extra,
    }


def _agg(**extra) -> dict:
    return {
        "name": "g",
        "backend": "vllm",
        "topology": "agg",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "max_model_len": 16384,
        "node_pool": "gpu-g6e",
        **extra,
    }


def _pools(*pools: dict) -> dict:
    return {"karpenter": {"base_nodepools": [{"name": "cpu", "instance_families": ["c7i"]}, *pools]}}


INFEASIBLE = {
    "pool memory limit below what the graph needs (Karpenter's count)": (
        {**_pools(_p5_pool(limits={"memory_gib": 4000})), "graphs": [_multinode_graph()]},
        "pool 'gpu-p5' limits.memory_gib is 4000 GiB but graph(s) big need 7580 GiB",
    ),
    "pool GPU limit below the graph's GPUs": (
        {**_pools(_p5_pool(limits={"gpus": 16})), "graphs": [_multinode_graph()]},
        "limits.gpus is 16 GPUs but graph(s) big need 32 GPUs",
    ),
    "Planner budget beyond the pool's GPUs": (
        {
            **_pools({"name": "gpu-g6e", "instance_types": ["g6e.xlarge"], "limits": {"gpus": 4}}),
            "graphs": [_agg(planner={"enabled": True, "max_gpu_budget": 8})],
        },
        "limits.gpus is 4 GPUs but graph(s) g need 8 GPUs",
    ),
    "GPU memory at the real capacity": (
        {
            "graphs": [
                {
                    "name": "r1",
                    "backend": "vllm",
                    "topology": "agg",
                    "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
                    "max_model_len": 98304,
                    "instance_type": "g6e.12xlarge",
                    "worker": {"tensor_parallel_size": 4},
                }
            ]
        },
        "leaves KV cache for 73,580 tokens but max_model_len is 98,304",
    ),
    "reserved without a reservation": (
        _pools({"name": "gpu-g6e", "instance_types": ["g6e.12xlarge"], "capacity_types": ["reserved"]}),
        "capacity_types includes reserved but no capacity_reservations are listed",
    ),
    "a reservation the pool cannot use": (
        _pools(
            {
                "name": "gpu-g6e",
                "instance_types": ["g6e.12xlarge"],
                "capacity_reservations": [{"id": "cr-0123456789abcdef0"}],
            }
        ),
        "capacity_reservations are listed but capacity_types lacks reserved",
    ),
    "a reservation selected two ways": (
        _pools(
            {
                "name": "gpu-g6e",
                "instance_types": ["g6e.12xlarge"],
                "capacity_types": ["reserved"],
                "capacity_reservations": [{"id": "cr-0123456789abcdef0", "tags": {"a": "b"}}],
            }
        ),
        "selected by id or by tags; set exactly one",
    ),
    "a reservation id of the wrong shape": (
        _pools(
            {
                "name": "gpu-g6e",
                "instance_types": ["g6e.12xlarge"],
                "capacity_types": ["reserved"],
                "capacity_reservations": [{"id": "odcr-123"}],
            }
        ),
        "capacity_reservations.0.id",
    ),
    "an EFA pod smaller than one interface": (
        {
            **_pools({"name": "l40s-efa", "instance_types": ["g6e.12xlarge"], "efa": True}),
            "graphs": [_agg(node_pool="l40s-efa", efa=True)],
        },
        "tensor_parallel_size to at least 4 or efa: false",
    ),
}


@pytest.mark.parametrize("case", sorted(INFEASIBLE))
def test_infeasible_configs_get_one_line(tmp_path, case):
    overrides, expected = INFEASIBLE[case]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, **overrides}))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    (line,) = raised.value.lines
    assert expected in line, line
    assert "Traceback" not in line and "\n" not in line


def test_capacity_fixes_keep_the_users_instance_and_name_every_role(tmp_path):
    """TP 1 and 2 of a 70B model on g6e.12xlarge: the fix is TP 4 on the same type, for both."""
    graph = {
        "name": "r1",
        "backend": "vllm",
        "topology": "disagg",
        "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "max_model_len": 32768,
        "instance_type": "g6e.12xlarge",
        "prefill": {"tensor_parallel_size": 1},
        "decode": {"tensor_parallel_size": 2},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "graphs": [graph]}))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    prefill, decode = raised.value.lines
    assert prefill.endswith("set prefill.tensor_parallel_size: 4 on the same g6e.12xlarge")
    assert decode.endswith("set decode.tensor_parallel_size: 4 on the same g6e.12xlarge")


def test_plan_prices_the_region_or_says_it_has_none(tmp_path):
    from plan.capacity import plan_graph

    data = yaml.safe_load((REPO / "config" / "examples" / "graphs" / "vllm-agg.yaml").read_text())
    data["region"] = "eu-west-1"
    data["network"]["availability_zones"] = ["eu-west-1a", "eu-west-1b"]
    path = tmp_path / "eu.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    (role,) = plan_graph(cfg, cfg.graphs[0]).roles
    assert role.usd_per_hour is None and role.pricing == "no eu-west-1 price"


def test_reserved_capacity_is_priced_as_reserved(tmp_path):
    from plan.capacity import plan_graph

    block = {
        "name": "h100-block",
        "instance_types": ["p5.48xlarge"],
        "capacity_types": ["reserved"],
        "capacity_reservations": [{"id": "cr-0123456789abcdef0", "reservation_type": "capacity-block"}],
    }
    graph = _agg(
        model="meta-llama/Llama-3.1-70B-Instruct", node_pool="h100-block", worker={"tensor_parallel_size": 8}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, **_pools(block), "graphs": [graph]}))
    cfg = load_config(path)
    (role,) = plan_graph(cfg, cfg.graphs[0]).roles
    assert role.pricing == "reserved" and role.usd_per_hour == 0.0


def test_reservations_render_as_karpenter_selector_terms():
    cfg = load_config(REPO / "config" / "examples" / "custom-pools-bottlerocket.yaml")
    objects = render(cfg)["karpenter-pools"]
    classes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "EC2NodeClass"}
    pools = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NodePool"}
    assert classes["l40s-4x-reserved"]["spec"]["capacityReservationSelectorTerms"] == [
        {"tags": {"team": "inference"}}
    ]
    assert classes["h200-efa"]["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert "capacityReservationSelectorTerms" not in classes["gpu-g6e"]["spec"]

    def requirements(name: str) -> dict[str, list[str]]:
        reqs = pools[name]["spec"]["template"]["spec"]["requirements"]
        return {r["key"]: r["values"] for r in reqs}

    # A reserved-only pool keeps to its reservation type; one that falls back to on-demand
    # cannot require a label on-demand nodes never carry.
    assert requirements("h200-efa")["karpenter.k8s.aws/capacity-reservation-type"] == ["capacity-block"]
    assert "karpenter.k8s.aws/capacity-reservation-type" not in requirements("l40s-4x-reserved")
    assert requirements("l40s-4x-reserved")["karpenter.sh/capacity-type"] == ["reserved", "on-demand"]


def test_gpu_nodes_keep_images_on_instance_store():
    """GPU node classes stripe local NVMe (RAID0) for kubelet and containerd, so the EBS root
    can stay small: that only holds when every GPU type we may launch has instance store."""
    from config.catalog.instances import INSTANCE_TYPES

    assert all(t.instance_store_gb >= 200 for t in INSTANCE_TYPES.values())
    cfg = load_config(REPO / "config" / "default.yaml")
    classes = [o for o in render(cfg)["karpenter-pools"] if o["kind"] == "EC2NodeClass"]
    for node_class in classes:
        gpu = node_class["metadata"]["name"].startswith("gpu")
        assert (node_class["spec"].get("instanceStorePolicy") == "RAID0") == gpu
        if gpu:
            (volume,) = node_class["spec"]["blockDeviceMappings"]
            assert volume["ebs"]["volumeSize"] == "100Gi"
