"""`make help` lists every target; `python -m ops --help` is written for users."""

from __future__ import annotations

import re
import subprocess
import sys

from ops.cli import COMMANDS
from tests.ops_dynamo_support import REPO


def phony_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    declared = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert declared, "Makefile has no .PHONY line"
    return set(declared[1].split())


def test_make_help_lists_every_phony_target():
    result = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    listed: set[str] = set()
    for group in re.findall(r"\bmake ([\w|-]+)", result.stdout):
        listed.update(group.split("|"))
    assert phony_targets() - listed == set(), result.stdout


def test_every_rule_target_is_phony_or_a_file():
    """A new target without .PHONY would be skipped if a file of its name appeared."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    rules = set(re.findall(r"^([a-z][\w-]*):(?!=)", text, re.M))
    assert rules - phony_targets() == set()


def test_ops_help_is_for_users():
    result = subprocess.run(
        [sys.executable, "-m", "ops", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    first = result.stdout.split("\n\n")[1]
    assert first.startswith("Commands around a dynamo-eks deployment")
    for implementation_note in ("registry", "add_arguments", "module"):
        assert implementation_note not in result.stdout
    for name in COMMANDS:
        assert re.search(rf"^    {re.escape(name)}\b", result.stdout, re.M), name
    assert "make rehearse KEEP=1" in result.stdout
