"""The configs the gates run on: every config in config/ (the default and the team's own)
plus every example."""

from __future__ import annotations

import functools
from pathlib import Path

from config.schema import DeploymentConfig
from tests.tools.synth import REPO


def all_configs() -> list[Path]:
    config = REPO / "config"
    return [*sorted(config.glob("*.yaml")), *sorted((config / "examples").glob("*.yaml"))]


def config_id(path: Path) -> str:
    return path.stem


EXAMPLE_GRAPHS = sorted((REPO / "config" / "examples" / "graphs").glob("*.yaml"))

# The smallest valid deployment around a graph or a pool a test writes.
MINIMAL = {
    "environment": "dev",
    "region": "us-west-2",
    "network": {"availability_zones": ["us-west-2a", "us-west-2b"]},
    "cluster": {"name": "dynamo-dev"},
}


@functools.cache
def shipped_configs() -> tuple[tuple[str, DeploymentConfig], ...]:
    """(label, config) of every shipped config and graph example, each pipeline environment
    on its own (label "<file>/<environment>")."""
    from config.environments import environment_configs
    from plan import load_config

    found: list[tuple[str, DeploymentConfig]] = []
    for path in [*all_configs(), *EXAMPLE_GRAPHS]:
        cfg = load_config(path)
        if cfg.pipeline is None:
            found.append((path.stem, cfg))
        else:
            found.extend((f"{path.stem}/{env.environment}", env) for _, env in environment_configs(cfg, path))
    return tuple(found)
