"""config/catalog/dynamo_parsers.json is what the pinned Dynamo runtime accepts: regenerated
from the project's Dynamo venv, it must be unchanged, and its version must be the pin."""

from __future__ import annotations

import json

from config import versions
from config.catalog.dynamo_parsers import REASONING_PARSERS
from config.catalog.models import REASONING_PARSER_BY_PREFIX
from tests.ops_dynamo_support import record_from_dynamo_venv
from tests.tools.synth import REPO

RECORD = REPO / "config" / "catalog" / "dynamo_parsers.json"


def regenerate() -> dict:
    return record_from_dynamo_venv("tools.dynamo_parsers")


def differences(committed: dict, fresh: dict) -> list[str]:
    return [key for key in sorted(set(committed) | set(fresh)) if committed.get(key) != fresh.get(key)]


def test_record_matches_the_pinned_runtime():
    committed = json.loads(RECORD.read_text(encoding="utf-8"))
    assert committed["ai_dynamo_runtime"] == versions.DYNAMO
    assert differences(committed, regenerate()) == [], (
        "run: .venv-dynamo/bin/python -m tools.dynamo_parsers > " + str(RECORD)
    )


def test_a_stale_record_is_detected():
    committed = json.loads(RECORD.read_text(encoding="utf-8"))
    stale = {**committed, "reasoning_parsers": committed["reasoning_parsers"][1:]}
    assert differences(stale, committed) == ["reasoning_parsers"]


def test_catalog_parsers_exist_in_dynamo():
    assert set(REASONING_PARSER_BY_PREFIX.values()) <= REASONING_PARSERS
