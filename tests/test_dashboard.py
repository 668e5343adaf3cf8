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


def _cost_rules(cfg) -> dict[str, dict]:
    """Graph name -> its rendered cost PrometheusRule (graph charts, as the Inference stacks apply them)."""
    import cdk8s

    from k8s_charts.graphs import build, review_inputs

    objects = [o for chart in build(cdk8s.App(), cfg, review_inputs(cfg)) for o in chart.to_json()]
    return {o["metadata"]["labels"]["dynamo-eks/graph"]: o for o in objects if o["kind"] == "PrometheusRule"}


def _records(rule: dict, name: str) -> list[dict]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if r.get("record") == name]


def _with_replicas(cfg, extra: int):
    index, graph = next((i, g) for i, g in enumerate(cfg.graphs) if g.uses_gpus)
    role = graph.worker_roles()[0]
    more = graph.model_copy(
        update={role.name: role.config.model_copy(update={"replicas": role.config.replicas + extra})}
    )
    assert more.worker_roles()[0].config.replicas == role.config.replicas + extra
    graphs = [*cfg.graphs]
    graphs[index] = more
    return cfg.model_copy(update={"graphs": graphs})


def test_cost_rule_prices_are_the_catalogue_prices_of_the_plan(default_cfg):
    from config.catalog.prices import on_demand_usd_per_hour
    from k8s_charts.cost_rules import GPUS_HELD, PRICE, graph_price
    from plan.capacity import plan_graph

    gpu_graphs = [g for g in default_cfg.graphs if g.uses_gpus]
    prices = [graph_price(default_cfg, g) for g in gpu_graphs]
    rules = _cost_rules(default_cfg)
    assert sorted(rules) == sorted(g.name for g in gpu_graphs)
    for price, graph in zip(prices, gpu_graphs, strict=True):
        plan = plan_graph(default_cfg, graph)
        assert [r.role for r in price.roles] == [r.role for r in plan.roles]
        recorded = {r["labels"]["component"]: r for r in _records(rules[graph.name], PRICE)}
        assert sorted(recorded) == sorted(r.role for r in plan.roles)
        for planned in plan.roles:
            assert planned.fit is not None
            instance = planned.fit.instance
            catalogue = on_demand_usd_per_hour(instance.name, default_cfg.region)
            rule = recorded[planned.role]
            assert rule["labels"] == {
                "graph": graph.name,
                "component": planned.role,
                "instance_type": instance.name,
                "gpus_per_instance": str(instance.gpus),
            }
            value = float(rule["expr"].removeprefix("vector(").removesuffix(")"))
            assert catalogue and value == pytest.approx(catalogue / instance.gpus, abs=1e-6)
        held = {r["labels"]["component"]: r["expr"] for r in _records(rules[graph.name], GPUS_HELD)}
        for role in graph.worker_roles():
            assert f'pod=~"{graph.name}-(.*-)?{role.name}-.*"' in held[role.name]


def _table_problems(panel: dict, rules: dict[str, dict]) -> list[str]:
    from k8s_charts.cost_rules import PRICE

    (target,) = panel["targets"]
    labels = {label for rule in rules.values() for r in _records(rule, PRICE) for label in r["labels"]}
    (organize,) = [t["options"] for t in panel["transformations"] if t["id"] == "organize"]
    columns = set(organize["indexByName"]) - {"Value"}
    problems = [] if target["expr"].startswith(PRICE + "{") else [f"not the price series: {target['expr']}"]
    problems += [f"no rule sets label {c}" for c in sorted(columns - labels)]
    problems += [f"label {c} not shown" for c in sorted(labels - columns)]
    if not (target["instant"] and target["format"] == "table"):
        problems.append("not an instant table query")
    return problems


def test_cost_price_table_shows_the_labels_the_price_rules_record(default_cfg):
    import copy

    rules = _cost_rules(default_cfg)
    (table,) = [p for p in _ours(default_cfg)["dynamo-cost.json"]["panels"] if p["type"] == "table"]
    assert table["title"] == "Prices used"
    assert _table_problems(table, rules) == []
    planted = copy.deepcopy(table)  # Planted: a column for a label no rule sets.
    planted["transformations"][0]["options"]["indexByName"]["instance"] = 9
    assert _table_problems(planted, rules) == ["no rule sets label instance"]


def test_cost_rules_follow_monitoring(default_cfg):
    """The PrometheusRule CRD comes with kube-prometheus-stack: no monitoring, no rules."""
    assert _cost_rules(default_cfg)
    monitoring = default_cfg.platform.monitoring.model_copy(update={"enabled": False})
    off = default_cfg.model_copy(
        update={"platform": default_cfg.platform.model_copy(update={"monitoring": monitoring})}
    )
    assert _cost_rules(off) == {}


def test_cost_rules_are_picked_up_by_our_prometheus(default_cfg):
    from k8s_charts.platform_helm_values import kube_prometheus_stack_values

    spec = kube_prometheus_stack_values(default_cfg.platform.monitoring, retain_data=False)["prometheus"][
        "prometheusSpec"
    ]
    assert spec["ruleNamespaceSelector"] == {}
    for rule in _cost_rules(default_cfg).values():
        labels = rule["metadata"]["labels"]
        assert spec["ruleSelector"]["matchLabels"].items() <= labels.items()


def test_cost_dashboard_and_rules_do_not_move_with_replicas(default_cfg):
    # Replicas are the everyday change (make review): neither holds totals, only prices.
    from k8s_charts.dashboards.cost_dashboard import dashboard

    for extra in (1, 2, 3):
        changed = _with_replicas(default_cfg, extra)
        assert dashboard(changed) == dashboard(default_cfg)
        assert _cost_rules(changed) == _cost_rules(default_cfg), extra


def test_a_replica_dependent_rule_would_be_caught(default_cfg, monkeypatch):
    """Planted: a rule recording the planned GPUs (replicas x GPUs per pod) moves with replicas."""
    from k8s_charts import cost_rules

    real = cost_rules.graph_rules

    def with_planned_gpus(cfg, graph, plan):
        rules, note = real(cfg, graph, plan)
        planned = sum(r.config.replicas * r.gpus_per_pod for r in graph.worker_roles())
        extra = cost_rules.RecordingRule(
            "dynamo_eks:planned_gpus", f"vector({planned})", {"graph": graph.name}
        )
        return [*rules, extra], note

    monkeypatch.setattr(cost_rules, "graph_rules", with_planned_gpus)
    assert _cost_rules(_with_replicas(default_cfg, 3)) != _cost_rules(default_cfg)


def test_cost_dashboard_is_the_same_for_any_number_of_graphs(default_cfg, tmp_path):
    from bench.scale_configs import scale_config
    from config.loader import load_config
    from k8s_charts.dashboards.cost_dashboard import dashboard

    one, fifty = (load_config(scale_config(n, tmp_path)) for n in (1, 50))
    assert len(one.graphs) == 1 and len(fifty.graphs) == 50
    assert dashboard(one) == dashboard(fifty)
    assert len(_cost_rules(fifty)) == 50
    # Planted: a dashboard with a query per graph (as it once had) differs between the two.

    def per_graph(cfg):
        model = dashboard(cfg)
        model["panels"][-1]["targets"] += [{"expr": f'x{{graph="{g.name}"}}'} for g in cfg.graphs]
        return model

    assert per_graph(one) != per_graph(fifty)


def test_cost_rules_say_when_a_graph_has_no_price(default_cfg):
    from k8s_charts.cost_rules import COST, GPUS_HELD, PRICE, PRICE_NOTE_ANNOTATION
    from k8s_charts.dashboards.cost_dashboard import dashboard as cost_dashboard

    region = "ap-south-2"  # a region the catalogue has no GPU prices for
    cfg = default_cfg.model_copy(update={"region": region})
    rules = _cost_rules(cfg)
    assert rules
    for rule in rules.values():
        assert _records(rule, PRICE) == [] and _records(rule, COST) == []
        assert _records(rule, GPUS_HELD)  # still recorded: GPUs held need no price
        note = rule["metadata"]["annotations"][PRICE_NOTE_ANNOTATION]
        assert region in note and "no price" in note
    for rule in _cost_rules(default_cfg).values():
        assert PRICE_NOTE_ANNOTATION not in rule["metadata"].get("annotations", {})
    text = next(p for p in cost_dashboard(cfg)["panels"] if p["type"] == "text")["options"]["content"]
    assert region in text and "no price" in text
    default_text = next(p for p in cost_dashboard(default_cfg)["panels"] if p["type"] == "text")
    assert "no price for" not in default_text["options"]["content"]


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
