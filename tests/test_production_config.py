"""A production-shaped config: retention, NAT per zone, restricted endpoint, admins."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from config import versions
from tests.tools.synth import REPO, synth

pytestmark = pytest.mark.xdist_group("production")

PROD = REPO / "config" / "examples" / "production.yaml"


@pytest.fixture(scope="module")
def prod():
    return synth(PROD)


def test_nat_gateway_per_zone(prod):
    prod.assertions("network").resource_count_is("AWS::EC2::NatGateway", 3)


def test_data_is_retained(prod):
    for unit, resource in (("cluster", "AWS::KMS::Key"), ("network", "AWS::Logs::LogGroup")):
        found = prod.assertions(unit).find_resources(resource)
        assert found and {r["DeletionPolicy"] for r in found.values()} == {"Retain"}, (unit, resource)
    repos = prod.assertions("registry").find_resources("AWS::ECR::Repository")
    policies = {r["Properties"]["RepositoryName"]: r["DeletionPolicy"] for r in repos.values()}
    # The build layer cache is disposable by design (stacks/registry_stack.py); releases stay.
    assert policies.pop("dynamo-prod/build-cache") == "Delete"
    assert set(policies.values()) == {"Retain"} and len(policies) == 5


def test_endpoint_allow_list_and_version(prod):
    prod.assertions("cluster").has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "Version": "1.35",
            "ResourcesVpcConfig": Match.object_like({"PublicAccessCidrs": ["198.51.100.0/24"]}),
        },
    )
    prod.assertions("cluster").has_resource_properties(
        "AWS::EKS::Addon",
        {"AddonName": "kube-proxy", "AddonVersion": versions.EKS_ADDONS["1.35"]["kube-proxy"]},
    )


def test_admin_access_entries(prod):
    entries = prod.assertions("cluster").find_resources("AWS::EKS::AccessEntry")
    admins = {
        r["Properties"]["PrincipalArn"]: r["Properties"]["AccessPolicies"]
        for r in entries.values()
        if isinstance(r["Properties"]["PrincipalArn"], str)
    }
    assert set(admins) == {
        "arn:aws:iam::111122223333:role/PlatformAdmin",
        "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",
    }
    for policies in admins.values():
        (policy,) = policies
        assert policy["AccessScope"] == {"Type": "cluster"}
        assert "AmazonEKSClusterAdminPolicy" in json.dumps(policy["PolicyArn"])


def test_stacks_target_the_configured_account(prod):
    manifest = (prod.outdir / "manifest.json").read_text()
    assert "aws://111122223333/us-east-1" in manifest
