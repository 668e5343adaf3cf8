"""Every metric every provisioned dashboard panel queries is one the pinned exporters export
(Dynamo 1.6.1 runtime, Planner and operator, SGLang 0.5.21, DCGM exporter, kube-state-metrics)
or one our graphs' rendered recording rules record, every such rule passes the same check,
and the upstream dashboards are the vendored copies, fixed only as listed."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path

import cdk8s
import pytest

from config.loader import load_config
from k8s_charts.dashboards.dynamo_dashboard import dashboard
from k8s_charts.dashboards.exported_metrics import (
    SOURCES,
    exported_metrics,
    is_exported,
    metric_names,
    unknown_metrics,
)
from k8s_charts.dashboards.provisioned import our_dashboards
from k8s_charts.dashboards.upstream_dashboards import DASHBOARDS, PROMETHEUS_DATASOURCE_UID, UPSTREAM
from k8s_charts.graphs import build as build_graphs
from k8s_charts.graphs import review_inputs as graph_inputs

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "default.yaml"

# Characters of each vendored file as stored upstream (upstream/README.md): verbatim copies.
UPSTREAM_CHARS = {"kvbm.json": 20780, "dynamo-operator.json": 25474}


@cache
def rule_groups() -> tuple[tuple[str, tuple[dict, ...]], ...]:
    """(group name, rules) of every PrometheusRule the default config's graph charts render."""
    cfg = load_config(DEFAULT_CONFIG)
    objects = [o for chart in build_graphs(cdk8s.App(), cfg, graph_inputs(cfg)) for o in chart.to_json()]
    return tuple(
        (group["name"], tuple(group["rules"]))
        for o in objects
        if o["kind"] == "PrometheusRule"
        for group in o["spec"]["groups"]
    )


def recorded(groups=None) -> frozenset[str]:
    """Series our rules record: exported only because a rendered rule records them."""
    groups = rule_groups() if groups is None else groups
    return frozenset(r["record"] for _, rules in groups for r in rules if "record" in r)


def unknown(expr: str, known: frozenset[str] | None = None) -> set[str]:
    return unknown_metrics(expr) - (recorded() if known is None else known)


def rule_problems(groups) -> list[str]:
    """A rule may name exported metrics and series recorded before it in its group (Prometheus
    evaluates a group's rules in order, so a later one would read the previous evaluation)."""
    problems = []
    for name, rules in groups:
        earlier: set[str] = set()
        for rule in rules:
            expr = rule["expr"]
            constant = re.fullmatch(r"vector\([0-9.]+\)", expr)
            if not constant and not metric_names(expr):
                problems.append(f"{name} {rule['record']}: no metric in {expr!r}")
            missing = unknown_metrics(expr) - earlier
            if missing:
                problems.append(f"{name} {rule['record']}: {sorted(missing)} in {expr!r}")
            earlier.add(rule["record"])
    return problems


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
    ours = [(d.key, d.model) for d in our_dashboards(load_config(DEFAULT_CONFIG))]
    return [("dynamo.json", dashboard()), *ours] + [(d.file, d.model()) for d in DASHBOARDS]


CASES = [(name, title, expr) for name, model in all_dashboards() for title, expr in queries(model)]


@pytest.mark.parametrize("dashboard_file,title,expr", CASES)
def test_every_query_names_only_exported_metrics(dashboard_file, title, expr):
    assert metric_names(expr), f"{dashboard_file} {title}: no metric in {expr!r}"
    assert unknown(expr) == set(), f"{dashboard_file} {title}: {expr}"


def test_every_recording_rule_names_only_exported_or_earlier_recorded_metrics():
    groups = rule_groups()
    assert len(groups) == len([g for g in load_config(DEFAULT_CONFIG).graphs if g.uses_gpus]) > 0
    assert rule_problems(groups) == []


def test_the_cost_dashboard_reads_only_series_our_rules_record():
    (cost,) = [d.model for d in our_dashboards(load_config(DEFAULT_CONFIG)) if d.key == "dynamo-cost.json"]
    named = {n for _, expr in queries(cost) for n in metric_names(expr)}
    assert named - recorded() <= {"dynamo_frontend_output_tokens_total"}
    assert named & recorded()


def test_a_query_of_a_series_nobody_records_is_caught():
    """Planted: the rules record the cost under another name than the dashboard queries."""
    from k8s_charts.cost_rules import COST

    groups = tuple(
        (name, tuple({**r, "record": r["record"] + "_renamed"} if r["record"] == COST else r for r in rules))
        for name, rules in rule_groups()
    )
    (cost,) = [d.model for d in our_dashboards(load_config(DEFAULT_CONFIG)) if d.key == "dynamo-cost.json"]
    flagged = [expr for _, expr in queries(cost) if unknown(expr, recorded(groups))]
    assert flagged and all(COST in expr for expr in flagged)
    assert [expr for _, expr in queries(cost) if unknown(expr)] == []


def test_a_misspelt_metric_in_a_rule_is_caught():
    """Planted: one rule's expression with a mistyped exporter metric, and one reading a
    recorded series before the rule that records it."""
    groups = rule_groups()
    name, rules = groups[0]
    target = next(i for i, r in enumerate(rules) if "kube_pod_container_resource_requests" in r["expr"])
    typo = {**rules[target], "expr": rules[target]["expr"].replace("requests{", "request{", 1)}
    planted = ((name, (*rules[:target], typo, *rules[target + 1 :])), *groups[1:])
    assert rule_problems(planted) == [
        f"{name} {typo['record']}: ['kube_pod_container_resource_request'] in {typo['expr']!r}"
    ]
    reordered = ((name, tuple(reversed(rules))), *groups[1:])
    assert rule_problems(reordered)


def test_every_panel_of_ours_is_checked():
    for name, model in all_dashboards()[: 1 + len(our_dashboards(load_config(DEFAULT_CONFIG)))]:
        panels = [p for p in model["panels"] if p["type"] == "timeseries"]
        checked = [c for c in CASES if c[0] == name]
        assert len(checked) >= len(panels) > 0, name


@pytest.mark.parametrize("dashboard_file", [name for name, _ in all_dashboards()])
def test_a_planted_unknown_metric_in_any_dashboard_is_caught(dashboard_file):
    """The same collection and check as above, on a copy with one metric name mistyped."""
    model = copy.deepcopy(dict(all_dashboards())[dashboard_file])
    target = next(t for p in model["panels"] for i in [p, *p.get("panels", [])] for t in i.get("targets", []))
    name = sorted(metric_names(target["expr"]))[0]
    target["expr"] = target["expr"].replace(name, name + "_typo", 1)
    flagged = [expr for _, expr in queries(model) if unknown(expr)]
    assert flagged == [target["expr"]], dashboard_file


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
    # Names upstream's sglang.json / sglang-hicache.json query that SGLang 0.5.21 does not
    # register (why they are not vendored, upstream/README.md).
    for stale in (
        "sglang:num_retracted_reqs_total",
        "sglang:hicache_eviction_num_tokens_total",
        "sglang:hicache_load_back_duration_seconds_bucket",
        "sglang:hicache_active_pin_count",
    ):
        assert not is_exported(stale), stale
    # prometheus_client exposition: a Counter only with _total, a Gauge never as a histogram.
    assert is_exported("sglang:num_requests_total") and not is_exported("sglang:num_requests")
    assert is_exported("sglang:num_retracted_reqs") and is_exported("sglang:queue_time_seconds_bucket")
    assert not is_exported("sglang:num_running_reqs_bucket")
    assert is_exported("dynamo_planner_tick_duration_seconds_bucket")
    assert not is_exported("dynamo_planner_gpu_hours_bucket")


def test_sources_cover_each_exporter():
    sources = set(exported_metrics().values())
    assert {
        "dynamo 1.6.1",
        "ai-dynamo 1.6.1",
        "sglang 0.5.21",
        "dynamo operator",
        "dcgm-exporter",
        "kube-state-metrics",
    } <= sources
    for name in (
        "DCGM_FI_DEV_XID_ERRORS",
        "kube_pod_status_phase",
        "kube_job_failed",
        "dynamo_frontend_queued_requests",
        "dynamo_component_gpu_cache_usage_percent",
        "dynamo_planner_predicted_num_decode_replicas",
        "sglang:num_queue_reqs",
        "kube_pod_container_resource_requests",
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
