"""`make bench`: `cdk synth` wall time against the empty-app floor, measured in one run.

The floor is an empty app as `cdk init` makes it (aws-cdk-lib defaults); a second, bare
floor turns off aws-cdk-lib's built-in template validation as our app does, so the share of
the floor that is that validation stays visible. The default config is measured as a bare
`cdk synth` (no cdk-nag) and as `make synth` runs it (cdk-nag on).

Every case runs the same pinned CLI on the same Node, alternating cases each round so a
slow moment of the machine hits all of them alike. Reported: median seconds, ratio to the
floor, and each stack's template size and resource count (with CloudFormation's limits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.scale_configs import scale_config

REPO = Path(__file__).resolve().parents[1]
CDK = REPO / "node_modules" / ".bin" / "cdk"
TEMPLATE_LIMIT_BYTES = 1_000_000  # CloudFormation template body (via S3)
RESOURCE_LIMIT = 500


@dataclass
class Case:
    name: str
    cwd: Path
    context: dict[str, str] = field(default_factory=dict)
    app: str | None = None  # overrides cdk.json's "app"
    seconds: list[float] = field(default_factory=list)
    stacks: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (bytes, resources)


def synth_once(case: Case) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as outdir:
        command = [str(CDK), "synth", "--quiet", "--no-notices", "--no-version-reporting", "-o", outdir]
        if case.app:
            command += ["--app", case.app]
        for key, value in case.context.items():
            command += ["-c", f"{key}={value}"]
        env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
        start = time.perf_counter()
        result = subprocess.run(command, cwd=case.cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"error: synth of {case.name} failed:\n{result.stderr[-2000:]}")
        case.seconds.append(elapsed)
        case.stacks = {
            path.name.removesuffix(".template.json"): (
                path.stat().st_size,
                len(json.loads(path.read_text()).get("Resources", {})),
            )
            for path in sorted(Path(outdir).rglob("*.template.json"))
        }


SCALE_GRAPHS = (1, 10, 50)
FLOOR = "empty CDK app (floor)"
BARE_FLOOR = "empty CDK app, built-in validation off"
DEFAULT = "default config (cdk synth)"
DEFAULT_NAG = "default config + cdk-nag (make synth)"


def cases(extra_configs: list[Path], scale_dir: Path) -> list[Case]:
    empty = REPO / "bench" / "empty_app"
    found = [
        Case(FLOOR, empty),
        Case(BARE_FLOOR, empty, app="python3 app.py --bare"),
        Case(DEFAULT, REPO, {"config": str(REPO / "config" / "default.yaml")}),
        Case(DEFAULT_NAG, REPO, {"config": str(REPO / "config" / "default.yaml"), "nag": "true"}),
    ]
    for graphs in SCALE_GRAPHS:
        path = scale_config(graphs, scale_dir)
        found.append(Case(f"{graphs} graph{'s' if graphs > 1 else ''}", REPO, {"config": str(path)}))
    for path in extra_configs:
        found.append(Case(path.stem, REPO, {"config": str(path)}))
    return found


def precompile() -> None:
    """Bytecode for the app's own modules, as `make synth` leaves it, so no case pays for
    compiling them (PYTHONDONTWRITEBYTECODE would otherwise make every run recompile)."""
    subprocess.run(
        [
            sys.executable,
            "-O",
            "-m",
            "compileall",
            "-q",
            "app.py",
            "config",
            "stacks",
            "k8s_charts",
            "image_build",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )


def report(all_cases: list[Case]) -> str:
    by_name = {case.name: statistics.median(case.seconds) for case in all_cases}
    floor, bare = by_name[FLOOR], by_name[BARE_FLOOR]
    default, with_nag = by_name[DEFAULT], by_name[DEFAULT_NAG]
    lines = [
        f"Runs per case: {len(all_cases[0].seconds)} (median), Node {_node_version()}, "
        f"{os.cpu_count()} cores.",
        "",
        f"- default synth / empty-app floor: **{default / floor:.2f}x** (target <= 1.3x)",
        f"- with cdk-nag, as `make synth` and the pipeline run it: **{with_nag / floor:.2f}x**",
        f"- default synth / bare floor (built-in validation off, as in our app): "
        f"**{default / bare:.2f}x** (no target; shown so the floor's own work is visible)",
        f"- 50 graphs / 1 graph: **{by_name['50 graphs'] / by_name['1 graph']:.2f}x** (target <= 2x)",
        "",
        "| case | median synth (s) | x floor | x bare floor | largest template (KB, % of 1 MB) "
        "| most resources (% of 500) |",
        "|---|---|---|---|---|---|",
    ]
    for case in all_cases:
        median = by_name[case.name]
        size = max((s for s, _ in case.stacks.values()), default=0)
        count = max((c for _, c in case.stacks.values()), default=0)
        lines.append(
            f"| {case.name} | {median:.2f} | {median / floor:.2f} | {median / bare:.2f} | "
            f"{size / 1000:.0f} ({100 * size / TEMPLATE_LIMIT_BYTES:.0f}%) | "
            f"{count} ({100 * count / RESOURCE_LIMIT:.0f}%) |"
        )
    lines += ["", "| case | stack | template KB | resources |", "|---|---|---|---|"]
    for case in all_cases:
        if case.name in (FLOOR, BARE_FLOOR):
            continue
        for stack, (size, count) in case.stacks.items():
            lines.append(f"| {case.name} | {stack} | {size / 1000:.0f} | {count} |")
    return "\n".join(lines)


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--config", action="append", default=[], type=Path, help="extra config")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return 2
    precompile()
    with tempfile.TemporaryDirectory(prefix="bench-configs-") as scale_dir:
        all_cases = cases(args.config, Path(scale_dir))
        for round_number in range(args.runs):
            for case in all_cases:
                synth_once(case)
            print(f"round {round_number + 1}/{args.runs} done", file=sys.stderr)
    text = report(all_cases)
    print(text)
    args.out.write_text("# `make bench` results\n\n" + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
