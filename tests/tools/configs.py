"""The configs the gates run on: every config in config/ (the default and the team's own)
plus every example."""

from __future__ import annotations

from pathlib import Path

from tests.tools.synth import REPO


def all_configs() -> list[Path]:
    config = REPO / "config"
    return [*sorted(config.glob("*.yaml")), *sorted((config / "examples").glob("*.yaml"))]


def config_id(path: Path) -> str:
    return path.stem
