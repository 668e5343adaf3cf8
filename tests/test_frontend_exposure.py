"""The frontend is reachable only inside the cluster unless its graph sets `expose`: no config
renders a NodePort Service, an Ingress (or Gateway API / Istio route), or Helm values that
turn one on, and the only LoadBalancer Service is a graph's own `<graph>-frontend-lb`, from
`expose`: an internal NLB admitting listed source ranges, none /0, with annotations that
cloud-provider-aws (the service controller EKS runs; no AWS Load Balancer Controller here)
declares (tests/data/upstream/cloud-provider-aws-v1.36.1.json, read from its
source by tools/cloud_provider_aws.py). The operator's own
frontend Service stays the ClusterIP it creates: we set no service type, and the platform
chart's ingress and Istio integrations stay at upstream's `enabled: false`
(tests/data/upstream/dynamo-platform-1.6.0-values.yaml)."""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest
import yaml
from pydantic import ValidationError

from config import versions
from config.graphs import FrontendExposeConfig
from config.names import FRONTEND_SERVICE_PORT
from k8s_charts.dynamo_platform_values import DynamoPlatformValues
from k8s_charts.frontend_exposure import (
    FRONTEND_NODES,
    LB_INTERNAL,
    LB_SSL_CERT,
    LB_SSL_PORTS,
    LB_TARGET_NODE_LABELS,
    LB_TYPE,
    TLS_PORT,
)
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
ANNOTATION_PREFIX = "service.beta.kubernetes.io/"
# The cloud-provider-aws release of our default Kubernetes minor (tools/cloud_provider_aws.py).
ANNOTATION_RECORD = REPO / "tests/data/upstream/cloud-provider-aws-v1.36.1.json"
DECLARED = set(json.loads(ANNOTATION_RECORD.read_text())["annotations"].values())


def test_annotation_record_is_the_default_kubernetes_minor():
    # Moving KUBERNETES_DEFAULT to another minor fails here until the record is regenerated.
    ref = json.loads(ANNOTATION_RECORD.read_text())["ref"]
    assert ref.startswith(f"v{versions.KUBERNETES_DEFAULT}."), (ref, versions.KUBERNETES_DEFAULT)
    assert ANNOTATION_RECORD.name.endswith(f"-{ref}.json")


def load_balancer_problems(name: str, obj: dict) -> list[str]:
    """What makes a LoadBalancer Service more than our internal, range-limited frontend NLB."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    annotations = meta.get("annotations") or {}
    problems = [
        f"{name}: annotation {key} is not one cloud-provider-aws declares"
        for key in annotations
        if key.startswith(ANNOTATION_PREFIX) and key not in DECLARED
    ]
    if not meta["name"].endswith("-frontend-lb"):
        problems.append(f"{name}: not a graph's frontend load balancer")
    if annotations.get(LB_TYPE) != "nlb" or annotations.get(LB_INTERNAL) != "true":
        problems.append(f"{name}: not an internal NLB")
    ranges = spec.get("loadBalancerSourceRanges") or []
    if not ranges or any(ipaddress.ip_network(r).prefixlen == 0 for r in ranges):
        problems.append(f"{name}: admits every address (no source ranges, or a /0)")
    if spec.get("externalTrafficPolicy") != "Local":
        problems.append(f"{name}: clients' addresses are lost, so the NetworkPolicy cannot admit them")
    return problems


def object_problems(obj: dict) -> list[str]:
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if obj.get("kind") in EXPOSING_KINDS:
        return [f"{name}: exposes a service outside the cluster"]
    if obj.get("kind") != "Service":
        return []
    kind = (obj.get("spec") or {}).get("type")
    if kind == "NodePort":
        return [f"{name}: Service type NodePort"]
    if kind == "LoadBalancer":
        return load_balancer_problems(name, obj)
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
            if key in ("type", "serviceType") and value in ("LoadBalancer", "NodePort"):
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


def load_balancers(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "Service" and o["spec"].get("type") == "LoadBalancer"]


@pytest.mark.parametrize("label", [label for label, _ in shipped_configs()])
def test_a_load_balancer_exists_only_for_a_graph_that_sets_expose(label):
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == label]
    found = {o["metadata"]["name"] for o in load_balancers(render(cfg)["graphs"])}
    assert found == {g.frontend_load_balancer_service() for g in cfg.graphs if g.expose is not None}


def exposed_example() -> list[dict]:
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == "internal-load-balancer"]
    return render(cfg)["graphs"]


def test_the_exposed_example_is_an_internal_tls_nlb_on_the_frontend_pods():
    (service,) = load_balancers(exposed_example())
    annotations = service["metadata"]["annotations"]
    assert annotations[LB_TYPE] == "nlb" and annotations[LB_INTERNAL] == "true"
    assert annotations[LB_SSL_CERT].startswith("arn:aws:acm:")
    assert annotations[LB_SSL_PORTS] == str(TLS_PORT)
    assert service["spec"]["ports"] == [
        {"name": "https", "port": TLS_PORT, "protocol": "TCP", "targetPort": FRONTEND_SERVICE_PORT}
    ]
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/16", "172.16.8.0/24"]
    assert annotations[LB_TARGET_NODE_LABELS] == FRONTEND_NODES
    # The frontend's pods, by the labels the graph's NetworkPolicies select too.
    (dgd,) = [o for o in exposed_example() if o["kind"] == "DynamoGraphDeployment"]
    (frontend,) = [c for c in dgd["spec"]["components"] if c["name"] == "frontend"]
    pod_labels = frontend["podTemplate"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for component in dgd["spec"]["components"]:
        if component["name"] != "frontend":
            labels = component["podTemplate"]["metadata"]["labels"]
            assert not service["spec"]["selector"].items() <= labels.items(), component["name"]


@pytest.mark.parametrize("label", [label for label, _ in shipped_configs()])
def test_the_frontend_can_only_run_on_the_nodes_the_load_balancer_targets(label):
    # Targets are the CPU pool nodes; every other node Karpenter or the system node group
    # makes is tainted, so a frontend that tolerates nothing never lands outside them.
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == label]
    for dgd in (o for o in render(cfg)["graphs"] if o["kind"] == "DynamoGraphDeployment"):
        (frontend,) = [c for c in dgd["spec"]["components"] if c["name"] == "frontend"]
        spec = frontend["podTemplate"]["spec"]
        assert not spec.get("tolerations") and not spec.get("nodeSelector"), dgd["metadata"]["name"]
    key, value = FRONTEND_NODES.split("=")
    pools = render(cfg).get("karpenter-pools") or []
    for pool in (o for o in pools if o["kind"] == "NodePool"):
        template = pool["spec"]["template"]
        if not template["spec"].get("taints"):
            assert template["metadata"]["labels"][key] == value, pool["metadata"]["name"]


def test_every_annotation_we_render_is_one_cloud_provider_aws_declares():
    assert {LB_TYPE, LB_INTERNAL, LB_SSL_CERT, LB_SSL_PORTS, LB_TARGET_NODE_LABELS} <= DECLARED
    rendered = {key for o in load_balancers(exposed_example()) for key in o["metadata"]["annotations"]}
    assert rendered and rendered <= DECLARED


def test_the_annotation_record_is_read_from_the_provider_source():
    from tools.cloud_provider_aws import extract

    source = 'const ServiceAnnotationLoadBalancerInternal = "service.beta.kubernetes.io/x"\n' * 1 + "".join(
        f'\tServiceAnnotationA{i} = "service.beta.kubernetes.io/a{i}"\n' for i in range(10)
    )
    assert extract(source)["ServiceAnnotationLoadBalancerInternal"] == "service.beta.kubernetes.io/x"
    # A source that no longer declares them stops the refresh instead of recording nothing.
    with pytest.raises(SystemExit):
        extract("package aws\n")
    assert len(DECLARED) >= 25


@pytest.mark.parametrize(
    ("mutation", "problem"),
    [
        (
            lambda s: s["metadata"]["annotations"].update(
                {ANNOTATION_PREFIX + "aws-load-balancer-scheme": "x"}
            ),
            "not one",
        ),
        (lambda s: s["metadata"]["annotations"].pop(LB_INTERNAL), "not an internal NLB"),
        (lambda s: s["metadata"]["annotations"].update({LB_INTERNAL: "false"}), "not an internal NLB"),
        (lambda s: s["spec"].update(loadBalancerSourceRanges=[]), "admits every address"),
        (lambda s: s["spec"].update(loadBalancerSourceRanges=["0.0.0.0/0"]), "admits every address"),
        (lambda s: s["spec"].update(externalTrafficPolicy="Cluster"), "addresses are lost"),
        (lambda s: s["metadata"].update(name="grafana"), "not a graph's frontend"),
    ],
)
def test_the_checks_catch_a_planted_load_balancer(mutation, problem):
    (service,) = load_balancers(exposed_example())
    assert object_problems(service) == []
    planted = copy.deepcopy(service)
    mutation(planted)
    assert any(problem in line for line in object_problems(planted)), object_problems(planted)


def test_the_checks_catch_planted_exposure():
    assert object_problems({"kind": "Service", "metadata": {"name": "x"}, "spec": {"type": "NodePort"}})
    assert object_problems({"kind": "Ingress", "metadata": {"name": "x"}})
    assert not object_problems({"kind": "Service", "metadata": {"name": "x"}, "spec": {"type": "ClusterIP"}})
    assert values_problems({"grafana": {"service": {"type": "NodePort"}}})
    assert values_problems({"grafana": {"service": {"type": "LoadBalancer"}}})
    assert values_problems({"dynamo-operator": {"dynamo": {"ingress": {"enabled": True}}}})
    assert not values_problems({"grafana": {"service": {"type": "ClusterIP"}, "ingress": {"enabled": False}}})


GOOD = {"type": "internal_nlb", "source_ranges": ["10.0.0.0/16"]}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"type": "internet_facing"}, "type", "would put the frontend on the internet"),
        ({"type": "external"}, "type", "would put the frontend on the internet"),
        ({"type": "alb"}, "type", "unknown load balancer type 'alb'; use 'internal_nlb'"),
        ({"source_ranges": []}, "source_ranges", "no source ranges; list the client ranges"),
        ({"source_ranges": ["0.0.0.0/0"]}, "source_ranges", "a /0 range admits every address"),
        ({"source_ranges": ["10.0.0.1/16"]}, "source_ranges", "not a valid IPv4 CIDR"),
        (
            {"tls_certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"},
            "tls_certificate_arn",
            "not an ACM certificate ARN",
        ),
    ],
)
def test_expose_errors_name_the_field_and_the_fix_on_one_line(change, field, message):
    with pytest.raises(ValidationError) as err:
        FrontendExposeConfig(**{**GOOD, **change})
    (error,) = err.value.errors()
    assert error["loc"][0] == field
    assert message in error["msg"] and "\n" not in error["msg"]


def test_expose_needs_its_type_and_ranges():
    with pytest.raises(ValidationError) as err:
        FrontendExposeConfig()
    assert {e["loc"][0] for e in err.value.errors()} == {"type", "source_ranges"}
