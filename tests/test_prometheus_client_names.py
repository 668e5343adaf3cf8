"""The Planner and SGLang metric-name records (k8s_charts/dashboards/metric_sources/) and the
script that reads them from the pinned sources (tools/prometheus_client_names.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

from config import versions
from tests.ops_dynamo_support import require_dynamo_venv
from tests.tools.synth import REPO
from tools.prometheus_client_names import UnresolvedName, exposed, metrics_in_source

SOURCES = REPO / "k8s_charts" / "dashboards" / "metric_sources"
PLANNER = SOURCES / "dynamo-planner.json"
SGLANG = SOURCES / "sglang-0.5.21.json"
ENGINE_CLI_SGLANG = REPO / "tests" / "data" / "engine_cli" / "sglang-0.5.21.json"


def test_planner_record_matches_the_pinned_dynamo():
    require_dynamo_venv()
    done = subprocess.run(
        [str(REPO / ".venv-dynamo" / "bin" / "python"), "-m", "tools.prometheus_client_names", "planner"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    committed = json.loads(PLANNER.read_text(encoding="utf-8"))
    assert committed["version"] == versions.DYNAMO
    assert committed == json.loads(done.stdout), (
        f"run: .venv-dynamo/bin/python -m tools.prometheus_client_names planner > {PLANNER}"
    )


def test_sglang_record_is_from_the_pinned_wheel():
    """The wheel is not kept here; the record names it by SHA-256, and it is the same wheel the
    command-line record was made from (whose version test_engine_cli_records.py checks
    against ai-dynamo 1.6.1's pin)."""
    record = json.loads(SGLANG.read_text(encoding="utf-8"))
    cli = json.loads(ENGINE_CLI_SGLANG.read_text(encoding="utf-8"))
    assert (record["package"], record["version"]) == ("sglang", cli["version"]) == ("sglang", "0.5.21")
    assert (record["wheel"], record["wheel_sha256"]) == (cli["wheel"], cli["wheel_sha256"])
    assert "sglang/srt/observability/metrics_collector.py" in record["files"]
    metrics = record["metrics"]
    assert len(metrics) > 150
    assert all(name.startswith("sglang:") for name in metrics)
    # Spot checks against the wheel's metrics_collector.py, as a scrape shows them.
    assert metrics["sglang:num_queue_reqs"] == "Gauge"
    assert metrics["sglang:num_requests_total"] == "Counter"
    assert metrics["sglang:time_to_first_token_seconds_bucket"] == "Histogram"
    assert "sglang:time_to_first_token_seconds" not in metrics  # a histogram has no bare series


PLANTED = """
import collections
from prometheus_client import Counter, Gauge, Histogram, Summary, Enum
PREFIX = "demo"

class Collector:
    def __init__(self, registry):
        self.a = Counter(name="demo:requests_total", documentation="")
        self.b = Counter("demo:tokens", "")
        self.c = Gauge(f"{PREFIX}:queue", "")
        self.d = Histogram(name="demo:latency_seconds", documentation="", buckets=[1])
        self.e = Summary("demo:balance", "")
        self.f = Enum(f"{PREFIX}:state", "", states=["a"])
        self.g = Gauge(name="other:ignored", documentation="")
        self.h = collections.Counter(registry)
"""


def test_extraction_follows_prometheus_client_exposition():
    registered = metrics_in_source(PLANTED, "demo:")
    assert registered == {
        "demo:requests_total": "Counter",
        "demo:tokens": "Counter",
        "demo:queue": "Gauge",
        "demo:latency_seconds": "Histogram",
        "demo:balance": "Summary",
        "demo:state": "Enum",
    }
    assert set(exposed(registered)) == {
        "demo:requests_total",
        "demo:tokens_total",
        "demo:queue",
        "demo:latency_seconds_bucket",
        "demo:latency_seconds_sum",
        "demo:latency_seconds_count",
        "demo:balance_sum",
        "demo:balance_count",
        "demo:state",
    }


def test_a_metric_name_it_cannot_resolve_fails_the_run():
    planted = 'from prometheus_client import Gauge\nGauge(f"demo:{suffix}", "")\n'
    with pytest.raises(UnresolvedName, match="cannot resolve metric name"):
        metrics_in_source(planted, "demo:")
