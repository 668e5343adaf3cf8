"""`python -m ops <command>`: one CLI for everything a user runs around a deployment."""

from __future__ import annotations

import sys

from ops.cli import main

sys.exit(main(sys.argv[1:]))
