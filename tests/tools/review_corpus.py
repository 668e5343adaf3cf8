"""Everyday config changes for `ops review`, each synthesized once per test process.

A variant is a function of the parsed base config (default.yaml or the pipeline example);
`assembly(name)` writes it to a scratch folder inside the repository (a pipeline config must
live there), synthesizes it in-process with cdk.json's context (the same feature flags the
CLI passes), and caches the cloud assembly directory. Base and variant of a pair are written
to the same path, so the pipeline's synth step (which names the config path) does not differ.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.tools.synth import REPO

_SCRATCH: Path | None = None


def scratch() -> Path:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix=".review-corpus-", dir=REPO))
    return _SCRATCH


def cleanup() -> None:
    global _SCRATCH
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)
        _SCRATCH = None
    assembly.cache_clear()


def _default() -> dict:
    return yaml.safe_load((REPO / "config" / "default.yaml").read_text())


def _pipeline() -> dict:
    return yaml.safe_load((REPO / "config" / "examples" / "pipeline.yaml").read_text())


def _graph(cfg: dict) -> dict:
    return cfg["graphs"][0]


def add_graph(cfg: dict) -> None:
    cfg["graphs"].append(
        {
            "name": "qwen3-8b-agg",
            "backend": "vllm",
            "topology": "agg",
            "model": "Qwen/Qwen3-8B",
            "max_model_len": 32768,
            "node_pool": "gpu-g6e",
            "worker": {"replicas": 1, "tensor_parallel_size": 1},
        }
    )


def change_model(cfg: dict) -> None:
    _graph(cfg)["model"] = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"


def change_replicas(cfg: dict) -> None:
    graph = _graph(cfg)
    component = next(name for name in ("decode", "worker", "prefill") if name in graph)
    graph[component]["replicas"] = graph[component].get("replicas", 1) + 1


def first_graph_name() -> str:
    return _graph(_default())["name"]


def max_model_len_values() -> tuple[int, int]:
    """The first graph's max_model_len in default.yaml, and the variant's (half of it)."""
    before = _graph(_default())["max_model_len"]
    return before, before // 2


def max_model_len(cfg: dict) -> None:
    _graph(cfg)["max_model_len"] = max_model_len_values()[1]


def add_gpu_pool(cfg: dict) -> None:
    cfg["karpenter"]["base_nodepools"].append(
        {"name": "gpu-g6-ondemand", "instance_families": ["g6"], "capacity_types": ["on-demand"]}
    )


def monitoring_settings(cfg: dict) -> None:
    monitoring = cfg["platform"]["monitoring"]
    monitoring["scrape_interval_seconds"] = 30
    monitoring["prometheus_retention_days"] = 14


def monitoring_off(cfg: dict) -> None:
    cfg["platform"]["monitoring"].update(enabled=False, dcgm_exporter=False)


def rename_cluster(cfg: dict) -> None:
    cfg["cluster"]["name"] = "dynamo-dev-renamed"


def add_environment(cfg: dict) -> None:
    environments = cfg["pipeline"]["environments"]
    staging = copy.deepcopy(environments[0])
    staging["overrides"].update(environment="staging", account="444444444444")
    staging["overrides"]["cluster"] = {**staging["overrides"]["cluster"], "name": "dynamo-staging"}
    staging["overrides"]["cluster"]["admin_principals"] = ["arn:aws:iam::444444444444:role/PlatformAdmin"]
    environments.insert(1, staging)


def unchanged(cfg: dict) -> None:
    pass


# A Dynamo patch release is a one-line change of config/versions.py DYNAMO (chart version and
# image tags follow it); simulated by patching the constant for that synth.
DYNAMO_PATCH = "dynamo_patch"

# name -> (base loader, edit)
VARIANTS: dict[str, tuple[Callable[[], dict], Callable[[dict], None]]] = {
    "default": (_default, unchanged),
    "add_graph": (_default, add_graph),
    "change_model": (_default, change_model),
    "change_replicas": (_default, change_replicas),
    "max_model_len": (_default, max_model_len),
    "add_gpu_pool": (_default, add_gpu_pool),
    "monitoring_settings": (_default, monitoring_settings),
    "monitoring_off": (_default, monitoring_off),
    DYNAMO_PATCH: (_default, unchanged),
    "rename_cluster": (_default, rename_cluster),
    "pipeline": (_pipeline, unchanged),
    "add_environment": (_pipeline, add_environment),
}


# Comparisons whose base is another variant: name -> (base, head).
PAIRS = {"monitoring_on": ("monitoring_off", "default")}


def base_of(name: str) -> str:
    return "pipeline" if VARIANTS[name][0] is _pipeline else "default"


def patch_version(version: str) -> str:
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


@functools.cache
def assembly(name: str) -> Path:
    """The cloud assembly directory of one variant (synthesized once per process)."""
    from app import build_app, new_app
    from config import versions

    load, edit = VARIANTS[name]
    cfg = load()
    edit(cfg)
    folder = scratch()
    config = folder / f"{base_of(name)}.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    outdir = folder / f"{name}.out"
    context = dict(json.loads((REPO / "cdk.json").read_text())["context"])
    context["config"] = str(config)
    pinned = versions.DYNAMO
    if name == DYNAMO_PATCH:
        versions.DYNAMO = patch_version(pinned)
    try:
        app = new_app(outdir=str(outdir), context=context)
        build_app(app, str(config), nag=False)
        app.synth()
    finally:
        versions.DYNAMO = pinned
    return outdir
