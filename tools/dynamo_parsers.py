"""Record the tool-call and reasoning parser names that Dynamo's worker flags accept.

Run with the project's Dynamo venv (the pinned ai-dynamo-runtime):

    .venv-dynamo/bin/python -m tools.dynamo_parsers > config/catalog/dynamo_parsers.json

`--dyn-reasoning-parser` / `--dyn-tool-call-parser` take their `choices` from these two
functions of the compiled runtime, so the record is exactly what a 1.6.1 worker accepts.
tests/test_dynamo_parsers_record.py regenerates it and fails when it differs.
"""

from __future__ import annotations

from importlib import metadata

from tools.records import print_record


def record() -> dict:
    from dynamo._core import get_reasoning_parser_names, get_tool_parser_names

    return {
        "source": "ai-dynamo-runtime dynamo._core.get_reasoning_parser_names / get_tool_parser_names",
        "ai_dynamo_runtime": metadata.version("ai-dynamo-runtime"),
        "reasoning_parsers": sorted(get_reasoning_parser_names()),
        "tool_call_parsers": sorted(get_tool_parser_names()),
    }


def main() -> int:
    return print_record(record())


if __name__ == "__main__":
    raise SystemExit(main())
