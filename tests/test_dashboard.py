"""The Dynamo Grafana dashboard: valid JSON model, required panels, only known metric names."""

from __future__ import annotations

import json
import re

import pytest

from k8s_charts.dashboards.dynamo_dashboard import GRAPH_VARIABLE_QUERY, dashboard, known_metrics

# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "avg", "max", "min", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless",
    "label_values", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "time", "vector",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that must be metric names."""
    text = re.sub(r'"[^"]*"', "", expr)              # string literals
    text = re.sub(r"\{[^}]*\}", "", text)             # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)            # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)           # Grafana variables
    if text.startswith("label_values("):             # label_values(metric, label)
        text = text.split(",")[0]
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


def base_name(name: str, metrics: dict) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        stem = name.removesuffix(suffix)
        if stem != name and metrics.get(stem, {}).get("type") == "histogram":
            return stem
    return name


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
def test_panel_queries_use_only_known_metrics(title, expr):
    metrics = known_metrics()
    names = metric_names(expr)
    assert names, f"{title}: no metric in {expr!r}"
    unknown = {n for n in names if base_name(n, metrics) not in metrics}
    assert unknown == set(), f"{title}: {sorted(unknown)} not in metric_names.yaml"


def test_metric_checker_rejects_typos():
    metrics = known_metrics()
    names = metric_names('sum(rate(dynamo_frontend_request_total{graph=~"$graph"}[5m]))')
    assert {n for n in names if base_name(n, metrics) not in metrics} == {"dynamo_frontend_request_total"}
    # _bucket is only accepted on histograms
    assert base_name("dynamo_frontend_requests_total_bucket", metrics) not in metrics


def test_graph_variable_uses_a_known_metric():
    assert metric_names(GRAPH_VARIABLE_QUERY) <= set(known_metrics())


def test_every_listed_metric_has_a_source():
    import yaml

    from k8s_charts.dashboards.dynamo_dashboard import METRIC_NAMES_FILE

    data = yaml.safe_load(METRIC_NAMES_FILE.read_text())
    for name, fact in data["metrics"].items():
        assert fact["source"] in data["sources"], name


def test_panels_cover_what_users_need():
    titles = " | ".join(title for title, _ in all_queries()).lower()
    for needed in ("request rate", "error", "time to first token", "inter-token", "output tokens",
                   "queued", "kv-cache", "gpu utilisation per node", "gpu memory"):
        assert needed in titles, needed
    for title, expr in all_queries():
        if "dynamo_" in expr:
            assert 'graph=~"$graph"' in expr, f"{title}: not filterable by graph"


def test_latency_panels_show_percentiles():
    for title, expr in all_queries():
        if "_seconds_bucket" in expr:
            assert expr.startswith("histogram_quantile(0."), title
