"""Every tracing variable a graph's pods get is one Dynamo 1.6.1's runtime reads: checked
against tests/data/dynamo/tracing-env.json, the OTEL_* and DYN_LOGGING_* names cut out of the
pinned ai-dynamo-runtime's compiled library by tools/dynamo_tracing_env.py. The record is
regenerated from the installed wheel and must be unchanged, at the pinned version."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from config import versions
from k8s_charts.registry import render
from k8s_charts.tracing import TRACING_ENV_NAMES
from plan import load_config
from tests.ops_dynamo_support import DEFAULT_CONFIG, record_from_dynamo_venv
from tests.tools.configs import shipped_configs
from tests.tools.synth import REPO
from tools.dynamo_tracing_env import PREFIXES, names_in

RECORD = REPO / "tests" / "data" / "dynamo" / "tracing-env.json"


def recorded() -> set[str]:
    return set(json.loads(RECORD.read_text(encoding="utf-8"))["names"])


def unread(names, known: set[str]) -> list[str]:
    """Names another program is meant to read (our tracing prefixes) that it does not."""
    return sorted(n for n in names if n.startswith(PREFIXES) and n not in known)


def graph_env_names(cfg) -> set[str]:
    names: set[str] = set()
    for obj in render(cfg)["graphs"]:
        if obj["kind"] != "DynamoGraphDeployment":
            continue
        for component in obj["spec"]["components"]:
            for container in component["podTemplate"]["spec"]["containers"]:
                names.update(e["name"] for e in container.get("env") or [])
    return names


@pytest.fixture(scope="module")
def traced_default(tmp_path_factory):
    data = copy.deepcopy(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")))
    data["platform"]["tracing"]["enabled"] = True
    path = tmp_path_factory.mktemp("config") / "traced.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def test_record_matches_the_pinned_runtime():
    committed = json.loads(RECORD.read_text(encoding="utf-8"))
    assert committed["ai_dynamo_runtime"] == versions.DYNAMO
    assert committed == record_from_dynamo_venv("tools.dynamo_tracing_env"), (
        f"run: .venv-dynamo/bin/python -m tools.dynamo_tracing_env > {RECORD}"
    )


def test_every_rendered_tracing_name_is_read_by_the_runtime(traced_default):
    names = graph_env_names(traced_default)
    assert set(TRACING_ENV_NAMES) <= names
    assert unread(names, recorded()) == []


def test_every_shipped_config_renders_only_names_the_runtime_reads():
    for label, cfg in shipped_configs():
        assert unread(graph_env_names(cfg), recorded()) == [], label


def test_a_misspelt_name_is_caught(traced_default):
    planted = graph_env_names(traced_default) | {"OTEL_EXPORTER_OTLP_TRACE_ENDPOINT", "DYN_LOGGING_JSON"}
    assert unread(planted, recorded()) == ["DYN_LOGGING_JSON", "OTEL_EXPORTER_OTLP_TRACE_ENDPOINT"]


def test_tracing_off_renders_none_of_it():
    cfg = load_config(DEFAULT_CONFIG)
    assert not cfg.platform.tracing.enabled
    assert not graph_env_names(cfg) & set(TRACING_ENV_NAMES)


def test_glued_literals_are_cut_at_each_prefix():
    """Rust packs string literals back to back; a name is never lost inside a run."""
    data = b"\x00xOTEL_SERVICE_NAMEOTEL_EXPORT_ENABLEDERRORDYN_LOGGING_JSONLtail\x01OTEL_\x02"
    assert names_in(data) == ["DYN_LOGGING_JSONL", "OTEL_EXPORT_ENABLEDERROR", "OTEL_SERVICE_NAME"]
