"""Shared fixtures. Synth results are cached per config (tests/tools/synth.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# jsii and the CDK CLI run on the venv's Node 24 (linked there by the Makefile).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# Tests never reach AWS: no credentials, no region lookups, no CLI telemetry.
for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(variable, None)
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

DEFAULT_CONFIG = REPO / "config" / "default.yaml"


@pytest.fixture(scope="session")
def default_synth():
    from tests.tools.synth import synth

    return synth(DEFAULT_CONFIG)
