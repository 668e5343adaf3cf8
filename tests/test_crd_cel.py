"""The CRD gate runs the CRDs' CEL rules, as the API server does: rendered objects pass, and
objects with a defect only a rule can see are refused (tests/tools/crd_cel.py)."""

from __future__ import annotations

import copy

import pytest

from k8s_charts.registry import render
from plan import load_config
from tests.conftest import DEFAULT_CONFIG
from tests.tools import crd_cel
from tests.tools.k8s_schema import crd_schemas, validate_all, validate_custom_resource

pytestmark = pytest.mark.xdist_group("karpenter-pools")


@pytest.fixture(scope="module")
def objects() -> dict[str, list[dict]]:
    return render(load_config(DEFAULT_CONFIG))


def _first(objs: list[dict], kind: str) -> dict:
    return copy.deepcopy(next(o for o in objs if o["kind"] == kind))


def test_rendered_pools_pass_their_rules_and_the_rules_ran(objects, monkeypatch):
    ran: list[str] = []
    compile_rule = crd_cel._program
    monkeypatch.setattr(crd_cel, "_program", lambda rule: ran.append(rule) or compile_rule(rule))
    assert validate_all(objects["karpenter-pools"]) == []
    assert any("karpenter.k8s.aws/instance-gpu-count" in rule for rule in ran)
    assert any("amiFamily" in rule for rule in ran)


def test_a_requirement_on_a_label_karpenter_does_not_offer_is_refused(objects):
    pool = _first(objects["karpenter-pools"], "NodePool")
    pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/gpu-count", "operator": "In", "values": ["1"]}
    )
    errors = validate_custom_resource(pool)
    assert errors and 'label domain "karpenter.k8s.aws" is restricted' in errors[0]


def test_an_empty_in_requirement_is_refused(objects):
    pool = _first(objects["karpenter-pools"], "NodePool")
    pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": []}
    )
    assert validate_custom_resource(pool)


def test_an_ami_family_that_contradicts_the_alias_is_refused(objects):
    node_class = _first(objects["karpenter-pools"], "EC2NodeClass")
    assert node_class["spec"]["amiSelectorTerms"][0]["alias"].startswith("al2023@")
    node_class["spec"]["amiFamily"] = "Bottlerocket"
    errors = validate_custom_resource(node_class)
    assert errors and "AL2023" in errors[0]


def test_a_reserved_tag_on_a_node_class_is_refused(objects):
    node_class = _first(objects["karpenter-pools"], "EC2NodeClass")
    node_class["spec"].setdefault("tags", {})["karpenter.sh/nodepool"] = "gpu"
    assert validate_custom_resource(node_class)


def test_transition_rules_are_skipped_on_create():
    schema = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
    }
    assert crd_cel.cel_errors(schema, {"a": 1}) == []


def test_defaults_apply_before_the_rules():
    schema = {
        "type": "object",
        "properties": {"mode": {"type": "string", "default": "on"}},
        "x-kubernetes-validations": [{"rule": "self.mode == 'on'", "message": "mode must be on"}],
    }
    assert crd_cel.cel_errors(schema, {}) == []
    assert crd_cel.cel_errors(schema, {"mode": "off"}) == ["(root): mode must be on"]


def test_a_function_this_module_does_not_provide_refuses_instead_of_passing():
    schema = {
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self.lowerAscii() == 'a'", "message": "m"}],
    }
    errors = crd_cel.cel_errors(schema, "A")
    assert errors and "could not be evaluated" in errors[0]


def test_every_rule_of_every_vendored_crd_compiles():
    # A CRD bump that brings a rule cel-python cannot parse fails here, not silently later.
    def rules(node):
        if isinstance(node, dict):
            for validation in node.get("x-kubernetes-validations", []):
                yield validation["rule"]
            for value in node.values():
                yield from rules(value)
        elif isinstance(node, list):
            for value in node:
                yield from rules(value)

    found = [rule for schema in crd_schemas().values() for rule in rules(schema)]
    assert len(found) > 40
    for rule in found:
        crd_cel._program(rule)
