"""Parser names Dynamo's workers accept (`--dyn-reasoning-parser`), from the pinned runtime.

The JSON beside this module is written by `tools/dynamo_parsers.py` from ai-dynamo-runtime
itself; a test regenerates it with the project's Dynamo venv and fails when it differs.
"""

from __future__ import annotations

import json
from pathlib import Path

_RECORD = json.loads((Path(__file__).with_suffix(".json")).read_text(encoding="utf-8"))

RUNTIME_VERSION: str = _RECORD["ai_dynamo_runtime"]
REASONING_PARSERS: frozenset[str] = frozenset(_RECORD["reasoning_parsers"])
TOOL_CALL_PARSERS: frozenset[str] = frozenset(_RECORD["tool_call_parsers"])
