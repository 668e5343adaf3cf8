"""Load a config file and resolve its plan: the one entry point for the app and ops.

`config.load_config` validates each section; this adds what only the plan can tell (node
pools exist for the graphs, EFA, capacity), for the file and for each pipeline environment,
as the same `ConfigError` lines naming the file (and the environment).
"""

from __future__ import annotations

from pathlib import Path

from config.environments import environment_configs
from config.loader import ConfigError
from config.loader import load_config as validate_config
from config.schema import DeploymentConfig
from plan.graphs import check_graphs
from plan.pools import resolve_pool_limits


def plan_problems(cfg: DeploymentConfig) -> list[str]:
    """Why the plan of one (already validated) config cannot be resolved; [] when it can."""
    problems = check_graphs(cfg)
    if not problems:  # pool limits are only meaningful once every graph is placed
        problems = resolve_pool_limits(cfg)[1]
    return problems


def load_config(path: str | Path) -> DeploymentConfig:
    """The validated config at `path` whose plan (and every pipeline environment's) resolves."""
    cfg = validate_config(path)
    lines = [f"{path}: {problem}" for problem in plan_problems(cfg)]
    if cfg.pipeline is not None:
        for index, (settings, env_cfg) in enumerate(environment_configs(cfg, path)):
            where = f"pipeline.environments.{index} ({settings.overrides['environment']})"
            lines.extend(f"{path}: {where}: {problem}" for problem in plan_problems(env_cfg))
    if lines:
        raise ConfigError(lines)
    return cfg
