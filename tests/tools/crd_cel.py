"""The CEL rules of a CRD (`x-kubernetes-validations`), evaluated the way the API server does.

A JSON Schema check skips these rules, yet the API server refuses an object that breaks one:
Karpenter's NodePool restricts which `karpenter.k8s.aws/*` labels a requirement may name,
its EC2NodeClass ties `amiFamily` to the AMI alias, External Secrets' stores allow one auth
method. So the CRD gate (tests/tools/k8s_schema.py) runs them too, with cel-python.

What the API server does and this copies, for a create:
- schema defaults are applied first, then every rule of every schema node the object has a
  value for runs with `self` bound to that value (a missing optional field runs nothing);
- transition rules (those that read `oldSelf`) only run on update, so they are skipped;
- a rule that is false, or cannot be evaluated, refuses the object with its message.
Kubernetes adds string functions to CEL; the ones the vendored CRDs use are provided here
(`find` from its regex library, `split` from its strings library), and a rule that calls a
function this module does not provide fails loudly instead of passing.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import celpy
from celpy import celtypes


def _find(value: Any, pattern: Any) -> celtypes.StringType:
    # Kubernetes' regex library: the first match, or "" when there is none.
    match = re.search(str(pattern), str(value))
    return celtypes.StringType(match.group(0) if match else "")


def _split(value: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(value).split(str(separator))])


KUBERNETES_FUNCTIONS = {"find": _find, "split": _split}


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    env = _environment()
    return env.program(env.compile(rule), functions=KUBERNETES_FUNCTIONS)


def is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def with_defaults(schema: dict, value: Any) -> Any:
    """`value` with the schema's defaults filled in where a field is absent (as the API server
    does before validating)."""
    value = copy.deepcopy(value)
    _fill_defaults(schema, value)
    return value


def _fill_defaults(schema: dict, value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _fill_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in schema.get("properties", {}):
                    _fill_defaults(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill_defaults(schema["items"], item)


def rule_errors(schema: dict, value: Any, path: str = "") -> list[str]:
    """Every CEL rule of `schema` and its sub-schemas that `value` breaks, with the path."""
    errors: list[str] = []
    for validation in schema.get("x-kubernetes-validations", []):
        rule = validation["rule"]
        if is_transition_rule(rule):
            continue
        where = path or "(root)"
        message = validation.get("message") or f"failed rule: {rule}"
        try:
            result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as err:  # any evaluation failure refuses the object
            errors.append(f"{where}: {message} (rule could not be evaluated: {err})")
            continue
        if isinstance(result, Exception):
            errors.append(f"{where}: {message} (rule could not be evaluated: {result})")
        elif not (isinstance(result, celtypes.BoolType) and bool(result)):
            errors.append(f"{where}: {message}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None:
                errors += rule_errors(sub, item, f"{path}.{name}" if path else name)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += rule_errors(schema["items"], item, f"{path}[{index}]")
    return errors


def cel_errors(schema: dict, obj: dict) -> list[str]:
    """The API server's CEL verdict on creating `obj` under its CRD's openAPIV3Schema."""
    return rule_errors(schema, with_defaults(schema, obj))
