"""`make bench-setup`: how long a fresh clone takes to set up, per entry point.

Two fresh clones of this repository (with the working tree's uncommitted changes copied in,
so a change to the Makefile or a requirements file is what gets measured):
- `make synth`: venv + requirements.txt, Node and the CDK CLI (npm ci), validate, synth;
- `make setup dynamo-venv`: everything `make test` installs before pytest starts.
The baseline for the first is what it cannot avoid: `pip install -r requirements.txt` plus
`npm ci`, read from the Makefile's own per-step progress lines. Target: make synth <= 2x it.
Downloads come from the machine's pip and npm caches as they are (state them with the
numbers). Stdlib only: it runs before any venv exists. Takes minutes; never run by tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_STEP = re.compile(r"^setup: (.+) done in (\d+) s$", re.M)


def fresh_clone(into: Path, *, working_tree: bool) -> Path:
    clone = into / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    if working_tree:
        for path in changed_files():
            target = clone / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, target)
    return clone


def changed_files() -> list[str]:
    """Modified and untracked files of the working tree (deleted ones are skipped)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = [line[3:].split(" -> ")[-1] for line in out.splitlines()]
    return [path for path in files if (REPO / path).is_file()]


def timed_make(clone: Path, *targets: str) -> tuple[float, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    started = time.monotonic()
    result = subprocess.run(["make", *targets], cwd=clone, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"make {' '.join(targets)} failed in {clone}:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def steps(output: str) -> dict[str, int]:
    return {name: int(seconds) for name, seconds in _STEP.findall(output)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.setup_time", description=__doc__)
    parser.add_argument(
        "--committed",
        action="store_true",
        help="measure the last commit only (default: with working-tree changes)",
    )
    args = parser.parse_args(argv)
    rows = []
    synth_steps: dict[str, int] = {}
    for label, targets in (
        ("make synth", ("synth",)),
        ("make test set-up (make setup dynamo-venv)", ("setup", "dynamo-venv")),
    ):
        with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
            clone = fresh_clone(Path(tmp), working_tree=not args.committed)
            seconds, output = timed_make(clone, *targets)
        per_step = steps(output)
        if targets == ("synth",):
            synth_steps = per_step
        rows.append((label, seconds, per_step))
        print(f"{label}: {seconds:.0f} s", flush=True)
    baseline = sum(
        seconds for name, seconds in synth_steps.items() if "requirements.txt" in name or "npm ci" in name
    )
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, pip/npm caches as found"
    )
    print("\n| fresh clone | wall time (s) | set-up steps (s) |\n|---|---|---|")
    for label, seconds, per_step in rows:
        detail = "; ".join(f"{name}: {value}" for name, value in per_step.items())
        print(f"| `{label}` | {seconds:.0f} | {detail} |")
    if baseline:
        print(
            f"\nmake synth / (pip install -r requirements.txt + npm ci) = "
            f"{rows[0][1]:.0f} / {baseline} s = {rows[0][1] / baseline:.2f}x (target <= 2x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
