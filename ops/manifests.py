"""`ops manifests --config PATH`: render every cdk8s chart to YAML for review."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from plan import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--out", default="dist/manifests", help="output folder")


def run(args: argparse.Namespace) -> int:
    from k8s_charts.registry import render  # imports cdk8s (jsii): only when needed

    cfg = load_config(args.config)
    out = Path(args.out) / cfg.environment
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        stale.unlink()
    rendered = render(cfg)
    for name, objects in rendered.items():
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        print(f"{path}: {len(objects)} objects")
    if not rendered:
        print(f"no charts for {args.config}")
    return 0
