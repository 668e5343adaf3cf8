"""Managed node group for cluster-critical pods (Karpenter, CoreDNS, operators)."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.cluster import SystemNodesConfig
from config.names import CRITICAL_ADDONS_TAINT, NODE_ROLE_MANAGED_POLICIES, SYSTEM_NODE_LABEL


class SystemNodeGroup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        nodes: SystemNodesConfig,
    ) -> None:
        super().__init__(scope, construct_id)

        self.role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_ROLE_MANAGED_POLICIES
            ],
        )

        # A launch template only to harden the instances: IMDSv2 with hop limit 1 keeps pods
        # away from the node's credentials (pods get their own through Pod Identity), and
        # the root volume is encrypted.
        launch_template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required",
                    http_put_response_hop_limit=1,
                    http_endpoint="enabled",
                ),
                block_device_mappings=[
                    ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                        device_name="/dev/xvda",
                        ebs=ec2.CfnLaunchTemplate.EbsProperty(
                            volume_size=nodes.disk_size_gib,
                            volume_type="gp3",
                            encrypted=True,
                            delete_on_termination=True,
                        ),
                    )
                ],
            ),
        )

        self.nodegroup = cluster.add_nodegroup_capacity(
            "SystemNodes",
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            instance_types=[ec2.InstanceType(name) for name in nodes.instance_types],
            min_size=nodes.min_size,
            desired_size=nodes.desired_size,
            max_size=nodes.max_size,
            node_role=self.role,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=launch_template.ref,
                version=launch_template.attr_latest_version_number,
            ),
            labels={SYSTEM_NODE_LABEL[0]: SYSTEM_NODE_LABEL[1]},
            taints=[
                eks.TaintSpec(key=CRITICAL_ADDONS_TAINT, value="true", effect=eks.TaintEffect.NO_SCHEDULE)
            ],
            enable_node_auto_repair=True,
        )
