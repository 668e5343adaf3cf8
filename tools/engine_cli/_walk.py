"""Runs INSIDE the throw-away engine venv (stdlib only, plus the engine itself).

Imports only an engine's argument-definition code, walks the resulting argparse parser and
prints one JSON document (the raw option list) on stdout. ``extract.py`` drives it; it is not
imported by anything in the repo.

Usage (inside the engine venv): python _walk.py vllm|sglang
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import typing
import warnings


def _fn_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _closure_var(fn, name: str):
    code = getattr(fn, "__code__", None)
    if code is None or fn.__closure__ is None:
        return None
    if name in code.co_freevars:
        return fn.__closure__[code.co_freevars.index(name)].cell_contents
    return None


def _unwrap(fn):
    """Peel vLLM's optional_type()/parse_type() wrappers: (inner callable, optional?)."""
    optional = False
    for _ in range(8):
        name = getattr(fn, "__name__", "")
        inner = None
        if name in ("_optional_type", "_parse_type"):
            inner = _closure_var(fn, "return_type")
            optional = optional or name == "_optional_type"
        if inner is None:
            break
        fn = inner
    return fn, optional


def _is_model_class(cls) -> bool:
    return isinstance(cls, type) and (dataclasses.is_dataclass(cls) or hasattr(cls, "model_fields"))


def _field_types(cls) -> dict:
    """name -> annotation of a dataclass / pydantic model (resolved where possible)."""
    try:
        hints = typing.get_type_hints(cls, include_extras=False)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to raw
        hints = {}
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        raw = {f.name: f.type for f in dataclasses.fields(cls)}
    else:
        names = list(cls.model_fields)
        raw = {n: f.annotation for n, f in cls.model_fields.items()}
    return {n: hints.get(n, raw[n]) for n in names if not n.startswith("_")}


def _flatten(tp) -> list:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(tp)[0])
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        out = []
        for a in typing.get_args(tp):
            out += _flatten(a)
        return out
    return [tp]


def _literal_values(tp):
    vals = []
    for t in _flatten(tp):
        if typing.get_origin(t) is typing.Literal:
            vals += [str(v) for v in typing.get_args(t)]
    return sorted(set(vals)) or None


def _describe_model(cls, depth: int = 1) -> dict:
    types = _field_types(cls)
    out = {"json_class": cls.__name__, "json_fields": sorted(types)}
    choices = {}
    nested = {}
    for name, tp in types.items():
        lit = _literal_values(tp)
        if lit:
            choices[name] = lit
        if depth > 0:
            for t in _flatten(tp):
                if _is_model_class(t):
                    nested[name] = {"json_class": t.__name__, "json_fields": sorted(_field_types(t))}
                    break
    if choices:
        out["json_field_choices"] = choices
    if nested:
        out["json_nested"] = nested
    return out


def _is_str_to_bool(fn) -> bool:
    try:
        return fn("true") is True and fn("false") is False
    except Exception:  # noqa: BLE001 - not a bool parser
        return False


def _type_repr(fn) -> str:
    mod = getattr(fn, "__module__", None)
    name = _fn_name(fn)
    return f"{mod}.{name}" if mod else name


# Parsers whose value is a JSON document (a dict, or sglang's JSON list of ...).
_JSON_PARSERS = ("loads", "json_loads", "json_list_type")


def _walk(parser: argparse.ArgumentParser, json_classes: dict) -> list:
    options = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        rec = {
            "flags": list(action.option_strings),
            "dest": action.dest,
            "nargs": action.nargs if not isinstance(action.nargs, int) else action.nargs,
            "choices": sorted(str(c) for c in action.choices) if action.choices else None,
        }
        if isinstance(action, argparse.BooleanOptionalAction):
            kind = "bool_optional"
        elif isinstance(action, argparse._StoreTrueAction):
            kind = "store_true"
        elif isinstance(action, argparse._StoreFalseAction):
            kind = "store_false"
        elif isinstance(action, argparse._StoreConstAction):
            kind = "other"
            rec["type_repr"] = f"store_const({action.const!r})"
        elif not isinstance(action, argparse._StoreAction) and action.type is None and action.nargs == 0:
            # custom flag-style actions (e.g. a deprecated store_true)
            kind = "store_true" if action.default in (False, None) else "other"
            if kind == "other":
                rec["type_repr"] = type(action).__name__
            rec["action"] = type(action).__name__
        else:
            fn, optional = _unwrap(action.type) if action.type is not None else (str, False)
            name = getattr(fn, "__name__", "")
            if fn is str:
                kind = "str"
            elif fn is int:
                kind = "int"
            elif fn is float:
                kind = "float"
            elif name == "parse_dataclass" or fn is json.loads or name in _JSON_PARSERS:
                kind = "json"
                cls = None
                if name == "parse_dataclass":
                    cls = (getattr(fn, "__defaults__", None) or (None,))[0]
                cls = cls or json_classes.get(action.dest)
                if _is_model_class(cls):
                    rec.update(_describe_model(cls))
                else:
                    rec["json_class"] = None
                    rec["json_fields"] = None
            elif fn is bool or (callable(fn) and not isinstance(fn, type) and _is_str_to_bool(fn)):
                kind = "bool_value"
                rec["type_repr"] = _type_repr(fn)
            else:
                kind = "other"
                rec["type_repr"] = _type_repr(fn)
            if kind == "json" and name != "parse_dataclass" and fn is not json.loads:
                rec["type_repr"] = _type_repr(fn)
            if not isinstance(action, argparse._StoreAction):
                rec["action"] = type(action).__name__
        rec["kind"] = kind
        options.append(rec)
    return options


def _vllm_cuda_shim():
    """No GPU (and a CPU torch) here: vLLM's platform detection finds none and its CUDA
    platform module needs the CUDA extension. The argument definitions only read the
    platform for defaults (DeviceConfig's "auto") and call pre_register_and_update, which the
    CUDA platform does not override; so stand in a base Platform that says "cuda"."""
    import vllm.platforms as platforms
    from vllm.platforms.interface import Platform, PlatformEnum

    class _CudaShim(Platform):
        _enum = PlatformEnum.CUDA
        device_name = "cuda"
        device_type = "cuda"
        dispatch_key = "CUDA"

    platforms.current_platform = _CudaShim()
    return "vllm.platforms.interface.Platform shim (_enum=CUDA, device_type=cuda); no GPU"


def _vllm():
    platform = _vllm_cuda_shim()
    from vllm.engine.arg_utils import AsyncEngineArgs

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older layout, as dynamo/vllm/args.py also tries
        from vllm.utils import FlexibleArgumentParser
    from vllm.config import VllmConfig

    parser = FlexibleArgumentParser(add_help=False)
    AsyncEngineArgs.add_cli_args(parser, async_args_only=False)  # as dynamo/vllm/args.py
    # json.loads-typed options (e.g. --speculative-config) name their class via VllmConfig.
    json_classes = {}
    for name, tp in _field_types(VllmConfig).items():
        for t in _flatten(tp):
            if _is_model_class(t):
                json_classes[name] = t
                break
    extra = {}
    from vllm.distributed.kv_events import KVEventsConfig

    extra["KVEventsConfig"] = _describe_model(KVEventsConfig)
    return parser, json_classes, extra, platform


def _sglang():
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(add_help=False)
    ServerArgs.add_cli_args(parser)  # as dynamo/sglang/args.py
    return parser, {}, {}, None


def main() -> None:
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    engine = sys.argv[1]
    parser, json_classes, extra, platform = {"vllm": _vllm, "sglang": _sglang}[engine]()
    out = {
        "options": _walk(parser, json_classes),
        "config_classes": extra,
        "platform": platform,
        "parser_class": f"{type(parser).__module__}.{type(parser).__qualname__}",
    }
    sys.stdout.write("\n@@ENGINE_CLI_JSON@@\n" + json.dumps(out, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
