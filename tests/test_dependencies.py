"""Data flows one way: config <- plan <- k8s_charts <- stacks <- app, with ops and image_build
on top. Every import counts, lazy ones and `TYPE_CHECKING` ones included."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.tools.synth import REPO

# Lower layers may be imported by higher ones, never the reverse.
LAYERS = {"config": 0, "plan": 1, "k8s_charts": 2, "stacks": 3, "app": 4, "ops": 5, "image_build": 5}
# Libraries a layer must not load (the pure layers stay fast and testable without jsii).
FORBIDDEN = {
    "config": {"aws_cdk", "cdk8s", "cdk8s_plus_36", "constructs", "stacks", "k8s_charts", "plan"},
    "plan": {"aws_cdk", "cdk8s", "cdk8s_plus_36", "constructs"},
    "k8s_charts": {"aws_cdk", "stacks"},
}
EXCLUDED = ("k8s_charts/imports/",)


def project_modules() -> dict[str, Path]:
    modules = {"app": REPO / "app.py"}
    for package in LAYERS:
        folder = REPO / package
        if not folder.is_dir():
            continue
        for path in folder.rglob("*.py"):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith(EXCLUDED):
                continue
            name = relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
            modules[name] = path
    return modules


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute names of every module `path` imports, at any depth of the file."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, imported in sorted(graph.items()):
        layer = top(module)
        for name in sorted(imported):
            target = top(name)
            if target in FORBIDDEN.get(layer, set()):
                problems.append(f"{module} imports {name}")
            elif target in LAYERS and LAYERS[target] > LAYERS[layer]:
                problems.append(f"{module} imports {name} (upward)")
            elif target in ("ops", "image_build") and layer not in ("ops", "image_build"):
                problems.append(f"{module} imports {name} (ops and image_build are on top)")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among project modules (Tarjan's strongly connected components)."""
    edges = {m: sorted(n for n in names if n in graph and n != m) for m, names in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        imported = imports_of(path, module)
        # `from config import versions` names the module config.versions, not the package.
        graph[module] = {name for name in imported if name in modules or top(name) not in LAYERS} | {
            name
            for name in imported
            if top(name) in LAYERS and name not in modules and name.rpartition(".")[0] in modules
        }
    return graph


def test_no_module_imports_upward_or_forbidden_libraries():
    assert violations(import_graph()) == []


def test_no_import_cycles_between_project_modules():
    graph = import_graph()
    internal = {m: {n for n in names if n in graph} for m, names in graph.items()}
    # Package __init__ files re-export their modules; only module-to-module cycles count.
    assert (
        cycles(
            {
                m: {n for n in names if not (m.startswith(n + ".") or n.startswith(m + "."))}
                for m, names in internal.items()
            }
        )
        == []
    )


def test_the_checks_catch_what_they_guard():
    planted = {
        "config.images": {"stacks.names", "aws_cdk"},
        "k8s_charts.graphs": {"stacks.names"},
        "plan.capacity": {"cdk8s"},
        "stacks.image_build": {"image_build.client"},
    }
    assert violations(planted) == [
        "config.images imports aws_cdk",
        "config.images imports stacks.names",
        "k8s_charts.graphs imports stacks.names",
        "plan.capacity imports cdk8s",
        "stacks.image_build imports image_build.client (upward)",
    ]
    assert cycles({"config.graphs": {"config.capacity"}, "config.capacity": {"config.graphs"}}) == [
        ["config.capacity", "config.graphs"]
    ]
