"""Inference stacks: one manifest per graph with the DGD, outputs per graph, sharding."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk.assertions import Match

from stacks.inference_stack import GRAPHS_PER_STACK, inference_stack_unit, shard_graphs
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.tools.k8s_schema import validate_all
from tests.tools.synth import synth

pytestmark = pytest.mark.xdist_group("default")

MULTINODE = REPO / "config" / "examples" / "graphs" / "vllm-multinode-70b-p5-efa.yaml"


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
    assert [o["kind"] for o in objects] == ["DynamoGraphDeployment", "Job"]
    assert validate_all(objects) == []
    default_synth.assertions("inference").has_output("R1Distill8bPortForward", {
        "Value": "kubectl port-forward -n dynamo svc/r1-distill-8b-frontend 8000:8000"})
    default_synth.assertions("inference").has_output("R1Distill8bFrontendService", {
        "Value": "dynamo/r1-distill-8b-frontend"})
    default_synth.assertions("inference").has_resource_properties(
        "Custom::AWSCDK-EKS-KubernetesResource", {"Overwrite": True, "ClusterName": Match.any_value()})
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    deps = manifest["artifacts"]["dev-inference"].get("dependencies", [])
    assert "dev-platform" in deps


@pytest.mark.xdist_group("multinode")
def test_multinode_example_synthesizes():
    template = synth(MULTINODE).template("inference")
    (dgd,) = [o for o in manifests(template) if o["kind"] == "DynamoGraphDeployment"]
    assert {c["name"]: c.get("multinode") for c in dgd["spec"]["components"]} == {
        "frontend": None, "prefill": {"nodeCount": 2}, "decode": {"nodeCount": 2}}


def test_shards_fill_in_config_order():
    graphs = list(range(23))
    shards = shard_graphs(graphs)  # type: ignore[arg-type]
    assert [len(s) for s in shards] == [GRAPHS_PER_STACK, GRAPHS_PER_STACK, 3]
    assert shards[0][0] == 0 and shards[2][-1] == 22
    assert [inference_stack_unit(i) for i in range(3)] == ["inference", "inference-2", "inference-3"]


@pytest.mark.xdist_group("many-graphs")
def test_fifty_graphs_synthesize_within_cloudformation_limits(tmp_path):
    """Issue 8's bar: 50 graphs, every stack under half of CloudFormation's limits."""
    from bench.scale_configs import scale_config

    result = synth(scale_config(50, tmp_path))
    shards = [name for name in result.templates if "-inference" in name]
    assert len(shards) == 50 // GRAPHS_PER_STACK
    applied = sum(len(manifests(result.templates[name])) for name in shards)
    assert applied == 2 * 50  # a DynamoGraphDeployment and a prefetch Job per graph
    for name, file in result.template_files.items():
        template = result.templates[name]
        # CloudFormation: 1 MB template body (via S3), 500 resources, 200 outputs.
        assert file.stat().st_size < 0.5 * 1_000_000, name
        assert len(template["Resources"]) < 250, name
        assert len(template.get("Outputs", {})) < 100, name
