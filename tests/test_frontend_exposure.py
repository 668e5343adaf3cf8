"""The frontend is reachable only inside the cluster by default: no config renders a
LoadBalancer or NodePort Service, an Ingress (or Gateway API / Istio route), or Helm values
that turn one on. The operator's frontend Service is then the ClusterIP it creates: we set no
service type, and the platform chart's own ingress and Istio integrations stay at upstream's
`enabled: false` (tests/data/upstream/dynamo-platform-1.6.0-values.yaml)."""

from __future__ import annotations

import json

import pytest
import yaml

from k8s_charts.dynamo_platform_values import DynamoPlatformValues
from k8s_charts.registry import render
from tests.tools.configs import all_configs, config_id, shipped_configs
from tests.tools.synth import REPO, synth

CONFIGS = all_configs()
EXPOSING_KINDS = {
    "Ingress",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "VirtualService",
    "IngressRoute",
}
EXPOSING_TYPES = {"LoadBalancer", "NodePort"}


def object_problems(obj: dict) -> list[str]:
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if obj.get("kind") in EXPOSING_KINDS:
        return [f"{name}: exposes a service outside the cluster"]
    if obj.get("kind") == "Service" and (obj.get("spec") or {}).get("type") in EXPOSING_TYPES:
        return [f"{name}: Service type {obj['spec']['type']}"]
    return []


def literal(value: object) -> str:
    """A template string property; an Fn::Join's tokens become the word `token`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(part if isinstance(part, str) else "token" for part in parts)
    raise TypeError(f"not a string or Fn::Join: {str(value)[:80]}")


def values_problems(values: object, where: str = "") -> list[str]:
    """Helm values: a service type that exposes, or an ingress switched on, at any depth."""
    problems = []
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{where}.{key}"
            if key in ("type", "serviceType") and value in EXPOSING_TYPES:
                problems.append(f"{path}: {value}")
            if (
                key.lower() in ("ingress", "istio")
                and isinstance(value, dict)
                and value.get("enabled") is True
            ):
                problems.append(f"{path}.enabled: true")
            problems += values_problems(value, path)
    elif isinstance(values, list):
        for i, item in enumerate(values):
            problems += values_problems(item, f"{where}[{i}]")
    return problems


@pytest.mark.parametrize("label", [label for label, _ in shipped_configs()])
def test_no_rendered_object_exposes_anything(label):
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == label]
    objects = [obj for rendered in render(cfg).values() for obj in rendered]
    assert [p for obj in objects for p in object_problems(obj)] == []


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_no_synthesized_manifest_or_helm_release_exposes_anything(config):
    problems = []
    for template in synth(config).templates.values():
        for logical_id, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
                text = literal(props["Manifest"])
                problems += [f"{logical_id}: {p}" for obj in json.loads(text) for p in object_problems(obj)]
            if resource["Type"] == "Custom::AWSCDK-EKS-HelmChart" and "Values" in props:
                text = literal(props["Values"])
                problems += [f"{logical_id}: {p}" for p in values_problems(json.loads(text))]
    assert problems == []


def test_platform_chart_keeps_its_ingress_and_istio_off():
    upstream = yaml.safe_load((REPO / "tests/data/upstream/dynamo-platform-1.6.0-values.yaml").read_text())
    dynamo = upstream["dynamo-operator"]["dynamo"]
    assert dynamo["ingress"]["enabled"] is False and dynamo["istio"]["enabled"] is False
    ours = DynamoPlatformValues(prometheus_endpoint="http://p").to_helm()["dynamo-operator"]
    assert "ingress" not in ours.get("dynamo", {}) and "istio" not in ours.get("dynamo", {})


def test_the_checks_catch_planted_exposure():
    service = {"kind": "Service", "metadata": {"name": "x"}, "spec": {"type": "LoadBalancer"}}
    assert object_problems(service)
    assert object_problems({"kind": "Ingress", "metadata": {"name": "x"}})
    assert not object_problems({"kind": "Service", "metadata": {"name": "x"}, "spec": {"type": "ClusterIP"}})
    assert values_problems({"grafana": {"service": {"type": "NodePort"}}})
    assert values_problems({"dynamo-operator": {"dynamo": {"ingress": {"enabled": True}}}})
    assert not values_problems({"grafana": {"service": {"type": "ClusterIP"}, "ingress": {"enabled": False}}})
