"""The configs the gates run on: the default plus every example."""

from __future__ import annotations

from pathlib import Path

from tests.tools.synth import REPO


def all_configs() -> list[Path]:
    return [REPO / "config" / "default.yaml", *sorted((REPO / "config" / "examples").glob("*.yaml"))]


def config_id(path: Path) -> str:
    return path.stem if path.parent.name == "examples" else "default"
