"""Scrape coverage beyond the frontend/worker/planner monitors: KV-offload workers publish
their KVBM metrics on a named port that a PodMonitor scrapes, and the Dynamo operator binds its
metrics where Prometheus can reach them (checked against the vendored chart values)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cdk8s
import yaml

from config.names import DYNAMO_SYSTEM_NAMESPACE, INFERENCE_NAMESPACE
from k8s_charts import graphs as graph_charts
from k8s_charts.dynamo_platform_values import (
    OPERATOR_MANAGER_ARGS,
    OPERATOR_METRICS_PORT,
    DynamoPlatformValues,
)
from k8s_charts.graphs import KVBM_METRICS_PORT, KVBM_METRICS_PORT_NAME
from k8s_charts.platform_charts import build, review_inputs
from plan import load_config
from tests.ops_dynamo_support import require_dynamo_venv
from tests.tools.k8s_schema import validate_all
from tests.tools.synth import REPO

KV_OFFLOAD = REPO / "config" / "examples" / "graphs" / "kv-offload.yaml"
DEFAULT = REPO / "config" / "default.yaml"
UPSTREAM_VALUES = yaml.safe_load(
    (REPO / "tests" / "data" / "upstream" / "dynamo-platform-1.6.0-values.yaml").read_text()
)


def workers(path: Path) -> list[dict]:
    cfg = load_config(path)
    objects = [
        o for c in graph_charts.build(cdk8s.App(), cfg, graph_charts.review_inputs(cfg)) for o in c.to_json()
    ]
    return [
        c
        for o in objects
        if o["kind"] == "DynamoGraphDeployment"
        for c in o["spec"]["components"]
        if c["type"] in ("worker", "prefill", "decode")
    ]


def main(component: dict) -> dict:
    (container,) = [c for c in component["podTemplate"]["spec"]["containers"] if c["name"] == "main"]
    return container


def test_kv_offload_workers_enable_kvbm_metrics_on_a_named_port():
    (worker,) = workers(KV_OFFLOAD)
    container = main(worker)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DYN_KVBM_METRICS"] == "true"
    assert env["DYN_KVBM_METRICS_PORT"] == str(KVBM_METRICS_PORT)
    assert {"name": KVBM_METRICS_PORT_NAME, "containerPort": KVBM_METRICS_PORT} in container["ports"]


def test_workers_without_kv_offload_get_neither():
    for worker in workers(DEFAULT):
        container = main(worker)
        assert not any(e["name"].startswith("DYN_KVBM") for e in container.get("env", []))
        assert "ports" not in container


def test_kvbm_reads_these_variables_and_defaults_to_this_port():
    """The names and the default port are in the pinned kvbm binary."""
    require_dynamo_venv()
    (so,) = (REPO / ".venv-dynamo").glob("lib/python3*/site-packages/kvbm/_core*.so")
    strings = subprocess.run(["strings", str(so)], capture_output=True, text=True, check=True).stdout
    assert "DYN_KVBM_METRICS" in strings and "DYN_KVBM_METRICS_PORT" in strings
    assert f"falling back to {KVBM_METRICS_PORT}" in strings


def _platform_objects() -> list[dict]:
    cfg = load_config(DEFAULT)
    return [o for c in build(cdk8s.App(), cfg, review_inputs(cfg)) for o in c.to_json()]


def test_kvbm_pod_monitor_scrapes_the_named_port():
    monitors = {o["metadata"]["name"]: o for o in _platform_objects() if o["kind"] == "PodMonitor"}
    kvbm = monitors["dynamo-kvbm"]
    (endpoint,) = kvbm["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == KVBM_METRICS_PORT_NAME
    assert kvbm["spec"]["namespaceSelector"] == {"matchNames": [INFERENCE_NAMESPACE]}
    assert validate_all([kvbm]) == []


def test_operator_metrics_bind_all_interfaces_only_with_monitoring():
    upstream_args = UPSTREAM_VALUES["dynamo-operator"]["controllerManager"]["manager"]["args"]
    assert "--metrics-bind-address=127.0.0.1:8080" in upstream_args  # what we change
    values = DynamoPlatformValues(prometheus_endpoint="http://prometheus:9090").to_helm()
    args = values["dynamo-operator"]["controllerManager"]["manager"]["args"]
    assert args == OPERATOR_MANAGER_ARGS
    # Only the bind address differs from upstream (Helm replaces the whole list).
    assert [a for a in upstream_args if not a.startswith("--metrics-bind-address")] == [
        a for a in args if not a.startswith("--metrics-bind-address")
    ]
    off = DynamoPlatformValues().to_helm()
    assert "manager" not in off["dynamo-operator"]["controllerManager"]


def test_operator_pod_monitor_targets_the_manager_on_the_metrics_port():
    monitors = {o["metadata"]["name"]: o for o in _platform_objects() if o["kind"] == "PodMonitor"}
    operator = monitors["dynamo-operator"]
    assert operator["spec"]["namespaceSelector"] == {"matchNames": [DYNAMO_SYSTEM_NAMESPACE]}
    (endpoint,) = operator["spec"]["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is True
    relabels = endpoint["relabelings"]
    assert {
        "action": "keep",
        "regex": "manager",
        "sourceLabels": ["__meta_kubernetes_pod_container_name"],
    } in relabels
    assert any(
        r.get("targetLabel") == "__address__" and r["replacement"] == f"$1:{OPERATOR_METRICS_PORT}"
        for r in relabels
    )
    assert validate_all([operator]) == []
