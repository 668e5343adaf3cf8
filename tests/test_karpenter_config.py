"""Karpenter config: bad input gives one line naming the field and the fix."""

from __future__ import annotations

import pytest

from config import ConfigError
from config.catalog import instances
from plan import load_config
from tests.test_config_errors import mutated, write


def pool(**fields) -> dict:
    return {"name": "custom", **fields}


def with_custom(*pools, **karpenter) -> dict:
    return mutated(
        karpenter__enable_custom_karpenter_nodepools=True,
        karpenter__custom_nodepools=list(pools),
        **{f"karpenter__{k}": v for k, v in karpenter.items()},
    )


CASES = {
    "unknown family": (
        with_custom(pool(instance_families=["g7x"])),
        "karpenter.custom_nodepools.0.instance_families",
        "unknown instance family 'g7x'; use one of g5, g6, g6e",
    ),
    "unknown size": (
        with_custom(pool(instance_types=["g6e.3xlarge"])),
        "karpenter.custom_nodepools.0.instance_types",
        "known sizes of g6e: g6e.xlarge",
    ),
    "gpu limit below one node": (
        with_custom(pool(instance_types=["p5.48xlarge"]), karpenter_gpu_limits=4),
        "karpenter",
        "karpenter_gpu_limits 4 is smaller than one g6.48xlarge node (8 GPUs) in pool 'gpu-g6'",
    ),
    "efa on a size without efa": (
        with_custom(pool(instance_types=["g6.xlarge"], efa=True)),
        "karpenter.custom_nodepools.0",
        "efa is true but g6.xlarge has no EFA; use an EFA size (g6.8xlarge",
    ),
    "efa on a cpu pool": (
        with_custom(pool(instance_families=["c7i"], efa=True)),
        "karpenter.custom_nodepools.0",
        "EFA pools are for GPU instances",
    ),
    "efa sizes with different card counts": (
        with_custom(pool(instance_families=["g6e"], efa=True)),
        "karpenter.custom_nodepools.0",
        "different EFA interface counts",
    ),
    "bottlerocket with device plugin": (
        mutated(karpenter__use_bottlerocket=True, karpenter__install_nvidia_device_plugin=True),
        "karpenter",
        "Bottlerocket's NVIDIA AMIs already run the device plugin",
    ),
    "custom pools while switch is off": (
        mutated(karpenter__custom_nodepools=[pool(instance_families=["g6"])]),
        "karpenter",
        "set it to true to create them or remove custom_nodepools",
    ),
    "switch on without pools": (
        mutated(karpenter__enable_custom_karpenter_nodepools=True),
        "karpenter",
        "add at least one pool",
    ),
    "mixed gpu models": (
        with_custom(pool(instance_families=["g6", "g6e"])),
        "karpenter.custom_nodepools.0",
        "mixes GPU models L4, L40S",
    ),
    "gpu and cpu in one pool": (
        with_custom(pool(instance_families=["g6", "m7i"])),
        "karpenter.custom_nodepools.0",
        "mixes GPU and CPU instances",
    ),
    "duplicate names": (
        with_custom(pool(name="gpu-g6", instance_families=["g6"])),
        "karpenter",
        "two node pools are named 'gpu-g6'",
    ),
    "families and types": (
        with_custom(pool(instance_families=["g6"], instance_types=["g6.xlarge"])),
        "karpenter.custom_nodepools.0",
        "set exactly one of instance_families",
    ),
    "bad duration": (
        with_custom(pool(instance_families=["g6"], consolidate_after="10 minutes")),
        "karpenter.custom_nodepools.0.consolidate_after",
        "not a duration",
    ),
    "small gpu volume": (
        mutated(karpenter__gpu_root_volume_gib=20),
        "karpenter.gpu_root_volume_gib",
        "greater than or equal to 40",
    ),
    "zone outside the vpc": (
        with_custom(pool(instance_families=["g6"], zones=["us-west-2d"])),
        "karpenter",
        "pool 'custom' zone 'us-west-2d' is not in network.availability_zones",
    ),
    "placement group across zones": (
        with_custom(pool(instance_types=["p5.48xlarge"], efa=True, placement_group="pg1")),
        "karpenter.custom_nodepools.0",
        "placement_group needs exactly one zone",
    ),
    "reserved tag": (
        mutated(tags={"karpenter.sh/nodepool": "x"}),
        "tags",
        "'karpenter.sh/nodepool' is set by Karpenter",
    ),
    "memory limit below one node": (
        mutated(karpenter__karpenter_memory_limits=1000),
        "karpenter",
        "karpenter_memory_limits 1000 GiB is smaller than one node of pool 'gpu-g6e' (1421 GiB as Karpenter counts it)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_karpenter_config_gives_one_line(tmp_path, case):
    data, field, fix = CASES[case]
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, data))
    lines = raised.value.lines
    assert len(lines) == 1, lines
    assert f": {field}: " in lines[0] and fix in lines[0], lines[0]


def test_defaults_match_the_issue(tmp_path):
    cfg = load_config(write(tmp_path, mutated()))
    pools = {p.name: p for p in cfg.karpenter.pools()}
    assert set(pools) == {"cpu", "gpu-g6", "gpu-g6e", "gpu-p5"}
    assert pools["gpu-p5"].efa and pools["gpu-p5"].capacity_types == ["on-demand"]
    assert {pools[n].gpu_label for n in ("gpu-g6", "gpu-g6e", "gpu-p5")} == {"l4", "l40s", "h100"}
    assert not pools["cpu"].is_gpu
    assert cfg.karpenter.nvidia_device_plugin and cfg.karpenter.has_efa_pool


def test_custom_pools_outrank_base_pools(tmp_path):
    cfg = load_config(write(tmp_path, with_custom(pool(instance_types=["g6e.12xlarge"]))))
    weights = {p.name: cfg.karpenter.weight(p) for p in cfg.karpenter.pools()}
    assert weights["custom"] == 100 and weights["gpu-g6"] == 50


def test_bottlerocket_skips_the_device_plugin(tmp_path):
    cfg = load_config(write(tmp_path, mutated(karpenter__use_bottlerocket=True)))
    assert not cfg.karpenter.nvidia_device_plugin


def test_every_gpu_family_of_the_issue_is_in_the_catalog():
    for family in ("g5", "g6", "g6e", "p4d", "p5", "p5e", "p5en"):
        rows = instances.types_in_families([family])
        assert rows and all(r.gpus and r.gpu_memory_gib and r.vcpu for r in rows), family
        assert all(r.instance_store_gb > 0 for r in rows), family
