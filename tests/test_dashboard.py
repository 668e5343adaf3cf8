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


# -- our other dashboards (k8s_charts/dashboards/provisioned.py) -----------------------------


@pytest.fixture(scope="module")
def default_cfg():
    from config.loader import load_config
    from tests.tools.synth import REPO

    return load_config(REPO / "config" / "default.yaml")


def _ours(cfg) -> dict[str, dict]:
    from k8s_charts.dashboards.provisioned import our_dashboards

    return {d.key: d.model for d in our_dashboards(cfg)}


def _queries(model: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in model["panels"] for t in p.get("targets", [])]


def test_our_dashboards_are_valid_with_distinct_uids(default_cfg):
    from k8s_charts.dashboards.upstream_dashboards import DASHBOARDS

    models = [dashboard(), *_ours(default_cfg).values(), *(d.model() for d in DASHBOARDS)]
    uids = [m["uid"] for m in models]
    assert len(uids) == len(set(uids))
    for model in _ours(default_cfg).values():
        model = json.loads(json.dumps(model))
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)) and model["title"]
        for panel in model["panels"]:
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            if panel["type"] == "timeseries":
                assert panel["description"] and panel["targets"], panel["title"]


def test_graph_scoped_dashboards_filter_every_query_by_graph(default_cfg):
    ours = _ours(default_cfg)
    for key in ("dynamo-planner.json", "dynamo-disagg.json", "dynamo-sglang.json"):
        variables = {v["name"] for v in ours[key]["templating"]["list"]}
        assert "graph" in variables, key
        for title, expr in _queries(ours[key]):
            assert 'graph=~"$graph"' in expr, f"{key} {title}: not filterable by graph"


def test_planner_dashboard_answers_what_the_planner_decided_and_why(default_cfg):
    exprs: dict[str, str] = {}
    for title, expr in _queries(_ours(default_cfg)["dynamo-planner.json"]):
        exprs[title] = exprs.get(title, "") + " " + expr
    for role in ("prefill", "decode"):
        expr = exprs[f"{role.capitalize()} replicas"]
        assert f"predicted_num_{role}_replicas" in expr and f"dynamo_planner_num_{role}_replicas" in expr
    for title, latency in (
        ("Time to first token: observed vs target", "ttft"),
        ("Inter-token latency: observed vs target", "itl"),
    ):
        assert f"observed_{latency}_ms" in exprs[title] and f"sla_target_{latency}_ms" in exprs[title]
    assert "dynamo_planner_load_scaling_decision" in exprs["Load-based scaling decision"]


def test_disagg_dashboard_compares_prefill_and_decode(default_cfg):
    queries = _queries(_ours(default_cfg)["dynamo-disagg.json"])
    by_role = [e for _, e in queries if 'component_type=~"prefill|decode"' in e]
    assert by_role and all("by (component_type" in e for e in by_role)
    exprs = " ".join(e for _, e in queries)
    assert (
        "kv_transfer_estimated_latency_seconds_bucket" in exprs
        and "sglang:kv_transfer_latency_ms_bucket" in exprs
    )


def test_cost_dashboard_prices_are_the_catalogue_prices_of_the_plan(default_cfg):
    from config.catalog.prices import on_demand_usd_per_hour
    from k8s_charts.dashboards.cost_dashboard import graph_prices
    from plan.capacity import plan_graph

    prices = graph_prices(default_cfg)
    assert [p.graph for p in prices] == [g.name for g in default_cfg.graphs if g.uses_gpus]
    model = _ours(default_cfg)["dynamo-cost.json"]
    text = next(p for p in model["panels"] if p["type"] == "text")["options"]["content"]
    cost = next(e for t, e in _queries(model) if t == "Estimated cost rate")
    for price, graph in zip(prices, [g for g in default_cfg.graphs if g.uses_gpus], strict=True):
        plan = plan_graph(default_cfg, graph)
        assert [r.role for r in price.roles] == [r.role for r in plan.roles]
        for role in price.roles:
            catalogue = on_demand_usd_per_hour(role.instance, default_cfg.region)
            assert catalogue and role.usd_per_gpu_hour == pytest.approx(catalogue / role.gpus_per_instance)
            assert f"{role.usd_per_gpu_hour:.4f}" in cost and f"{role.usd_per_gpu_hour:.4f}" in text
            assert f'pod=~"{price.graph}-(.*-)?{role.role}-.*"' in cost


def test_cost_dashboard_does_not_move_with_replicas(default_cfg):
    # Replicas are the everyday change (make review): the dashboard holds prices, not totals.
    from k8s_charts.dashboards.cost_dashboard import dashboard

    index, graph = next((i, g) for i, g in enumerate(default_cfg.graphs) if g.uses_gpus)
    role = graph.worker_roles()[0]
    more = graph.model_copy(
        update={role.name: role.config.model_copy(update={"replicas": role.config.replicas + 3})}
    )
    assert more.worker_roles()[0].config.replicas == role.config.replicas + 3
    graphs = [*default_cfg.graphs]
    graphs[index] = more
    changed = default_cfg.model_copy(update={"graphs": graphs})
    assert dashboard(changed) == dashboard(default_cfg)


def test_cost_dashboard_says_when_a_graph_has_no_price(default_cfg):
    from k8s_charts.dashboards.cost_dashboard import dashboard as cost_dashboard

    region = "ap-south-2"  # a region the catalogue has no GPU prices for
    cfg = default_cfg.model_copy(update={"region": region})
    model = cost_dashboard(cfg)
    text = next(p for p in model["panels"] if p["type"] == "text")["options"]["content"]
    assert region in text and "no price" in text
    assert "Estimated cost rate" not in [t for t, _ in _queries(model)]


def test_our_dashboards_are_provisioned_as_config_maps_for_the_default_config(default_cfg):
    """The same path as the overview and upstream's: a ConfigMap in the monitoring namespace
    with the Grafana sidecar's label, holding the model as JSON."""
    import cdk8s

    from config.names import MONITORING_NAMESPACE
    from k8s_charts.dashboards.provisioned import our_dashboards
    from k8s_charts.platform_charts import build, review_inputs

    objects = [
        o
        for chart in build(cdk8s.App(), default_cfg, review_inputs(default_cfg))
        for o in chart.to_json()
        if o["kind"] == "ConfigMap"
    ]
    config_maps = {o["metadata"]["name"]: o for o in objects}
    ours = _ours(default_cfg)
    for item in our_dashboards(default_cfg):
        config_map = config_maps[item.config_map]
        assert config_map["metadata"]["namespace"] == MONITORING_NAMESPACE
        assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
        assert json.loads(config_map["data"][item.key]) == json.loads(json.dumps(ours[item.key]))
