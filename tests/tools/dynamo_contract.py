"""Feed rendered command lines and config blobs to the Dynamo 1.6.1 code that receives them.

Runs INSIDE the project's Dynamo venv (`.venv-dynamo/bin/python tests/tools/dynamo_contract.py`),
never in the app's venv: it imports ai-dynamo 1.6.1 itself. Reads a JSON list of cases on
stdin and writes one result per case on stdout: `{"id": ..., "ok": bool, "error": str}`.

What receives what, and how much of it is the real program:
- frontend (`dynamo.frontend`): Dynamo's own `parse_args`, with the container's env.
- mocker (`dynamo.mocker`): Dynamo's own `parse_args`.
- planner: `PlannerConfig.from_config_arg`, the call `python -m dynamo.planner --config`
  makes, plus every key must be a field (or alias) of that class: it ignores unknown keys.
- vLLM workers: Dynamo's own `dynamo.vllm.args` flow (`_parse_cli_args`, `validate`,
  `cross_validate_config`, `update_dynamo_config_with_engine`, ...). vLLM itself cannot be
  imported on a CPU machine, so `vllm` is a stand-in built from the pinned record of vLLM
  0.31.0's parser (tests/data/engine_cli/vllm-*.json, extracted from the released wheel):
  every option with its arity, type, choices and, for JSON options, the config class fields.
- SGLang workers: Dynamo's own argument groups and config validation split the argv exactly
  as `dynamo.sglang.args.parse_args` does; the rest goes to a parser built from the record
  of SGLang 0.5.21's `ServerArgs.add_cli_args`.
- TRT-LLM workers: Dynamo's own `dynamo.trtllm.args.parse_args` (it defines every flag);
  `tensorrt_llm` is a stand-in carrying the recorded BuildConfig defaults, and the
  `--override-engine-args` keys are checked against the recorded LlmArgs fields.
Anything Dynamo warns about (deprecated or obsolete flags) fails the case too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import logging
import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any

RECORDS = Path(__file__).resolve().parents[1] / "data" / "engine_cli"
# Env vars that change how Dynamo's parsers behave; each case starts from none of them.
_SCRUB_PREFIXES = ("DYN_", "VLLM_", "SGLANG_", "TRTLLM_", "PROMETHEUS_", "PLANNER_")


class CaseError(Exception):
    """What the receiving program refused, as its own message."""


@functools.cache
def _record(package: str) -> dict:
    (path,) = sorted(RECORDS.glob(f"{package}-*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


# -- parsers built from a record --------------------------------------------------------------


def _json_type(option: dict, nested_fields: list[str] | None = None):
    fields = set(option.get("json_fields") or [])
    choices = option.get("json_field_choices") or {}
    name = option.get("json_class", option["flags"][0])

    def check(blob: dict, where: str) -> None:
        unknown = sorted(set(blob) - fields)
        if unknown:
            raise argparse.ArgumentTypeError(f"{where}: {name} has no field(s) {unknown}")
        for key, allowed in choices.items():
            if key in blob and str(blob[key]) not in allowed:
                raise argparse.ArgumentTypeError(f"{where}: {name}.{key}={blob[key]!r} not in {allowed}")

    def parse(text: str) -> Any:
        try:
            blob = json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"{option['flags'][0]}: not JSON ({err})") from None
        if not isinstance(blob, dict):
            raise argparse.ArgumentTypeError(f"{option['flags'][0]}: expected a JSON object")
        check(blob, option["flags"][0])
        # vLLM's MultiConnector (which KVBM's PdConnector extends) builds one KVTransferConfig
        # from each entry of kv_connector_extra_config.connectors.
        for index, entry in enumerate((blob.get("kv_connector_extra_config") or {}).get("connectors", [])):
            check(entry, f"{option['flags'][0]} connectors[{index}]")
        return types.SimpleNamespace(**{field: blob.get(field) for field in fields})

    return parse


_SCALARS = {"str": str, "int": int, "float": float}


def add_recorded_options(parser: argparse.ArgumentParser, record: dict) -> None:
    """Every option of the engine's own parser, with its arity, type and choices."""
    for option in record["options"]:
        kind, flags = option["kind"], option["flags"]
        kwargs: dict[str, Any] = {"dest": option["dest"], "default": None}
        if kind == "store_true":
            kwargs["action"] = "store_true"
        elif kind == "store_false":
            kwargs["action"] = "store_false"
        elif kind == "bool_optional":
            kwargs["action"] = argparse.BooleanOptionalAction
            flags = [f for f in flags if not f.startswith("--no-")]
        else:
            if option.get("nargs") not in (None, 0):
                kwargs["nargs"] = option["nargs"]
            if kind == "json":
                kwargs["type"] = _json_type(option)
            elif kind in _SCALARS:
                kwargs["type"] = _SCALARS[kind]
            if option.get("choices") is not None:
                kwargs["choices"] = option["choices"]
                kwargs["type"] = str
        parser.add_argument(*flags, **kwargs)


# -- stand-ins for engines that cannot be imported on a CPU machine ----------------------------


def install_vllm_standin() -> None:
    record = _record("vllm")

    class FlexibleArgumentParser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("allow_abbrev", False)
            super().__init__(*args, **kwargs)

    class AsyncEngineArgs(types.SimpleNamespace):
        @staticmethod
        def add_cli_args(
            parser: argparse.ArgumentParser, async_args_only: bool = False
        ) -> argparse.ArgumentParser:
            add_recorded_options(parser, record)
            return parser

        @classmethod
        def from_cli_args(cls, args: argparse.Namespace) -> AsyncEngineArgs:
            return cls(**vars(args))

    class KVEventsConfig(types.SimpleNamespace):
        pass

    modules = {
        "vllm": {},
        "vllm.utils": {"FlexibleArgumentParser": FlexibleArgumentParser},
        "vllm.utils.argparse_utils": {"FlexibleArgumentParser": FlexibleArgumentParser},
        "vllm.engine": {},
        "vllm.engine.arg_utils": {"AsyncEngineArgs": AsyncEngineArgs},
        "vllm.distributed": {},
        "vllm.distributed.kv_events": {"KVEventsConfig": KVEventsConfig},
    }
    _install(modules, version=record["version"])


def install_trtllm_standin() -> None:
    record = _record("tensorrt-llm")

    class _Field:
        def __init__(self, default: Any) -> None:
            self.default = default

    class BuildConfig:
        model_fields = {name: _Field(value) for name, value in record["build_defaults"].items()}

    _install(
        {"tensorrt_llm": {}, "tensorrt_llm.llmapi": {"BuildConfig": BuildConfig}}, version=record["version"]
    )


def _install(modules: dict[str, dict], *, version: str) -> None:
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        module.__path__ = []  # a package, so submodules resolve
        module.__version__ = version
        sys.modules[name] = module


def import_planner_config():
    """PlannerConfig without dynamo.planner's package __init__, which pulls in the planner's
    runtime (numpy, scikit-learn, ...) that the config class itself never uses."""
    import dynamo

    if "dynamo.planner" not in sys.modules:
        package = types.ModuleType("dynamo.planner")
        package.__path__ = [str(Path(dynamo.__path__[0]) / "planner")]
        sys.modules["dynamo.planner"] = package
    from dynamo.planner.config.planner_config import PlannerConfig

    return PlannerConfig


# -- one check per receiving program ----------------------------------------------------------


def check_frontend(case: dict) -> None:
    from dynamo.frontend import main as frontend

    sys.argv = ["dynamo.frontend", *case["argv"]]
    frontend.parse_args()


def check_mocker(case: dict) -> None:
    from dynamo.mocker.args import parse_args

    parse_args(case["argv"])


def check_vllm(case: dict) -> None:
    from dynamo.vllm import args as vllm_args

    dynamo_config, engine_namespace = vllm_args._parse_cli_args(case["argv"])
    engine = sys.modules["vllm.engine.arg_utils"].AsyncEngineArgs.from_cli_args(engine_namespace)
    dynamo_config.engine_args = engine
    dynamo_config.validate()
    vllm_args.cross_validate_config(dynamo_config, engine)
    vllm_args.update_dynamo_config_with_engine(dynamo_config, engine)
    vllm_args.update_engine_config_with_dynamo(dynamo_config, engine)


def check_sglang(case: dict) -> None:
    from dynamo.common.configuration.groups.router_args import (
        parse_worker_router_config,
        register_worker_router_help,
    )
    from dynamo.common.configuration.groups.runtime_args import DynamoRuntimeArgGroup, DynamoRuntimeConfig
    from dynamo.sglang.backend_args import DynamoSGLangArgGroup, DynamoSGLangConfig

    class DynamoConfig(DynamoRuntimeConfig, DynamoSGLangConfig):  # as dynamo.sglang.args has it
        def validate(self) -> None:
            DynamoRuntimeConfig.validate(self)
            DynamoSGLangConfig.validate(self)

    parser = argparse.ArgumentParser(allow_abbrev=True)
    DynamoRuntimeArgGroup().add_arguments(parser)
    DynamoSGLangArgGroup().add_arguments(parser)
    sglang_parser = argparse.ArgumentParser(add_help=False)
    add_recorded_options(sglang_parser, _record("sglang"))
    for action in sglang_parser._actions:
        if action.option_strings:
            parser._optionals._group_actions.append(action)
    register_worker_router_help(parser)
    known, unknown = parser.parse_known_args(case["argv"])
    config = DynamoConfig.from_cli_args(known)
    config.router_advertisement, unknown = parse_worker_router_config(unknown)
    config.validate()
    sglang_parser.parse_args(unknown)


def check_trtllm(case: dict) -> None:
    from dynamo.trtllm.args import parse_args

    config = parse_args(case["argv"])
    if config.override_engine_args:
        _check_llm_args(json.loads(config.override_engine_args))


def _check_llm_args(overrides: dict) -> None:
    models = _record("tensorrt-llm")["models"]
    nested = {
        "kv_cache_config": "KvCacheConfig",
        "cuda_graph_config": "CudaGraphConfig",
        "cache_transceiver_config": "CacheTransceiverConfig",
        "scheduler_config": "SchedulerConfig",
        "moe_config": "MoeConfig",
        "attention_dp_config": "AttentionDpConfig",
    }

    def check(blob: dict, model: str) -> None:
        fields = models[model]["fields"]
        for key, value in blob.items():
            if key not in fields:
                raise CaseError(f"--override-engine-args: {model} has no field {key!r}")
            choices = (fields[key] or {}).get("choices")
            if choices and not isinstance(value, dict) and str(value) not in choices:
                raise CaseError(f"--override-engine-args: {model}.{key}={value!r} not in {choices}")
            if isinstance(value, dict) and key in nested:
                check(value, nested[key])

    check(overrides, "TorchLlmArgs")


def check_planner(case: dict) -> None:
    planner_config = import_planner_config()
    blob = json.loads(case["config"])
    names = set(planner_config.model_fields)
    for field in planner_config.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else []))
    unknown = sorted(set(blob) - names)
    if unknown:
        raise CaseError(f"PlannerConfig has no field(s) {unknown}; Dynamo would ignore them silently")
    planner_config.from_config_arg(case["config"])


CHECKS = {
    "dynamo.frontend": check_frontend,
    "dynamo.mocker": check_mocker,
    "dynamo.vllm": check_vllm,
    "dynamo.sglang": check_sglang,
    "dynamo.trtllm": check_trtllm,
    "dynamo.planner": check_planner,
}


def run_case(case: dict) -> dict:
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES):
            del os.environ[name]
    os.environ.update(case.get("env") or {})
    # The NIXL side channel address would otherwise be probed from the network.
    os.environ.setdefault("VLLM_NIXL_SIDE_CHANNEL_HOST", "10.0.0.10")
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()) as err:
            warnings.simplefilter("always")
            try:
                CHECKS[case["module"]](case)
            except SystemExit as exit_:
                # argparse prints its reason and exits 2.
                reason = err.getvalue().strip().splitlines()
                raise CaseError(reason[-1] if reason else f"exit {exit_.code}") from None
            deprecations = [
                str(w.message)
                for w in caught
                if issubclass(w.category, (DeprecationWarning, FutureWarning))
                and "dynamo" in (w.filename or "")
            ]
            if deprecations:
                raise CaseError(f"deprecated: {deprecations[0]}")
        problem = _obsolete_or_bad_env(case) or _unknown_env(case)
        if problem:
            raise CaseError(problem)
        return {"id": case["id"], "ok": True, "error": ""}
    except Exception as err:  # noqa: BLE001 - every refusal is a result, not a crash
        message = " ".join(line.strip() for line in str(err).strip().splitlines())
        return {"id": case["id"], "ok": False, "error": f"{type(err).__name__}: {message[:600]}"}
    finally:
        root.removeHandler(handler)
        os.environ.clear()
        os.environ.update(saved)


@functools.lru_cache(maxsize=1)
def _kvbm_env_names() -> frozenset[str]:
    """The DYN_KVBM_* names compiled into the pinned kvbm wheel's Rust core (it reads them;
    kvbm itself cannot be imported here: it needs NIXL). Rust packs string literals back to
    back, so the names are cut apart at each `DYN_`."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("kvbm")
    if spec is None or not spec.submodule_search_locations:
        raise CaseError("kvbm is not installed in the Dynamo venv (requirements-dynamo.txt)")
    (core,) = Path(next(iter(spec.submodule_search_locations))).glob("_core*.so")
    names: set[str] = set()
    for run in re.findall(rb"(?:DYN_[A-Z0-9_]+)+", core.read_bytes()):
        names.update("DYN_" + part for part in run.decode().split("DYN_") if part)
    return frozenset(names)


def _unknown_env(case: dict) -> str | None:
    """Env var names another program reads: KVBM's (from its binary) and SGLang's (from the
    record of its environ.py)."""
    env = case.get("env") or {}
    kvbm = [name for name in env if name.startswith("DYN_KVBM_")]
    if kvbm:
        known = _kvbm_env_names()
        unknown = sorted(set(kvbm) - known)
        if unknown:
            return f"kvbm 1.6.1 reads no {unknown}"
    sglang = [name for name in env if name.startswith("SGLANG_")]
    if sglang:
        declared = set(_record("sglang")["environment"]["names"])
        unknown = sorted(set(sglang) - declared)
        if unknown:
            return f"SGLang declares no {unknown} (sglang/srt/environ.py)"
    return None


def _dynamo_parser(module: str) -> argparse.ArgumentParser | None:
    """The argument groups Dynamo itself defines for a program (flags and their env vars)."""
    import importlib

    groups = {
        "dynamo.frontend": ["dynamo.frontend.frontend_args:FrontendArgGroup"],
        "dynamo.vllm": ["dynamo.vllm.backend_args:DynamoVllmArgGroup"],
        "dynamo.sglang": ["dynamo.sglang.backend_args:DynamoSGLangArgGroup"],
        "dynamo.trtllm": ["dynamo.trtllm.backend_args:DynamoTrtllmArgGroup"],
    }
    if module not in groups:
        return None
    parser = argparse.ArgumentParser(add_help=False)
    if module != "dynamo.frontend":
        from dynamo.common.configuration.groups.runtime_args import DynamoRuntimeArgGroup

        DynamoRuntimeArgGroup().add_arguments(parser)
    for spec in groups[module]:
        module_name, class_name = spec.split(":")
        getattr(importlib.import_module(module_name), class_name)().add_arguments(parser)
    return parser


def _obsolete_or_bad_env(case: dict) -> str | None:
    """What argparse does not check itself: flags Dynamo keeps only as an alias its help marks
    `deprecating flag:`, and env values (argparse takes them as defaults, never matching
    them against `choices`, so a bad DYN_* value would reach the runtime unchecked)."""
    parser = _dynamo_parser(case["module"])
    if parser is None:
        return None
    used = {token.split("=", 1)[0] for token in case.get("argv", []) if token.startswith("--")}
    env = case.get("env") or {}
    for action in parser._actions:
        help_text = action.help or ""
        marker = "deprecating flag: "
        if marker in help_text:
            old = help_text.split(marker, 1)[1].split()[0]
            if old in used:
                return f"{old} is an obsolete alias in Dynamo 1.6.1; use {action.option_strings[0]}"
        if "env var: " in help_text and action.choices:
            name = help_text.split("env var: ", 1)[1].split()[0]
            if name in env and env[name] not in [str(choice) for choice in action.choices]:
                return f"{name}={env[name]!r}: invalid choice for {action.option_strings[0]} {list(action.choices)}"
    return None


def main() -> int:
    install_vllm_standin()
    install_trtllm_standin()
    logging.disable(logging.CRITICAL)  # engines log at import; results carry the reasons
    cases = json.load(sys.stdin)
    results = [run_case(case) for case in cases]
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
