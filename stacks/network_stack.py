"""Network: the VPC every other unit lives in."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.names import discovery_tag_key
from config.network import NetworkConfig
from stacks.retention import log_retention


class NetworkStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: NetworkConfig,
        cluster_name: str,
        removal_policy: RemovalPolicy,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._zones = list(network.availability_zones)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(network.vpc_cidr),
            availability_zones=list(network.availability_zones),
            nat_gateways=network.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=network.public_subnet_prefix,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=network.private_subnet_prefix,
                ),
            ],
            gateway_endpoints={
                # Image layers come from S3 (ECR): keep that traffic off the NAT bill.
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=log_retention(network.flow_log_retention_days),
            removal_policy=removal_policy,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        # Load balancer controllers and Karpenter find subnets by these tags.
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
            Tags.of(subnet).add(discovery_tag_key(), cluster_name)

    @property
    def availability_zones(self) -> list[str]:
        # The zones come from config. Without this, a stack with a concrete account (pipeline
        # stages, production configs) asks AWS for its zones at synth: no longer offline.
        return self._zones
