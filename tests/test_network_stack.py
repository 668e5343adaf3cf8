"""Network stack: VPC layout, NAT, endpoints, flow logs, discovery tags."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.xdist_group("default")


def test_vpc_spans_configured_zones(default_synth):
    template = default_synth.assertions("network")
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"})
    subnets = default_synth.template("network")["Resources"]
    zones = {r["Properties"]["AvailabilityZone"] for r in subnets.values() if r["Type"] == "AWS::EC2::Subnet"}
    assert zones == {"us-west-2a", "us-west-2b", "us-west-2c"}


def test_one_nat_gateway_for_dev(default_synth):
    default_synth.assertions("network").resource_count_is("AWS::EC2::NatGateway", 1)


def test_private_subnets_tagged_for_karpenter_and_internal_elb(default_synth):
    template = default_synth.assertions("network")
    private = template.find_resources(
        "AWS::EC2::Subnet",
        {
            "Properties": {
                "Tags": Match.array_with([{"Key": "karpenter.sh/discovery", "Value": "dynamo-dev"}])
            }
        },
    )
    assert len(private) == 3
    for subnet in private.values():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        assert tags["kubernetes.io/role/internal-elb"] == "1"
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    public = template.find_resources(
        "AWS::EC2::Subnet",
        {"Properties": {"Tags": Match.array_with([{"Key": "kubernetes.io/role/elb", "Value": "1"}])}},
    )
    assert len(public) == 3


def test_s3_gateway_endpoint_and_flow_logs(default_synth):
    template = default_synth.assertions("network")
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"VpcEndpointType": "Gateway", "ServiceName": Match.object_like({})},
    )
    template.has_resource_properties("AWS::EC2::FlowLog", {"ResourceType": "VPC", "TrafficType": "ALL"})
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_dev_removes_log_group_on_destroy(default_synth):
    groups = default_synth.assertions("network").find_resources("AWS::Logs::LogGroup")
    assert {g["DeletionPolicy"] for g in groups.values()} == {"Delete"}
