"""A handler's asset is its code only: bytecode Python leaves beside it (whenever a test
imports the handler) must not change the asset hash, or templates would differ between a
clean clone and a tree where tests ran."""

from __future__ import annotations

import shutil

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from stacks.lambda_code import handler_code
from stacks.teardown_guard import HANDLER_DIR


def _asset_key(directory, code=handler_code) -> str:
    stack = Stack(App(), "S")
    lambda_.Function(
        stack,
        "F",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.on_event",
        code=code(directory),
    )
    (function,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    return function["Properties"]["Code"]["S3Key"]


def test_bytecode_beside_a_handler_does_not_change_its_asset(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(HANDLER_DIR / "index.py", clean / "index.py")
    used = tmp_path / "used"
    shutil.copytree(clean, used)
    (used / "__pycache__").mkdir()
    (used / "__pycache__" / "index.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (used / "stray.pyc").write_bytes(b"\x00")
    assert _asset_key(used) == _asset_key(clean)
    # Planted: without the exclusion the hash follows the bytecode.
    plain = lambda d: lambda_.Code.from_asset(str(d))  # noqa: E731
    assert _asset_key(used, plain) != _asset_key(clean, plain)
