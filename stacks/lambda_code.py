"""Code of the Lambdas whose handlers live in this repository."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_

# Python writes these next to a handler whenever a test imports it; they must not reach the
# asset, or its hash (and so the template) would depend on whether tests ran in this tree.
_NOT_CODE = ["__pycache__", "*.pyc"]


def handler_code(directory: Path) -> lambda_.Code:
    return lambda_.Code.from_asset(str(directory), exclude=_NOT_CODE)
