"""How the record scripts that run inside an installed package print what they read."""

from __future__ import annotations

import json
import sys


def print_record(record: dict) -> int:
    """The record as the committed files hold it (indent 1, sorted keys), on stdout."""
    json.dump(record, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0
