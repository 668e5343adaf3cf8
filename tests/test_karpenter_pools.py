"""NodePools / EC2NodeClasses: valid against the vendored CRDs, and the properties the issue
asks for (taints, labels, disruption, AMI pinning, IMDSv2, volumes, EFA)."""

from __future__ import annotations

import subprocess
import sys

import cdk8s
import pytest

from config import versions
from k8s_charts import karpenter_pools
from k8s_charts.registry import render
from plan import load_config
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.tools.k8s_schema import validate_all

pytestmark = pytest.mark.xdist_group("karpenter-pools")

EXAMPLE = REPO / "config" / "examples" / "custom-pools-bottlerocket.yaml"
CONFIGS = {"default": DEFAULT_CONFIG, "bottlerocket": EXAMPLE}


def objects(config) -> list[dict]:
    return render(load_config(config))["karpenter-pools"]


def by_kind(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, objects(CONFIGS[request.param])


def test_every_object_validates_against_its_crd(rendered):
    # Structure and the CRDs' CEL rules (restricted label domains, reserved tags, one root
    # volume, network-interface pairs...): tests/tools/k8s_schema.py.
    _, objs = rendered
    assert {o["kind"] for o in objs} == {"NodePool", "EC2NodeClass"}
    assert validate_all(objs) == []


def test_each_pool_has_its_class(rendered):
    _, objs = rendered
    pools, classes = by_kind(objs, "NodePool"), by_kind(objs, "EC2NodeClass")
    assert set(pools) == set(classes)
    for name, pool in pools.items():
        assert pool["spec"]["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": name,
        }


def test_node_classes_are_pinned_hardened_and_discovered(rendered):
    name, objs = rendered
    cfg = load_config(CONFIGS[name])
    alias = versions.AMI_ALIAS_BOTTLEROCKET if cfg.karpenter.use_bottlerocket else versions.AMI_ALIAS_AL2023
    for node_class in by_kind(objs, "EC2NodeClass").values():
        spec = node_class["spec"]
        assert spec["amiSelectorTerms"] == [{"alias": alias}]
        assert "latest" not in alias
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cfg.cluster.name}}]
        assert spec["role"] == f"KarpenterNodeRole-{cfg.cluster.name}"
        for mapping in spec["blockDeviceMappings"]:
            assert mapping["ebs"]["encrypted"] is True and mapping["ebs"]["volumeType"] == "gp3"


def test_gpu_pools(rendered):
    _, objs = rendered
    classes = by_kind(objs, "EC2NodeClass")
    for name, pool in by_kind(objs, "NodePool").items():
        template = pool["spec"]["template"]
        is_gpu = template["metadata"]["labels"]["dynamo-eks/node-role"] == "gpu"
        startup = template["spec"]["startupTaints"]
        assert {"key": "efs.csi.aws.com/agent-not-ready", "effect": "NoExecute"} in startup
        assert template["spec"]["expireAfter"] and template["spec"]["terminationGracePeriod"]
        assert pool["spec"]["disruption"]["budgets"]
        if not is_gpu:
            assert "taints" not in template["spec"]
            continue
        assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
        assert template["metadata"]["labels"]["dynamo-eks/gpu-model"]
        assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
        assert "nvidia.com/gpu" in pool["spec"]["limits"]
        spec = classes[name]["spec"]
        assert spec["instanceStorePolicy"] == "RAID0"
        root = next(m for m in spec["blockDeviceMappings"] if m.get("rootVolume"))
        assert int(root["ebs"]["volumeSize"].removesuffix("Gi")) >= 40  # images live on the RAID0


def test_default_pools_and_weights():
    objs = objects(DEFAULT_CONFIG)
    pools = by_kind(objs, "NodePool")
    assert set(pools) == {"cpu", "gpu-g6", "gpu-g6e", "gpu-p5"}
    assert {p["spec"]["weight"] for p in pools.values()} == {50}
    labels = {
        n: p["spec"]["template"]["metadata"]["labels"].get("dynamo-eks/gpu-model") for n, p in pools.items()
    }
    assert labels == {"cpu": None, "gpu-g6": "l4", "gpu-g6e": "l40s", "gpu-p5": "h100"}
    p5 = pools["gpu-p5"]["spec"]
    reqs = {r["key"]: r["values"] for r in p5["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == ["p5.48xlarge"]
    assert reqs["karpenter.sh/capacity-type"] == ["on-demand"]
    assert p5["template"]["metadata"]["labels"]["dynamo-eks/efa"] == "true"
    assert p5["limits"] == {"cpu": "1000", "memory": "4000Gi", "nvidia.com/gpu": "32"}
    cpu = pools["cpu"]["spec"]
    assert cpu["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert {r["key"]: r["values"] for r in cpu["template"]["spec"]["requirements"]}[
        "karpenter.k8s.aws/instance-family"
    ] == ["c7i", "m7i"]


def test_p5_gets_one_efa_interface_per_network_card():
    p5 = by_kind(objects(DEFAULT_CONFIG), "EC2NodeClass")["gpu-p5"]["spec"]
    interfaces = p5["networkInterfaces"]
    efa = sorted(i["networkCardIndex"] for i in interfaces if i["interfaceType"] == "efa-only")
    assert efa == list(range(32))
    assert [i for i in interfaces if i["interfaceType"] == "interface"] == [
        {"deviceIndex": 0, "interfaceType": "interface", "networkCardIndex": 0}
    ]
    assert "networkInterfaces" not in by_kind(objects(DEFAULT_CONFIG), "EC2NodeClass")["gpu-g6"]["spec"]


def test_bottlerocket_custom_pools():
    objs = objects(EXAMPLE)
    pools, classes = by_kind(objs, "NodePool"), by_kind(objs, "EC2NodeClass")
    assert pools["l40s-4x-reserved"]["spec"]["weight"] == 100
    assert pools["gpu-g6e"]["spec"]["weight"] == 50
    h200 = pools["h200-efa"]["spec"]["template"]["spec"]
    assert {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-west-2b"]} in h200[
        "requirements"
    ]
    assert h200["expireAfter"] == "Never"
    volumes = classes["h200-efa"]["spec"]["blockDeviceMappings"]
    assert [(v["deviceName"], v["ebs"]["volumeSize"], v.get("rootVolume", False)) for v in volumes] == [
        ("/dev/xvda", "10Gi", False),
        ("/dev/xvdb", "400Gi", True),
    ]
    efa = [i for i in classes["h200-efa"]["spec"]["networkInterfaces"] if i["interfaceType"] == "efa-only"]
    assert len(efa) == 16  # p5en.48xlarge: 16 EFA-capable network cards


def test_chart_uses_the_security_group_input():
    cfg = load_config(DEFAULT_CONFIG)
    (chart,) = karpenter_pools.build(cdk8s.App(), cfg, karpenter_pools.PoolInputs("sg-0abc"))
    classes = [o for o in chart.to_json() if o["kind"] == "EC2NodeClass"]
    assert {str(c["spec"]["securityGroupSelectorTerms"]) for c in classes} == {"[{'id': 'sg-0abc'}]"}


def test_make_manifests_renders_the_example(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ops", "manifests", "--config", str(EXAMPLE), "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "karpenter-pools.yaml: 8 objects" in result.stdout
