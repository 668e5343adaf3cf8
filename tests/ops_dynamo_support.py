"""Helpers for the tests that run real Dynamo (frontend + mocker) from .venv-dynamo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "default.yaml"
SERVED_MODEL = "tiny-org/tiny-chat"

# Mocker graphs run on CPU and need no node pool; one per topology the CI smoke covers.
MOCKER_GRAPHS = [
    {"name": "smoke-agg", "backend": "mocker", "topology": "agg", "model": SERVED_MODEL},
    {
        "name": "smoke-agg-router",
        "backend": "mocker",
        "topology": "agg_router",
        "model": SERVED_MODEL,
        "worker": {"replicas": 2},
    },
    {
        "name": "smoke-disagg",
        "backend": "mocker",
        "topology": "disagg",
        "model": SERVED_MODEL,
        "prefill": {"replicas": 1},
        "decode": {"replicas": 2},
    },
]


def require_dynamo_venv() -> None:
    python = REPO / ".venv-dynamo" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing; build it with `make dynamo-venv` (make test does)")


def record_from_dynamo_venv(module: str) -> dict:
    """The JSON record a `tools.<module>` script prints when run with the pinned Dynamo."""
    require_dynamo_venv()
    done = subprocess.run(
        [str(REPO / ".venv-dynamo" / "bin" / "python"), "-m", module],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def mocker_config(tmp_dir: Path) -> Path:
    """The default config with the mocker graphs in place of its GPU graphs."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["graphs"] = MOCKER_GRAPHS
    path = tmp_dir / "mocker.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_ops(
    args: list[str], *, prefix: list[str] | None = None, env: dict | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """`python -m ops ARGS` as a user runs it (optionally inside the Dynamo netns)."""
    command = [*(prefix or []), sys.executable, "-m", "ops", *args]
    return subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def processes_under(folder: Path) -> list[str]:
    """Live processes whose working directory is inside `folder` (Dynamo runs there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z" and cwd.startswith(str(folder)):
            found.append(f"{entry.name}: {cmdline}")
    return found
