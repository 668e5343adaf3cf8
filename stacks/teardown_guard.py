"""Teardown guard: a custom resource whose Delete sweeps what Karpenter and the VPC CNI left
(instances, launch templates, instance profiles, available ENIs) so the cluster, the node
role and the VPC can be deleted, and, unless data is retained, the EBS volumes the EBS CSI
driver made for this cluster (Prometheus) and Karpenter node volumes left detached, which
would otherwise outlive it and bill. It also deletes what EKS's service controller
(cloud-provider-aws) made for LoadBalancer Services that outlived the cluster: their NLBs or
Classic ELBs, target groups and `k8s-elb-`/`k8s-` security groups, which bill and whose
ENIs would block the VPC delete.
The handler is stacks/teardown_guard_handler/index.py.

Every mutating permission is conditioned on this cluster's tags, so the guard cannot touch
another cluster's (or anyone's untagged) resources even if its code had a bug.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

from config import versions
from config.names import VOLUME_CLUSTER_TAG_KEY
from stacks.lambda_code import handler_code
from stacks.nag_acknowledgements import acknowledge
from stacks.retention import owned_log_group

HANDLER_DIR = Path(__file__).parent / "teardown_guard_handler"
# How long CloudFormation waits for any custom resource of ours (the guard, and every
# Kubernetes manifest and Helm release: stacks/custom_resource_timeout.py). Their handlers
# are Lambdas of at most 15 minutes behind a provider Lambda of 15 minutes, so no answer can
# come later than that; without it a handler that timed out holds the stack for an hour.
CUSTOM_RESOURCE_SERVICE_TIMEOUT = Duration.minutes(20)

# Karpenter 1.14.1's tags, as in the handler (tests/test_teardown_guard.py holds both to
# tests/data/karpenter/resource-tags-v1.14.1.json, read from Karpenter's source).
CLUSTER_OWNED_TAG_KEY = "kubernetes.io/cluster/{cluster}"
CLUSTER_OWNED_TAG_VALUE = "owned"
EKS_CLUSTER_NAME_TAG_KEY = "eks:eks-cluster-name"
NODEPOOL_TAG_KEY = "karpenter.sh/nodepool"
NODECLASS_TAG_KEY = "karpenter.k8s.aws/ec2nodeclass"
# Not Karpenter's: the VPC CNI's cluster tag on the ENIs it creates.
VPC_CNI_CLUSTER_TAG_KEY = "cluster.k8s.amazonaws.com/name"
# cloud-provider-aws 1.36.1's service controller tags, as in the handler (tests/
# test_teardown_guard.py holds both to tests/data/upstream/cloud-provider-aws-v1.36.1.json).
SERVICE_CLUSTER_TAG_KEY = "kubernetes.io/cluster/{cluster}"
SERVICE_OWNED_VALUE = "owned"
SERVICE_NAME_TAG_KEY = "kubernetes.io/service-name"


class TeardownGuard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        subnets: list[ec2.ISubnet],
        node_role: iam.IRole,
        delete_volumes: bool,
        log_retention_days: int = 30,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.delete_volumes = delete_volumes

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
            ],
        )
        statements = guard_statements(stack=stack, cluster_name=cluster_name, delete_volumes=delete_volumes)
        for statement in statements:
            self.role.add_to_policy(statement)

        self.handler = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime(versions.LAMBDA_PYTHON_RUNTIME, lambda_.RuntimeFamily.PYTHON),
            handler="index.on_event",
            code=handler_code(HANDLER_DIR),
            role=self.role,
            # Terminating GPU instances takes minutes; the handler stops a minute early.
            timeout=Duration.minutes(14),
            memory_size=256,
            description=f"Sweeps Karpenter and Service load balancer leftovers of {cluster_name}",
            # Ours, not Lambda's: it expires and follows removal_policy (a retained guard log
            # under `destroy` would be the one thing `cdk destroy` leaves).
            log_group=owned_log_group(self, "Logs", days=log_retention_days, removal_policy=removal_policy),
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            log_group=owned_log_group(
                self, "ProviderLogs", days=log_retention_days, removal_policy=removal_policy
            ),
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::KarpenterTeardownGuard",
            properties={
                "ClusterName": cluster_name,
                "SubnetIds": [subnet.subnet_id for subnet in subnets],
                "NodeRoleName": node_role.role_name,
                # Only with removal_policy: destroy; retained data keeps its volumes.
                "VolumeTagKey": VOLUME_CLUSTER_TAG_KEY if delete_volumes else "",
            },
            # The handler gives up after ~13 minutes and its provider Lambda after 15: past
            # that CloudFormation fails the operation instead of waiting its default hour.
            service_timeout=CUSTOM_RESOURCE_SERVICE_TIMEOUT,
        )
        # Policies must outlive the Delete call that uses them.
        self.resource.node.add_dependency(self.role)
        _acknowledge_service_resources(self.role, stack)


def _acknowledge_service_resources(role: iam.Role, stack: Stack) -> None:
    """cdk-nag: the load balancer statements' wildcards (stacks/karpenter_nag.py acknowledges
    the rest of this policy's)."""
    region = stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    policy = role.node.find_child("DefaultPolicy")
    for resource in (
        f"arn:<AWS::Partition>:elasticloadbalancing:{region}:{account}:loadbalancer/*",
        f"arn:<AWS::Partition>:elasticloadbalancing:{region}:{account}:targetgroup/*",
        f"arn:<AWS::Partition>:ec2:{region}:{account}:security-group/*",
    ):
        acknowledge(
            policy,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]",
            "Teardown guard deletes load balancers, target groups and security groups that EKS's "
            "service controller made for LoadBalancer Services, with ids it learns only at delete "
            "time; every delete/revoke requires the controller's kubernetes.io/cluster/<cluster>="
            "owned tag (and kubernetes.io/service-name on load balancers and target groups).",
        )


def guard_statements(*, stack: Stack, cluster_name: str, delete_volumes: bool) -> list[iam.PolicyStatement]:
    partition, region, account = stack.partition, stack.region, stack.account
    ec2_arn = f"arn:{partition}:ec2:{region}:{account}"

    def tag(key: str) -> str:
        return f"aws:ResourceTag/{key.format(cluster=cluster_name)}"

    owned = {tag(CLUSTER_OWNED_TAG_KEY): CLUSTER_OWNED_TAG_VALUE}
    eks_named = {tag(EKS_CLUSTER_NAME_TAG_KEY): cluster_name}
    karpenter_made = {tag(NODEPOOL_TAG_KEY): "*"}
    profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    elb_arn = f"arn:{partition}:elasticloadbalancing:{region}:{account}"
    service_owned = {tag(SERVICE_CLUSTER_TAG_KEY): SERVICE_OWNED_VALUE}
    service_made = {tag(SERVICE_NAME_TAG_KEY): "*"}
    volume_statements = (
        [
            iam.PolicyStatement(
                sid="DeleteClusterVolumes",
                actions=["ec2:DeleteVolume"],
                resources=[f"{ec2_arn}:volume/*"],
                conditions={"StringEquals": {tag(VOLUME_CLUSTER_TAG_KEY): cluster_name}},
            ),
            iam.PolicyStatement(
                sid="DeleteKarpenterNodeVolumes",
                actions=["ec2:DeleteVolume"],
                resources=[f"{ec2_arn}:volume/*"],
                conditions={"StringEquals": eks_named, "StringLike": karpenter_made},
            ),
        ]
        if delete_volumes
        else []
    )
    return [
        # Describe calls have no resource-level permissions; the region condition is the
        # narrowest scope EC2 offers for them.
        iam.PolicyStatement(
            sid="ListCandidates",
            actions=[
                "ec2:DescribeInstances",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribeNetworkInterfaces",
                *(["ec2:DescribeVolumes"] if delete_volumes else []),
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="TerminateClusterNodes",
            actions=["ec2:TerminateInstances"],
            resources=[f"{ec2_arn}:instance/*"],
            conditions={"StringEquals": owned, "StringLike": karpenter_made},
        ),
        iam.PolicyStatement(
            sid="TerminateClusterNodesByEksTag",
            actions=["ec2:TerminateInstances"],
            resources=[f"{ec2_arn}:instance/*"],
            conditions={"StringEquals": eks_named, "StringLike": karpenter_made},
        ),
        iam.PolicyStatement(
            sid="DeleteClusterLaunchTemplates",
            actions=["ec2:DeleteLaunchTemplate"],
            resources=[f"{ec2_arn}:launch-template/*"],
            # EKS managed node group templates carry no EC2NodeClass tag.
            conditions={"StringEquals": eks_named, "StringLike": {tag(NODECLASS_TAG_KEY): "*"}},
        ),
        iam.PolicyStatement(
            sid="DeleteClusterEnis",
            actions=["ec2:DeleteNetworkInterface"],
            resources=[f"{ec2_arn}:network-interface/*"],
            conditions={"StringEquals": owned},
        ),
        iam.PolicyStatement(
            sid="DeleteClusterCniEnis",
            actions=["ec2:DeleteNetworkInterface"],
            resources=[f"{ec2_arn}:network-interface/*"],
            conditions={"StringEquals": {tag(VPC_CNI_CLUSTER_TAG_KEY): cluster_name}},
        ),
        iam.PolicyStatement(
            sid="ReadInstanceProfiles",
            actions=["iam:ListInstanceProfiles", "iam:GetInstanceProfile"],
            resources=[profiles],
        ),
        iam.PolicyStatement(
            sid="DeleteClusterInstanceProfiles",
            actions=["iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[profiles],
            conditions={"StringEquals": owned},
        ),
        *volume_statements,
        # Load balancers of LoadBalancer Services (cloud-provider-aws's service controller).
        # ELB and these EC2 Describe calls have no resource-level permissions either.
        iam.PolicyStatement(
            sid="ListServiceLoadBalancers",
            actions=[
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTags",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="DeleteServiceLoadBalancers",
            # One action for both: ELBv2 (loadbalancer/net/...) and Classic (loadbalancer/<name>).
            actions=["elasticloadbalancing:DeleteLoadBalancer"],
            resources=[f"{elb_arn}:loadbalancer/*"],
            conditions={"StringEquals": service_owned, "StringLike": service_made},
        ),
        iam.PolicyStatement(
            sid="DeleteServiceTargetGroups",
            actions=["elasticloadbalancing:DeleteTargetGroup"],
            resources=[f"{elb_arn}:targetgroup/*"],
            conditions={"StringEquals": service_owned, "StringLike": service_made},
        ),
        iam.PolicyStatement(
            sid="DeleteServiceSecurityGroups",
            # Revoke: rules of the cluster's own (owned-tagged) groups that name a doomed one.
            actions=[
                "ec2:DeleteSecurityGroup",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            resources=[f"{ec2_arn}:security-group/*"],
            conditions={"StringEquals": service_owned},
        ),
    ]
