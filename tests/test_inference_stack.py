"""Inference stacks: one manifest per graph with the DGD, outputs per graph, sharding."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk.assertions import Match

from config import ConfigError
from config.graphs import GraphConfig
from plan import load_config
from stacks.inference_stack import GRAPHS_PER_STACK, inference_stack_unit, shard_graphs
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.tools.k8s_schema import validate_all
from tests.tools.synth import synth

pytestmark = pytest.mark.xdist_group("default")

MULTINODE = REPO / "config" / "examples" / "graphs" / "vllm-multinode-405b-p5-efa.yaml"


def manifests(template: dict) -> list[dict]:
    """Kubernetes objects embedded in the stack's KubernetesManifest resources."""
    objects = []
    for resource in template["Resources"].values():
        if resource["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
            body = resource["Properties"]["Manifest"]
            text = body if isinstance(body, str) else json.dumps(body)
            objects.extend(json.loads(text))
    return objects


def test_default_inference_stack_applies_the_graph_after_the_platform(default_synth):
    template = default_synth.template("inference")
    objects = manifests(template)
    kinds = ["NetworkPolicy"] * 6 + ["DynamoGraphDeployment", "Job", "PrometheusRule"]
    assert [o["kind"] for o in objects] == kinds
    assert validate_all(objects) == []
    default_synth.assertions("inference").has_output(
        "R1Distill8bPortForward",
        {"Value": "kubectl port-forward -n dynamo svc/r1-distill-8b-frontend 8000:8000"},
    )
    default_synth.assertions("inference").has_output(
        "R1Distill8bFrontendService", {"Value": "dynamo/r1-distill-8b-frontend"}
    )
    default_synth.assertions("inference").has_resource_properties(
        "Custom::AWSCDK-EKS-KubernetesResource", {"Overwrite": True, "ClusterName": Match.any_value()}
    )
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    deps = manifest["artifacts"]["dev-inference"].get("dependencies", [])
    assert "dev-platform" in deps


@pytest.mark.xdist_group("multinode")
def test_multinode_example_synthesizes():
    template = synth(MULTINODE).template("inference")
    (dgd,) = [o for o in manifests(template) if o["kind"] == "DynamoGraphDeployment"]
    assert {c["name"]: c.get("multinode") for c in dgd["spec"]["components"]} == {
        "frontend": None,
        "prefill": {"nodeCount": 2},
        "decode": {"nodeCount": 2},
    }


EXPOSED = REPO / "config" / "examples" / "graphs" / "internal-load-balancer.yaml"


@pytest.mark.xdist_group("exposed")
def test_an_exposed_graph_applies_its_load_balancer_with_the_graph_and_names_it():
    result = synth(EXPOSED)
    objects = manifests(result.template("inference"))
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert validate_all(objects) == []
    result.assertions("inference").has_output(
        "HelloInternalLbLoadBalancerService", {"Value": "dynamo/hello-internal-lb-frontend-lb"}
    )


def test_a_graph_without_expose_gets_no_load_balancer_output(default_synth):
    outputs = default_synth.template("inference").get("Outputs", {})
    assert not [name for name in outputs if name.endswith("LoadBalancerService")]


def _graphs(count: int, **pins: int) -> list:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())["graphs"][0]
    names = [f"g{i:02d}" for i in range(count)]
    return [GraphConfig.model_validate({**data, "name": n, "stack": pins.get(n)}) for n in names]


def test_shards_fill_in_config_order():
    graphs = _graphs(23)
    shards = shard_graphs(graphs)
    assert [(index, len(members)) for index, members in shards] == [
        (0, GRAPHS_PER_STACK),
        (1, GRAPHS_PER_STACK),
        (2, 3),
    ]
    assert shards[0][1][0].name == "g00" and shards[2][1][-1].name == "g22"
    assert [inference_stack_unit(i) for i in range(3)] == ["inference", "inference-2", "inference-3"]


def test_pinned_graphs_stay_put_when_another_is_removed():
    pins = {f"g{i:02d}": 1 + i % 3 for i in range(12)}
    before = {g.name: index for index, members in shard_graphs(_graphs(12, **pins)) for g in members}
    remaining = [g for g in _graphs(12, **pins) if g.name != "g04"]
    after = {g.name: index for index, members in shard_graphs(remaining) for g in members}
    assert after == {name: index for name, index in before.items() if name != "g04"}


def _config_errors(tmp_path, data: dict) -> tuple[object, list[str]]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return path, raised.value.lines


def test_pinning_some_graphs_only_is_an_error(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    graph = data["graphs"][0]
    data["graphs"] = [{**graph, "name": "a", "stack": 2}, {**graph, "name": "b"}]
    path, lines = _config_errors(tmp_path, data)
    assert lines == [f"{path}: graphs b have no stack while others do; set stack on every graph or on none"]


@pytest.mark.xdist_group("pinned")
def test_pinned_stack_numbers_name_the_stacks(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    graph = data["graphs"][0]
    data["graphs"] = [{**graph, "name": "a", "stack": 3}, {**graph, "name": "b", "stack": 3}]
    path = tmp_path / "pinned.yaml"
    path.write_text(yaml.safe_dump(data))
    result = synth(path)
    assert sorted(n for n in result.templates if "-inference" in n) == ["dev-inference-3"]
    # Per graph: 6 NetworkPolicies, DGD, Job, PrometheusRule.
    assert len(manifests(result.template("inference-3"))) == 2 * 9


@pytest.mark.xdist_group("many-graphs")
def test_fifty_graphs_synthesize_within_cloudformation_limits(tmp_path):
    """Issue 8's bar: 50 graphs, every stack under half of CloudFormation's limits."""
    from bench.scale_configs import scale_config

    result = synth(scale_config(50, tmp_path))
    shards = [name for name in result.templates if "-inference" in name]
    assert len(shards) == 50 // GRAPHS_PER_STACK
    applied = sum(len(manifests(result.templates[name])) for name in shards)
    # Per graph: six NetworkPolicies, a DynamoGraphDeployment, a prefetch Job and its cost rules.
    assert applied == 9 * 50
    for name, file in result.template_files.items():
        template = result.templates[name]
        # CloudFormation: 1 MB template body (via S3), 500 resources, 200 outputs.
        assert file.stat().st_size < 0.5 * 1_000_000, name
        assert len(template["Resources"]) < 250, name
        assert len(template.get("Outputs", {})) < 100, name


def test_a_pinned_stack_has_a_size_limit(tmp_path):
    from plan.graphs import MAX_GRAPHS_PER_PINNED_STACK

    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    graph = data["graphs"][0]
    count = MAX_GRAPHS_PER_PINNED_STACK + 1
    data["graphs"] = [{**graph, "name": f"g{i:02d}", "stack": 1} for i in range(count)]
    data["karpenter"]["karpenter_gpu_limits"] = 2 * count
    path, lines = _config_errors(tmp_path, data)
    assert lines == [
        f"{path}: stack 1 holds {count} graphs; put at most {MAX_GRAPHS_PER_PINNED_STACK} in one "
        "stack (move some to another stack number)"
    ]
