"""Check Helm values we set against an upstream chart's values.yaml."""

from __future__ import annotations

import copy


def unknown_keys(
    values: dict, upstream, prefix: str = "", *, free_form: frozenset[str] = frozenset()
) -> list[str]:
    """Dotted paths of keys we set that upstream does not have. Where upstream's value is a
    free-form leaf (`affinity: {}`, `tolerations: []`), whatever we put inside is a value;
    `free_form` names maps whose keys are the user's even though upstream fills them in
    (e.g. `nodeSelector: {kubernetes.io/os: linux}`)."""
    missing = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if not isinstance(upstream, dict) or key not in upstream:
            missing.append(path)
        elif path in free_form:
            continue
        elif isinstance(value, dict) and isinstance(upstream[key], dict) and upstream[key]:
            missing.extend(unknown_keys(value, upstream[key], path + ".", free_form=free_form))
    return missing


def without(values: dict, paths) -> dict:
    """A copy of values without the given dotted leaf paths (and maps they leave empty)."""
    values = copy.deepcopy(values)
    for path in paths:
        _drop(values, path)
    return values


def _drop(values: dict, path: str) -> None:
    head, _, rest = path.partition(".")
    if not isinstance(values, dict) or head not in values:
        return
    if rest:
        _drop(values[head], rest)
        if values[head]:
            return
    del values[head]


def nested(path: str) -> dict:
    head, _, rest = path.partition(".")
    return {head: nested(rest) if rest else None}
