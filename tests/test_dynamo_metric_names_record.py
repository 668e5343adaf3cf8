"""k8s_charts/dashboards/metric_sources/dynamo.json is what the pinned Dynamo runtime exports:
regenerated from the project's Dynamo venv, it must be unchanged, at the pinned version."""

from __future__ import annotations

import json

from config import versions
from tests.ops_dynamo_support import record_from_dynamo_venv
from tests.tools.synth import REPO

RECORD = REPO / "k8s_charts" / "dashboards" / "metric_sources" / "dynamo.json"


def regenerate() -> dict:
    return record_from_dynamo_venv("tools.dynamo_metric_names")


def test_record_matches_the_pinned_runtime():
    committed = json.loads(RECORD.read_text(encoding="utf-8"))
    assert committed["ai_dynamo_runtime"] == versions.DYNAMO
    assert committed == regenerate(), f"run: .venv-dynamo/bin/python -m tools.dynamo_metric_names > {RECORD}"


def test_record_has_the_names_dashboards_and_the_planner_rely_on():
    metrics = json.loads(RECORD.read_text(encoding="utf-8"))["metrics"]
    for name in (
        "dynamo_frontend_requests_total",
        "dynamo_frontend_time_to_first_token_seconds",
        "dynamo_frontend_inter_token_latency_seconds",
        "dynamo_component_gpu_cache_usage_percent",
        "kvbm_offload_blocks_d2h",
    ):
        assert name in metrics, name
    assert "dynamo_component_kvstats_gpu_cache_usage_percent" not in metrics
