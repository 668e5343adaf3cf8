"""The Dynamo Grafana dashboard: valid JSON model, required panels, only known metric names."""

from __future__ import annotations

import json

import pytest

from k8s_charts.dashboards.dynamo_dashboard import GRAPH_VARIABLE_QUERY, dashboard
from k8s_charts.dashboards.exported_metrics import metric_names, unknown_metrics


def all_queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_is_json_serialisable_with_unique_ids_and_grid_fits():
    model = json.loads(json.dumps(dashboard()))
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    assert model["uid"] and model["title"]


@pytest.mark.parametrize("title,expr", all_queries())
def test_panel_queries_use_only_exported_metrics(title, expr):
    assert metric_names(expr), f"{title}: no metric in {expr!r}"
    assert unknown_metrics(expr) == set(), (
        f"{title}: not exported by Dynamo 1.6.1, DCGM or kube-state-metrics"
    )


def test_no_pre_1_0_metric_names():
    for title, expr in all_queries():
        assert "kvstats" not in expr, title


def test_graph_variable_uses_an_exported_metric():
    assert metric_names(GRAPH_VARIABLE_QUERY) and unknown_metrics(GRAPH_VARIABLE_QUERY) == set()


def test_panels_cover_what_users_need():
    titles = " | ".join(title for title, _ in all_queries()).lower()
    for needed in (
        "request rate",
        "error",
        "time to first token",
        "inter-token",
        "output tokens",
        "queued",
        "kv-cache",
        "gpu utilisation per node",
        "gpu memory",
    ):
        assert needed in titles, needed
    for title, expr in all_queries():
        if "dynamo_" in expr:
            assert 'graph=~"$graph"' in expr, f"{title}: not filterable by graph"


def test_latency_panels_show_percentiles():
    for title, expr in all_queries():
        if "_seconds_bucket" in expr:
            assert expr.startswith("histogram_quantile(0."), title
