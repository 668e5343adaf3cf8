"""Metric names the exporters we scrape actually export (pinned sources, see
metric_sources/README.md), and the PromQL check every dashboard panel and alert passes."""

from __future__ import annotations

import csv
import json
import re
from functools import cache
from pathlib import Path

import yaml

SOURCES = Path(__file__).with_name("metric_sources")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum",
    "avg",
    "max",
    "min",
    "count",
    "rate",
    "irate",
    "increase",
    "delta",
    "deriv",
    "histogram_quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "or",
    "and",
    "unless",
    "label_values",
    "topk",
    "bottomk",
    "clamp_min",
    "clamp_max",
    "abs",
    "time",
    "vector",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "changes",
    "resets",
    "bool",
    "absent",
    "offset",
    "e9",
    "e3",
}


@cache
def exported_metrics() -> dict[str, str]:
    """metric name -> which pinned source says it is exported."""
    names: dict[str, str] = {}
    dynamo = json.loads((SOURCES / "dynamo.json").read_text())
    names.update({n: f"dynamo {dynamo['ai_dynamo_runtime']}" for n in dynamo["metrics"]})
    # Series names as a scrape shows them (_total, _bucket, ... included), recorded by
    # tools/prometheus_client_names.py: the Planner's and SGLang's engine metrics.
    for record in ("dynamo-planner.json", "sglang-0.5.21.json"):
        data = json.loads((SOURCES / record).read_text())
        names.update({n: f"{data['package']} {data['version']}" for n in data["metrics"]})
    operator = yaml.safe_load((SOURCES / "dynamo-operator.yaml").read_text())
    names.update({n: "dynamo operator" for n in operator["metrics"]})
    with (SOURCES / "dcgm-exporter-default-counters.csv").open() as f:
        rows = csv.reader(line for line in f if line.strip() and not line.startswith("#"))
        names.update({row[0].strip(): "dcgm-exporter" for row in rows if row[1].strip() != "label"})
    karpenter = yaml.safe_load((SOURCES / "karpenter-v1.14-metrics.yaml").read_text())
    names.update({n: "karpenter" for n in karpenter["metrics"]})
    for doc in sorted(SOURCES.glob("kube-state-metrics-*-metrics.md.txt")):
        for name in re.findall(r"^\| (kube_[a-z_]+) ", doc.read_text(), flags=re.MULTILINE):
            names[name] = "kube-state-metrics"
    return names


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that must be metric names."""
    text = re.sub(r'"[^"]*"', "", expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = re.sub(r"\b\d+(\.\d+)?(e\d+)?\b", "", text)  # numbers (1e9)
    if text.startswith("label_values("):  # label_values(metric, label)
        text = text.split(",")[0]
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS}


def is_exported(name: str) -> bool:
    known = exported_metrics()
    if name in known:
        return True
    # Histogram series: only on a Dynamo-style histogram stem, never on a counter (_total).
    for suffix in HISTOGRAM_SUFFIXES:
        stem = name.removesuffix(suffix)
        if (
            stem != name
            and stem in known
            and not stem.endswith("_total")
            and known[stem].startswith("dynamo")
        ):
            return True
    return False


def unknown_metrics(expr: str) -> set[str]:
    return {n for n in metric_names(expr) if not is_exported(n)}
