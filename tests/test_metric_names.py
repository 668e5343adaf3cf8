"""Every metric every provisioned dashboard panel queries is one the pinned exporters export
(Dynamo 1.6.1 runtime and operator, DCGM exporter, kube-state-metrics), and the upstream
dashboards are the vendored copies, fixed only as listed."""

from __future__ import annotations

import json

import pytest

from k8s_charts.dashboards.dynamo_dashboard import dashboard
from k8s_charts.dashboards.exported_metrics import (
    SOURCES,
    exported_metrics,
    is_exported,
    metric_names,
    unknown_metrics,
)
from k8s_charts.dashboards.upstream_dashboards import DASHBOARDS, PROMETHEUS_DATASOURCE_UID, UPSTREAM

# Characters of each vendored file as stored upstream (upstream/README.md): verbatim copies.
UPSTREAM_CHARS = {"kvbm.json": 20780, "dynamo-operator.json": 25474}


def queries(model: dict) -> list[tuple[str, str]]:
    found = []
    for panel in model["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner.get("title", ""), target["expr"]))
    for variable in model.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            found.append((variable["name"], query["query"] if isinstance(query, dict) else query))
    return found


def all_dashboards() -> list[tuple[str, dict]]:
    return [("dynamo.json", dashboard())] + [(d.file, d.model()) for d in DASHBOARDS]


CASES = [(name, title, expr) for name, model in all_dashboards() for title, expr in queries(model)]


@pytest.mark.parametrize("dashboard_file,title,expr", CASES)
def test_every_query_names_only_exported_metrics(dashboard_file, title, expr):
    assert metric_names(expr), f"{dashboard_file} {title}: no metric in {expr!r}"
    assert unknown_metrics(expr) == set(), f"{dashboard_file} {title}: {expr}"


def test_every_upstream_panel_is_checked():
    for upstream in DASHBOARDS:
        panels = [p for p in upstream.model()["panels"] if p["type"] != "row"]
        checked = [c for c in CASES if c[0] == upstream.file]
        assert len(checked) >= len(panels) > 0, upstream.file


def test_the_check_catches_stale_and_mistyped_names():
    assert unknown_metrics('dynamo_component_kvstats_gpu_cache_usage_percent{namespace="x"}') != set()
    assert unknown_metrics("sum(rate(dynamo_frontend_request_total[5m]))") == {
        "dynamo_frontend_request_total"
    }
    assert not is_exported("dynamo_frontend_requests_total_bucket")  # _bucket only on histograms
    assert is_exported("dynamo_frontend_time_to_first_token_seconds_bucket")
    # The KVBM names upstream's dashboard uses are not what 1.6.1 registers.
    assert not is_exported("dynamo_kvbm_offload_blocks_d2h") and is_exported("kvbm_offload_blocks_d2h")
    # DCGM profiling counters are not in the default counters our exporter runs with.
    assert not is_exported("DCGM_FI_PROF_NVLINK_TX_BYTES")


def test_sources_cover_each_exporter():
    sources = set(exported_metrics().values())
    assert {"dynamo 1.6.1", "dynamo operator", "dcgm-exporter", "kube-state-metrics"} <= sources
    for name in (
        "DCGM_FI_DEV_XID_ERRORS",
        "kube_pod_status_phase",
        "kube_job_failed",
        "dynamo_frontend_queued_requests",
        "dynamo_component_gpu_cache_usage_percent",
    ):
        assert is_exported(name), name


def test_upstream_files_are_verbatim_and_fixes_still_apply():
    for upstream in DASHBOARDS:
        text = (UPSTREAM / upstream.file).read_text()
        assert len(text) == UPSTREAM_CHARS[upstream.file], upstream.file
        json.loads(text)
        upstream.model()  # raises when a fix no longer applies


def test_upstream_dashboards_use_our_datasource():
    for upstream in DASHBOARDS:
        text = json.dumps(upstream.model())
        uids = {
            t for t in json.loads(text).get("panels", []) for t in [t.get("datasource", {}).get("uid")] if t
        }
        assert uids <= {PROMETHEUS_DATASOURCE_UID, "${datasource}"}, upstream.file


def test_sources_are_documented():
    readme = (SOURCES / "README.md").read_text()
    for path in SOURCES.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme, path.name
