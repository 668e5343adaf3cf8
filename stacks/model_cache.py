"""EFS file system behind the shared `model-cache` volume."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from constructs import Construct


class ModelCacheFileSystem(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        cluster_security_group_id: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Model cache EFS: NFS from the EKS cluster security group only",
            allow_all_outbound=False,
        )
        # The cluster security group is on every node (system and Karpenter) and the
        # control plane ENIs; nothing else may mount the cache.
        self.security_group.add_ingress_rule(
            ec2.Peer.security_group_id(cluster_security_group_id),
            ec2.Port.tcp(2049),
            "NFS from EKS nodes",
        )

        self.file_system = efs.FileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_group=self.security_group,
            encrypted=True,
            # Model loads are large bursts after long idle periods: elastic throughput
            # serves them without provisioning for the peak or accruing burst credits.
            throughput_mode=efs.ThroughputMode.ELASTIC,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            removal_policy=removal_policy,
            # The weights can be downloaded again; backups would double the storage bill.
            enable_automatic_backups=False,
            # The EFS CSI driver mounts without IAM authorization (no `iam` mount option),
            # so a deny-anonymous file system policy would make every mount fail. Access is
            # limited by the security group above and by per-volume access points.
            allow_anonymous_access=True,
        )
