"""`ops config-docs`: the configuration reference, generated from the pydantic models.

Generated so it can never drift from what the validator accepts; tests/test_config_docs.py
fails when docs/CONFIG.md is out of date (`make docs` rewrites it).
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "CONFIG.md"

HEADER = """# Configuration reference

Generated from the models in `config/` by `make docs` (do not edit by hand). Unknown keys are
errors. Start from `config/default.yaml`; examples live in `config/examples/`.

| key | type | default | meaning |
|---|---|---|---|
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to write")


def run(args: argparse.Namespace) -> int:
    args.out.write_text(render(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def render() -> str:
    from config.schema import DeploymentConfig

    return HEADER + "".join(_rows(DeploymentConfig, ""))


def _rows(model: type[BaseModel], prefix: str):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested, is_list = _nested_model(field.annotation)
        description = (field.description or (nested.__doc__ if nested else "") or "").strip()
        description = " ".join(description.split())
        if nested is not None:
            shown = f"list of {nested.__name__}" if is_list else nested.__name__
            yield f"| `{key}` | {shown} | {_default(field) if is_list else ''} | {description} |\n"
            yield from _rows(nested, f"{key}[]." if is_list else f"{key}.")
        else:
            yield f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |\n"


def _nested_model(annotation) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        inner, _ = _nested_model(args[0])
        return inner, inner is not None
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            inner, is_list = _nested_model(arg)
            if inner is not None:
                return inner, is_list
    if origin is typing.Annotated:
        return _nested_model(args[0])
    return None, False


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} entries"
    return f"`{json.dumps(value)}`"
