"""Record the tracing and logging environment names Dynamo's runtime reads, from the pinned wheel.

Run with the project's Dynamo venv (the pinned ai-dynamo-runtime):

    .venv-dynamo/bin/python -m tools.dynamo_tracing_env > tests/data/dynamo/tracing-env.json

Dynamo sets up OpenTelemetry in Rust (the opentelemetry 0.31 crates linked into
`dynamo/_core.abi3.so`); no Python module names these variables, so the record is cut out of
the compiled library the way tests/tools/dynamo_contract.py reads KVBM's DYN_KVBM_* names.
Rust stores string literals back to back without separators, so every run of name characters
is cut at each `OTEL_` and `DYN_`; a cut piece may keep a glued tail (`OTEL_EXPORT_ENABLEDERROR`
beside `OTEL_EXPORT_ENABLED`), which can only add a name nobody renders, never drop a real
one. k8s_charts/tracing.py may render only recorded names
(tests/test_dynamo_tracing_env.py), and the same test regenerates this record from the
installed wheel and fails when it differs (a new Dynamo pin, or a different build of it).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from tools.records import print_record

PREFIXES = ("OTEL_", "DYN_LOGGING_")
LIBRARY = "dynamo/_core.abi3.so"


def names_in(data: bytes) -> list[str]:
    """Every OTEL_* and DYN_LOGGING_* name in a compiled library's string data."""
    found: set[str] = set()
    for run in re.findall(rb"[A-Z0-9_]{5,}", data):
        text = run.decode()
        cuts = sorted({m.start() for m in re.finditer("OTEL_|DYN_", text)} | {len(text)})
        for start, end in zip(cuts, cuts[1:], strict=False):
            piece = text[start:end]
            if piece.startswith(PREFIXES) and not piece.endswith("_"):
                found.add(piece)
    return sorted(found)


def record() -> dict:
    dist = metadata.distribution("ai-dynamo-runtime")
    (library,) = [f for f in dist.files or () if str(f) == LIBRARY]
    assert library.hash is not None, f"{LIBRARY} has no hash in the wheel's RECORD"
    return {
        "source": f"ai-dynamo-runtime {LIBRARY} (string data; tools/dynamo_tracing_env.py)",
        "ai_dynamo_runtime": dist.version,
        "library_sha256": library.hash.value,
        "names": names_in(Path(library.locate()).read_bytes()),
    }


def main() -> int:
    return print_record(record())


if __name__ == "__main__":
    raise SystemExit(main())
