"""Record the Prometheus series names a Python package registers with prometheus_client,
read from its pinned source (never imported).

    # The Dynamo Planner (run with the project's Dynamo venv, which holds ai-dynamo 1.6.1):
    .venv-dynamo/bin/python -m tools.prometheus_client_names planner \\
        > k8s_charts/dashboards/metric_sources/dynamo-planner.json
    # SGLang (the wheel ai-dynamo 1.6.1 pins, the one tests/data/engine_cli/ was made from):
    python -m tools.prometheus_client_names sglang sglang-0.5.21-cp311-cp311-manylinux_2_34_x86_64.whl \\
        > k8s_charts/dashboards/metric_sources/sglang-0.5.21.json

Every call of a metric class (`Counter`, `Gauge`, `Histogram`, `Summary`, `Enum`, and
SGLang's `GaugeHistogram`, a Gauge with bucket labels) whose name is a string literal, or an
f-string of module-level string constants, starting with the package's prefix is a metric.
What a scrape shows for it follows prometheus_client's exposition: a Counter as
`<name without _total>_total`, a Histogram as `_bucket`/`_sum`/`_count`, a Summary as
`_sum`/`_count`, a Gauge and an Enum under their own name. A metric call whose name cannot be
resolved this way fails the run, so a name is never silently missed.

The dashboards may query only recorded names (k8s_charts/dashboards/exported_metrics.py,
tests/test_metric_names.py); tests/test_prometheus_client_names.py checks the records.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Enum", "GaugeHistogram"}
# kind -> suffixes a scrape shows
EXPOSED = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "GaugeHistogram": ("",),
    "Enum": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
}
PLANNER_FILES = ("dynamo/planner/monitoring/planner_metrics.py",)
PLANNER_PREFIX = "dynamo_planner_"
SGLANG_ROOT = "sglang/srt/"
SGLANG_PREFIX = "sglang:"


class UnresolvedName(ValueError):
    pass


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "literal"` assignments."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _resolve(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value)
            elif (
                isinstance(value, ast.FormattedValue)
                and isinstance(value.value, ast.Name)
                and value.value.id in constants
                and value.format_spec is None
            ):
                parts.append(constants[value.value.id])
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _class_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def metrics_in_source(source: str, prefix: str, where: str = "<source>") -> dict[str, str]:
    """Registered metric name -> its class, for every metric call named with `prefix`."""
    tree = ast.parse(source)
    constants = _constants(tree)
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _class_name(node.func) not in METRIC_CLASSES:
            continue
        kind = _class_name(node.func)
        assert kind is not None
        arg = next((k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None)
        if arg is None:
            continue
        name = _resolve(arg, constants)
        if name is None:
            # Only an error when it could be one of ours: a prefix-looking literal part.
            text = ast.unparse(arg)
            if prefix.rstrip("_:") in text or "PREFIX" in text:
                raise UnresolvedName(f"{where}:{node.lineno}: cannot resolve metric name {text}")
            continue
        if name.startswith(prefix):
            found[name] = kind
    return found


def exposed(registered: dict[str, str]) -> dict[str, str]:
    """Series names a scrape shows -> the registered metric's class."""
    series = {}
    for name, kind in registered.items():
        base = name.removesuffix("_total") if kind == "Counter" else name
        for suffix in EXPOSED[kind]:
            series[base + suffix] = kind
    return series


def _scan(files: Iterable[tuple[str, str]], prefix: str) -> tuple[dict[str, str], list[str]]:
    registered: dict[str, str] = {}
    used = []
    for path, text in files:
        names = metrics_in_source(text, prefix, path)
        if names:
            used.append(path)
            registered.update(names)
    return registered, sorted(used)


def planner_record() -> dict:
    dist = metadata.distribution("ai-dynamo")
    files = []
    for relative in PLANNER_FILES:
        located = next((f for f in dist.files or () if str(f) == relative), None)
        if located is None:
            raise SystemExit(f"ai-dynamo {dist.version} has no {relative}")
        files.append((relative, Path(str(located.locate())).read_text(encoding="utf-8")))
    registered, used = _scan(files, PLANNER_PREFIX)
    return {
        "source": "ai-dynamo (dynamo.planner) prometheus_client metrics, read by tools/prometheus_client_names.py",
        "package": "ai-dynamo",
        "version": dist.version,
        "files": used,
        "metrics": dict(sorted(exposed(registered).items())),
    }


def sglang_record(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        files = [
            (n, archive.read(n).decode("utf-8"))
            for n in sorted(archive.namelist())
            if n.startswith(SGLANG_ROOT) and n.endswith(".py")
        ]
        version = next(
            n.split("/")[0].removeprefix("sglang-").removesuffix(".dist-info")
            for n in archive.namelist()
            if n.endswith(".dist-info/METADATA")
        )
    registered, used = _scan(files, SGLANG_PREFIX)
    return {
        "source": "SGLang prometheus_client metrics in sglang/srt, read from the wheel by "
        "tools/prometheus_client_names.py",
        "package": "sglang",
        "version": version,
        "wheel": wheel.name,
        "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "files": used,
        "metrics": dict(sorted(exposed(registered).items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("package", choices=("planner", "sglang"))
    parser.add_argument("wheel", type=Path, nargs="?")
    args = parser.parse_args(argv)
    if args.package == "sglang" and args.wheel is None:
        parser.error("sglang needs the wheel")
    record = planner_record() if args.package == "planner" else sglang_record(args.wheel)
    json.dump(record, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
