"""Synthesize a config once per test process and hand out the templates.

Synth is the slow part of the suite (jsii + the whole construct tree), so every test that
needs templates asks `synth(path)`, which caches per config path.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    templates: dict[str, dict]  # stack name -> template
    template_files: dict[str, Path]

    def template(self, unit: str) -> dict:
        """The template whose stack name ends with -<unit> (e.g. 'cluster')."""
        matches = [name for name in self.templates if name.endswith(f"-{unit}")]
        assert len(matches) == 1, f"expected one '{unit}' stack, found {sorted(self.templates)}"
        return self.templates[matches[0]]

    def assertions(self, unit: str):
        from aws_cdk.assertions import Template

        return Template.from_json(self.template(unit))


@functools.cache
def synth(config_path: str | Path) -> Synthesized:
    from app import build_app, new_app

    path = Path(config_path)
    if not path.is_absolute():
        path = REPO / path
    outdir = Path(tempfile.mkdtemp(prefix="synth-"))
    app = new_app(outdir=str(outdir), context={"config": str(path)})
    build_app(app, str(path))
    assembly = app.synth()
    templates: dict[str, dict] = {}
    files: dict[str, Path] = {}
    for stack in _all_stacks(assembly):
        file = Path(stack.template_full_path)
        templates[stack.stack_name] = json.loads(file.read_text())
        files[stack.stack_name] = file
    return Synthesized(outdir=outdir, templates=templates, template_files=files)


def _all_stacks(assembly):
    """Stacks of the app, including those inside Stages (pipelines)."""
    yield from assembly.stacks
    for nested in assembly.nested_assemblies:
        yield from _all_stacks(nested.nested_assembly)
