"""Typed dynamo-platform Helm values: keys exist upstream, Grove + KAI only for multinode."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from config.names import CRITICAL_ADDONS_TAINT, SYSTEM_NODE_LABEL, prometheus_url
from k8s_charts.dynamo_platform_values import (
    SUBCHART_KEYS,
    dynamo_platform_values,
    has_multinode_graph,
)
from plan import load_config
from tests.tools.helm_values import nested, unknown_keys, without

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = yaml.safe_load((REPO / "tests/data/upstream/dynamo-platform-1.6.0-values.yaml").read_text())
MULTINODE = SimpleNamespace(graphs=[SimpleNamespace(topology="agg"), SimpleNamespace(topology="multinode")])
SINGLE_NODE = SimpleNamespace(graphs=[SimpleNamespace(topology="disagg_router")])


def exists_upstream(path: str, tree: dict) -> bool:
    return unknown_keys(nested(path), tree) == []


@pytest.mark.parametrize("cfg", [SINGLE_NODE, MULTINODE], ids=["single-node", "multinode"])
def test_every_key_we_set_exists_in_the_upstream_chart(cfg):
    values = dynamo_platform_values(cfg, prometheus_endpoint=prometheus_url()).to_helm()
    assert unknown_keys(without(values, SUBCHART_KEYS), UPSTREAM) == []


def test_subchart_exceptions_are_really_absent_upstream_and_sourced():
    for path, source in SUBCHART_KEYS.items():
        assert not exists_upstream(path, UPSTREAM), f"{path} is upstream now; drop the exception"
        assert "docs.nvidia.com" in source or "values.yaml" in source


def test_unknown_keys_detects_a_misspelt_key():
    assert not exists_upstream("dynamo-operator.upgradeCrd", UPSTREAM)
    assert exists_upstream("dynamo-operator.upgradeCRD", UPSTREAM)
    assert unknown_keys({"global": {"grove": {"instal": True}}}, UPSTREAM) == ["global.grove.instal"]


def test_has_multinode_graph_with_stand_ins():
    assert has_multinode_graph(MULTINODE)
    assert not has_multinode_graph(SINGLE_NODE)
    assert not has_multinode_graph(SimpleNamespace())  # no graphs section at all
    assert not has_multinode_graph(SimpleNamespace(graphs=None))


def test_has_multinode_graph_with_real_configs():
    assert has_multinode_graph(load_config(REPO / "config/examples/graphs/vllm-multinode-405b-p5-efa.yaml"))
    assert not has_multinode_graph(load_config(REPO / "config/default.yaml"))


def test_single_node_platform_values():
    values = dynamo_platform_values(SINGLE_NODE, prometheus_endpoint=prometheus_url()).to_helm()
    assert values["global"] == {
        "etcd": {"install": False},
        "nats": {"install": False},
        "grove": {"install": False},
        "kai-scheduler": {"install": False},
    }
    operator = values["dynamo-operator"]
    assert operator["upgradeCRD"] is True
    assert operator["dynamo"]["metrics"]["prometheusEndpoint"] == (
        "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
    )
    assert "webhook" not in operator  # upstream webhook defaults kept
    assert "grove" not in values and "kai-scheduler" not in values


def test_operator_runs_on_system_nodes():
    operator = dynamo_platform_values(SINGLE_NODE, prometheus_endpoint="").to_helm()["dynamo-operator"]
    manager = operator["controllerManager"]
    assert {"key": CRITICAL_ADDONS_TAINT, "operator": "Exists", "effect": "NoSchedule"} in manager[
        "tolerations"
    ]
    terms = manager["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {
            "matchExpressions": [
                {"key": SYSTEM_NODE_LABEL[0], "operator": "In", "values": [SYSTEM_NODE_LABEL[1]]}
            ]
        }
    ]


def test_multinode_installs_grove_and_kai_as_documented():
    values = dynamo_platform_values(MULTINODE, prometheus_endpoint="").to_helm()
    assert values["global"]["grove"] == {"install": True}
    assert values["global"]["kai-scheduler"] == {"install": True}
    grace = values["kai-scheduler"]["scheduler"]["args"]["default-staleness-grace-period"]
    assert grace == "-1s" and isinstance(grace, str)
    assert values["grove"]["tolerations"] and values["kai-scheduler"]["global"]["affinity"]
