"""Every PromQL expression we ship parses with the Prometheus project's own PromQL grammar
(@prometheus-io/lezer-promql, pinned in package.json): alert rules, the graphs' cost recording
rules, and every query of every provisioned dashboard. A rule Prometheus cannot parse is
refused by the Prometheus Operator (or silently never evaluated), and a dashboard query that
does not parse shows an error panel; the name checks (tests/test_metric_names.py) do not
parse the expression, so they cannot see either."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from k8s_charts.registry import render
from plan import load_config
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.test_metric_names import all_dashboards, queries

NODE = REPO / ".venv" / "bin" / "node"
CHECKER = REPO / "tests" / "tools" / "promql_syntax.mjs"
# Grafana replaces its variables before Prometheus sees a query: ranges get a duration,
# anything else a value (label values are inside quotes already).
_RANGE_VARIABLE = re.compile(r"\[\$\{?\w+\}?\]")
_VARIABLE = re.compile(r"\$\{?\w+(:\w+)?\}?")


def grafana_substituted(expr: str) -> str:
    return _VARIABLE.sub("1", _RANGE_VARIABLE.sub("[5m]", expr))


def unparsable(expressions: list[str]) -> list[dict]:
    result = subprocess.run(
        [str(NODE), str(CHECKER)],
        input=json.dumps(expressions),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return json.loads(result.stdout)


def rule_expressions() -> list[tuple[str, str]]:
    cfg = load_config(DEFAULT_CONFIG)
    found = []
    for objects in render(cfg).values():
        for obj in objects:
            if obj["kind"] != "PrometheusRule":
                continue
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    name = rule.get("alert") or rule.get("record")
                    found.append((f"{obj['metadata']['name']}/{name}", rule["expr"]))
    return found


def dashboard_expressions() -> list[tuple[str, str]]:
    return [
        (f"{file} {title}", grafana_substituted(expr))
        for file, model in all_dashboards()
        for title, expr in queries(model)
        if not expr.startswith("label_values(")  # Grafana's own function, not PromQL
    ]


def test_there_are_rules_and_queries_of_every_kind_to_check():
    rules = dict(rule_expressions())
    assert any("/" in name and name.split("/")[0].endswith("-cost") for name in rules)
    assert len(rules) >= 10
    assert len(dashboard_expressions()) >= 50


@pytest.mark.parametrize("source", ["rules", "dashboards"])
def test_every_expression_parses(source):
    named = rule_expressions() if source == "rules" else dashboard_expressions()
    problems = unparsable([expr for _, expr in named])
    assert problems == [], [f"{named[p['index']][0]}: near {p['near']!r}" for p in problems]


def test_a_broken_expression_is_caught():
    # Planted: a rule missing its closing parenthesis, and a dangling operator.
    _, expr = rule_expressions()[0]
    problems = unparsable([expr, expr.rstrip(")") if expr.endswith(")") else expr + " +", "a +"])
    assert [p["index"] for p in problems] == [1, 2]


def test_grafana_variables_are_replaced_as_grafana_does():
    assert grafana_substituted('rate(x{graph=~"$graph"}[$__rate_interval])') == 'rate(x{graph=~"1"}[5m])'
