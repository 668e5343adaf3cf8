"""Platform stack for configs other than the default: monitoring off, a multinode graph."""

from __future__ import annotations

import json

import pytest

from tests.tools.synth import REPO, synth

pytestmark = pytest.mark.xdist_group("platform-variants")

NO_MONITORING = REPO / "tests" / "configs" / "platform-no-monitoring.yaml"
MULTINODE = REPO / "config" / "examples" / "graphs" / "vllm-multinode-405b-p5-efa.yaml"


def releases(template: dict) -> dict[str, dict]:
    return {
        r["Properties"]["Release"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"
    }


def test_monitoring_off_installs_no_monitoring():
    template = synth(NO_MONITORING).template("platform")
    assert set(releases(template)) == {"dynamo-platform", "external-secrets"}
    names = [
        r["Properties"].get("Name")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SecretsManager::Secret"
    ]
    assert names == ["dynamo-nomon/hf-token"]
    values = json.loads(releases(template)["dynamo-platform"]["Values"])
    assert values["dynamo-operator"]["dynamo"]["metrics"]["prometheusEndpoint"] == ""
    assert not any("Grafana" in key or "Prometheus" in key for key in template.get("Outputs", {}))


def test_multinode_graph_installs_grove_and_kai():
    template = synth(MULTINODE).template("platform")
    values = json.loads(releases(template)["dynamo-platform"]["Values"])
    assert values["global"]["grove"] == {"install": True}
    assert values["global"]["kai-scheduler"] == {"install": True}
    assert values["kai-scheduler"]["scheduler"]["args"]["default-staleness-grace-period"] == "-1s"


def test_retained_environment_keeps_the_model_cache():
    production = REPO / "config" / "examples" / "production.yaml"
    template = synth(production).template("platform")
    (file_system,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EFS::FileSystem"]
    assert file_system["DeletionPolicy"] == "Retain"
    volumes = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
        and "StorageClass" in str(r["Properties"]["Manifest"])
    ]
    assert len(volumes) == 2  # model cache (EFS) and Prometheus (EBS)
    for volume in volumes:
        assert '"reclaimPolicy":"Retain"' in str(volume["Properties"]["Manifest"])
