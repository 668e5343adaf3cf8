"""`ops manifests --config PATH`: render every cdk8s chart to YAML for review.

One folder per environment, `<out>/<environment>/<chart>.yaml`: a pipeline config renders
each of its environments (the base config merged with that environment's overrides, as the
pipeline deploys it), never the base alone. A folder's old YAML files are removed first,
so a chart dropped from the config does not linger.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from plan import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument(
        "--out",
        default="dist/manifests",
        help="output folder; one subfolder per environment (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg.pipeline is None:
        targets = [cfg]
    else:
        from config.environments import environment_configs

        targets = [env_cfg for _, env_cfg in environment_configs(cfg, args.config)]
    for target in targets:
        render_environment(target, Path(args.out), args.config)
    return 0


def render_environment(cfg, out_root: Path, config_path: str) -> Path:
    from k8s_charts.registry import render  # imports cdk8s (jsii): only when needed

    out = out_root / cfg.environment
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        stale.unlink()
    rendered = render(cfg)
    for name, objects in rendered.items():
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        print(f"{path}: {len(objects)} objects")
    if not rendered:
        print(f"no charts for {config_path} (environment '{cfg.environment}')")
    return out
