"""Configs with N graphs for the scale benchmark and the 50-graph limits test.

Each is the default config with its graph repeated under new names, so only the number of
graphs changes between cases. GPU limits are raised to what N graphs request so the
config stays valid (the capacity checks still run on every graph).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def scale_config(graphs: int, out_dir: Path) -> Path:
    data = yaml.safe_load((REPO / "config" / "default.yaml").read_text())
    template = data["graphs"][0]
    data["graphs"] = []
    for index in range(graphs):
        graph = copy.deepcopy(template)
        graph["name"] = f"{template['name']}-{index + 1:02d}"
        data["graphs"].append(graph)
    # Each default graph asks for 2 GPUs on the same pool.
    karpenter = data.setdefault("karpenter", {})
    karpenter["karpenter_gpu_limits"] = max(karpenter.get("karpenter_gpu_limits", 0), 2 * graphs + 8)
    path = out_dir / f"scale-{graphs}-graphs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
