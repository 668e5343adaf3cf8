"""cfn-lint over synthesized templates, with the project's ignore list (cfn-lint-ignores.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml
from cfnlint.api import ManualArgs, lint_file

from tests.tools.synth import REPO


def ignored_rules() -> dict[str, str]:
    """Rule id -> reason, from the one config file that may silence cfn-lint."""
    data = yaml.safe_load((REPO / "cfn-lint-ignores.yaml").read_text()) or {}
    return dict(data.get("ignore_checks_with_reasons") or {})


def lint(template: Path, regions: list[str]) -> list[str]:
    args = ManualArgs(regions=regions, ignore_checks=list(ignored_rules()))
    return [f"{template.name}: {match}" for match in lint_file(template, config=args)]
