"""Add the environment variables SGLang declares to its command-line record.

    python -m tools.engine_cli.sglang_env WHEEL tests/data/engine_cli/sglang-0.5.21.json

SGLang reads its settings from environment variables declared in one place,
`sglang/srt/environ.py` (`NAME = EnvStr(...)`, `EnvBool(...)`, ...). Some of those settings
have no flag (e.g. the NIXL backend of disaggregated KV transfer), so the graphs set them as
env vars; the contract test checks every SGLANG_* name a graph sets against this list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import zipfile
from pathlib import Path

ENVIRON = "sglang/srt/environ.py"
DECLARATION = re.compile(r"^\s+(SGLANG_[A-Z0-9_]+)\s*=\s*Env[A-Za-z]*\(", re.MULTILINE)


def declared_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(ENVIRON).decode("utf-8")
    names = sorted(set(DECLARATION.findall(source)))
    if len(names) < 50:
        raise SystemExit(f"{wheel}: found only {len(names)} declarations in {ENVIRON}; has its form changed?")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("record", type=Path)
    args = parser.parse_args()
    record = json.loads(args.record.read_text(encoding="utf-8"))
    digest = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    if digest != record["wheel_sha256"]:
        raise SystemExit(f"{args.wheel} is not the wheel the record was made from ({record['wheel']})")
    record["environment"] = {"source": ENVIRON, "names": declared_names(args.wheel)}
    args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{args.record}: {len(record['environment']['names'])} environment variables")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
