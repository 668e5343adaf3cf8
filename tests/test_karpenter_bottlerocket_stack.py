"""Bottlerocket + custom pools example: synthesizes clean (cdk-nag runs in synth) with exactly
one NVIDIA device plugin, the AMI's, so none is installed by Helm."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.tools.cfn_lint import lint

pytestmark = pytest.mark.xdist_group("custom-pools-bottlerocket")

EXAMPLE = REPO / "config" / "examples" / "custom-pools-bottlerocket.yaml"


@pytest.fixture(scope="module")
def example():
    from tests.tools.synth import synth

    return synth(EXAMPLE)


def _charts(example) -> set[str]:
    return {
        r["Properties"]["Chart"]
        for r in example.template("cluster")["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart"
    }


def test_no_nvidia_device_plugin_on_bottlerocket(example):
    charts = _charts(example)
    assert "nvidia-device-plugin" not in charts
    assert {"karpenter", "aws-efa-k8s-device-plugin"} <= charts


def test_cluster_template_lints_clean(example):
    name = next(n for n in example.template_files if n.endswith("-cluster"))
    assert lint(example.template_files[name], ["us-west-2"]) == []


def test_dcgm_exporter_is_told_to_see_every_gpu(example):
    """Bottlerocket hides NVIDIA_VISIBLE_DEVICES from containers without CAP_SYS_ADMIN; the
    exporter (which requests no GPU) asks for all of them (k8s_charts/platform_helm_values.py)."""
    import json

    (dcgm,) = [
        r["Properties"]
        for r in example.template("platform")["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-HelmChart" and r["Properties"]["Chart"] == "dcgm-exporter"
    ]
    values = json.loads(dcgm["Values"])
    assert values["extraEnv"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]
    assert "securityContext" not in values  # the chart's SYS_ADMIN stays
