"""Version pins that cannot drift: what is supported derives from the pin tables, and every
pin is read by something."""

from __future__ import annotations

import ast
import re

import pytest

from config import versions
from tests.tools.synth import REPO


def minor(version: str) -> int:
    return int(version.split(".")[1])


def addon_rows_problems(table: dict[str, dict[str, str]]) -> list[str]:
    """Every Kubernetes version's row pins the same add-ons."""
    names = {name for row in table.values() for name in row}
    return [
        f"{version}: no pin for {sorted(names - set(row))}"
        for version, row in table.items()
        if set(row) != names
    ]


def test_supported_kubernetes_versions_are_the_add_on_table():
    assert tuple(sorted(versions.EKS_ADDONS, key=minor)) == versions.KUBERNETES_SUPPORTED
    assert versions.KUBERNETES_DEFAULT in versions.KUBERNETES_SUPPORTED
    assert addon_rows_problems(versions.EKS_ADDONS) == []


def test_a_missing_add_on_pin_is_caught():
    table = {k: dict(v) for k, v in versions.EKS_ADDONS.items()}
    del table["1.35"]["coredns"]
    assert addon_rows_problems(table) == ["1.35: no pin for ['coredns']"]


def test_add_ons_the_cluster_installs_are_pinned_for_every_version():
    source = (REPO / "stacks" / "eks_addons.py").read_text(encoding="utf-8")
    installed = set(
        re.findall(r'"((?:vpc-cni|coredns|kube-proxy|eks-pod-identity-agent|aws-[a-z-]+))"', source)
    )
    assert installed and all(installed <= set(row) for row in versions.EKS_ADDONS.values())


def test_kubectl_layer_matches_the_pin_and_every_supported_version():
    layer = versions.KUBECTL_LAYER_MINOR
    stack = (REPO / "stacks" / "cluster_stack.py").read_text(encoding="utf-8")
    assert f"from aws_cdk.lambda_layer_kubectl_v{layer} import KubectlV{layer}Layer" in stack
    requirements = (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(rf"^aws-cdk\.lambda-layer-kubectl-v{layer}==", requirements, re.M)
    # kubectl talks to API servers one minor older or newer than itself.
    assert all(abs(minor(v) - layer) <= 1 for v in versions.KUBERNETES_SUPPORTED)


def test_every_pin_is_read_somewhere():
    names = [
        node.targets[0].id
        for node in ast.parse((REPO / "config" / "versions.py").read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    ]
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("config", "plan", "k8s_charts", "stacks", "ops", "image_build", "bench")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "versions.py" and "k8s_charts/imports" not in path.as_posix()
    ) + (REPO / "app.py").read_text(encoding="utf-8")
    unread = [name for name in names if not re.search(rf"\b{name}\b", sources)]
    # The kubectl layer is a Python package import, so its pin is held to the code by the test
    # above rather than read.
    assert unread == ["KUBECTL_LAYER_MINOR"]


@pytest.mark.parametrize("value", [1.3, 1.36])
def test_an_unquoted_version_gets_the_quoting_hint(value):
    from pydantic import ValidationError

    from config.cluster import ClusterConfig

    with pytest.raises(ValidationError) as raised:
        ClusterConfig.model_validate({"name": "c", "kubernetes_version": value})
    assert "quote it" in str(raised.value)
