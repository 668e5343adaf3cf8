"""docs/CONFIG.md is generated from the models and every setting explains itself."""

from __future__ import annotations

from ops.config_docs import DEFAULT_OUT, render


def test_reference_is_up_to_date():
    assert DEFAULT_OUT.read_text() == render(), "docs/CONFIG.md is stale: run `make docs`"


def test_every_setting_has_a_description():
    undocumented = [
        line.split("|")[1].strip()
        for line in render().splitlines()
        if line.startswith("| `") and line.rstrip().endswith("|  |")
    ]
    assert undocumented == [], f"add Field(description=...) to: {undocumented}"
