"""Read a config file and turn every problem into one actionable line.

Errors are raised here, at the boundary, with the field path; nothing deeper in the app
has to guess what the user meant.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.schema import DeploymentConfig


class ConfigError(Exception):
    """A config the app refuses, with one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    def report(self, stream=sys.stderr) -> None:
        for line in self.lines:
            print(f"error: {line}", file=stream)


def load_config(path: str | Path) -> DeploymentConfig:
    path = Path(path)
    data = read_yaml(path)
    try:
        cfg = DeploymentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_errors(path, err)) from None
    return cfg


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            [
                f"{path}: config file not found; pass an existing file with CONFIG=path "
                "(make) or -c config=path (cdk)"
            ]
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            [f"{where}: YAML syntax error: {problem}; check indentation and quoting on that line"]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"{path}: expected a mapping of settings at the top level, "
                f"got {type(data).__name__}; start from config/default.yaml"
            ]
        )
    return data


def describe_errors(path: Path, err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        loc = item["loc"]
        field = ".".join(str(part) for part in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: {field}: {_unknown_key_hint(loc)}")
            continue
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] == "missing":
            message = "required setting is missing; add it (see config/default.yaml)"
        elif item["type"] in ("literal_error", "enum"):
            message = f"{message} (got {item.get('input')!r})"
        # Cross-section checks (model validators at the top) name their fields themselves,
        # and one that finds several problems (e.g. one per graph) puts one per line.
        for part in message.splitlines():
            lines.append(f"{path}: {field}: {part}" if loc else f"{path}: {part}")
    return lines


def _unknown_key_hint(loc: tuple) -> str:
    key = str(loc[-1])
    allowed = _fields_at(DeploymentConfig, loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
    return f"unknown key '{key}'; {hint}"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model found by following loc (skipping list indexes)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part)) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation such as Model, list[Model] or Model | None."""
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
