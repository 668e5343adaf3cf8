"""The project's own Python passes ruff and mypy as configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    assert path, f"{name} is missing from the venv: run `make setup`"
    return path


def test_ruff_clean():
    result = subprocess.run(
        [_tool("ruff"), "check", "--output-format", "concise", "."], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean():
    # The checked paths, plugins and strictness are [tool.mypy] in pyproject.toml; the cache
    # (.mypy_cache/) makes a rerun take seconds instead of a minute.
    result = subprocess.run(
        [_tool("mypy"), "--no-error-summary", "--no-pretty"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean():
    result = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
