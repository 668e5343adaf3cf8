"""EKS add-on configuration values against the upstream chart values of the pinned add-on
release: EKS refuses (CREATE_FAILED, "ConfigurationValue is not in valid JSON or YAML
format" / schema errors) keys the add-on's schema does not know or values of another type,
and that schema is generated from the chart's values.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from config import versions
from stacks.eks_addons import addon_configuration
from tests.tools.helm_values import unknown_keys

UPSTREAM = Path(__file__).resolve().parent / "data" / "upstream"
# Add-on -> the vendored values.yaml of its chart (name carries the release it came from).
CHARTS = {
    "vpc-cni": "aws-vpc-cni-1.23.0-values.yaml",
    "aws-ebs-csi-driver": "aws-ebs-csi-driver-v1.59.0-values.yaml",
}


def _upstream(addon: str) -> dict:
    return yaml.safe_load((UPSTREAM / CHARTS[addon]).read_text())


def type_mismatches(values: dict, upstream: dict, prefix: str = "") -> list[str]:
    """Leaves we set whose YAML type differs from upstream's default (a boolean where the
    chart takes the string "true", a list where it takes a map)."""
    found = []
    for key, value in values.items():
        path, theirs = f"{prefix}{key}", upstream.get(key)
        if isinstance(value, dict) and isinstance(theirs, dict):
            if theirs:  # an empty map upstream is free-form: its keys are ours
                found += type_mismatches(value, theirs, path + ".")
        elif theirs is not None and type(value) is not type(theirs):
            found.append(f"{path}: {type(value).__name__}, upstream {type(theirs).__name__}")
    return found


def test_every_configured_addon_has_vendored_chart_values():
    assert set(addon_configuration("c")) == set(CHARTS)


@pytest.mark.parametrize("addon", sorted(CHARTS))
def test_keys_and_types_match_the_chart(addon):
    ours, theirs = addon_configuration("dynamo-dev")[addon], _upstream(addon)
    assert unknown_keys(ours, theirs) == []
    assert type_mismatches(ours, theirs) == []


@pytest.mark.parametrize("addon", sorted(CHARTS))
def test_vendored_chart_is_the_pinned_addon_minor(addon):
    # Bumping an add-on to another minor fails here until its chart values are re-vendored.
    vendored = re.search(r"(\d+)\.(\d+)\.\d+-values", CHARTS[addon])
    assert vendored
    for kubernetes, pins in versions.EKS_ADDONS.items():
        pinned = re.match(r"v(\d+)\.(\d+)\.", pins[addon])
        assert pinned and pinned.groups() == vendored.groups(), (kubernetes, pins[addon], CHARTS[addon])


def test_a_misspelt_key_and_a_boolean_for_a_string_are_caught():
    theirs = _upstream("vpc-cni")
    assert unknown_keys({"enableNetworkPolicies": "true"}, theirs) == ["enableNetworkPolicies"]
    assert type_mismatches({"enableNetworkPolicy": True}, theirs) == [
        "enableNetworkPolicy: bool, upstream str"
    ]
    assert unknown_keys({"controller": {"extraVolumeTag": {}}}, _upstream("aws-ebs-csi-driver"))
