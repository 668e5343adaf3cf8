"""A production-shaped config: retention, NAT per zone, restricted endpoint, admins."""

from __future__ import annotations

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
    for unit, resource in (("registry", "AWS::ECR::Repository"), ("cluster", "AWS::KMS::Key"), ("network", "AWS::Logs::LogGroup")):
        found = prod.assertions(unit).find_resources(resource)
        assert found and {r["DeletionPolicy"] for r in found.values()} == {"Retain"}, (unit, resource)
    repos = prod.template("registry")["Resources"]
    assert not any(r["Type"] == "Custom::ECRAutoDeleteImages" for r in repos.values())


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
    template = prod.assertions("cluster")
    for role in ("role/PlatformAdmin", "AWSReservedSSO_Admin_0123456789abcdef"):
        template.has_resource_properties(
            "AWS::EKS::AccessEntry",
            {
                "PrincipalArn": Match.string_like_regexp(role),
                "AccessPolicies": [
                    Match.object_like(
                        {
                            "AccessScope": {"Type": "cluster"},
                            "PolicyArn": Match.string_like_regexp("AmazonEKSClusterAdminPolicy"),
                        }
                    )
                ],
            },
        )


def test_stacks_target_the_configured_account(prod):
    manifest = (prod.outdir / "manifest.json").read_text()
    assert "aws://111122223333/us-east-1" in manifest
