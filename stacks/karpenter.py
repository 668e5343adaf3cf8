"""Karpenter controller: node role, controller IAM, interruption queue and rules, Pod Identity,
and the Helm release on the system nodes.

IAM, queue and rules re-express upstream's getting-started CloudFormation for v1.14
(website/content/en/v1.14/getting-started/.../cloudformation.yaml): same actions, resources
and tag conditions, so a Karpenter upgrade can be reviewed against that file statement by
statement. Upstream's statement ids are kept for the same reason.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

from config import versions
from config.names import (
    CRITICAL_ADDONS_TAINT,
    KARPENTER_NAMESPACE,
    KARPENTER_RELEASE,
    KARPENTER_SERVICE_ACCOUNT,
    NODE_ROLE_MANAGED_POLICIES,
    SYSTEM_NODE_LABEL,
    interruption_queue_name,
    karpenter_node_role_name,
)
from stacks.eks_addons import pod_identity_association, pod_identity_role

# EventBridge rules feeding the interruption queue: (construct id, source, detail-type).
INTERRUPTION_RULES = (
    ("ScheduledChangeRule", "aws.health", "AWS Health Event"),
    ("SpotInterruptionRule", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("RebalanceRule", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("InstanceStateChangeRule", "aws.ec2", "EC2 Instance State-change Notification"),
    (
        "CapacityReservationInterruptionRule",
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
    ),
)


def helm_values(*, cluster_name: str, region: str) -> dict:
    """Chart values; every key exists in the chart's values.yaml (tests check this)."""
    return {
        "fullnameOverride": KARPENTER_RELEASE,
        "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": interruption_queue_name(cluster_name),
        },
        # The controller must never run on nodes it manages: system node group only.
        "nodeSelector": {"kubernetes.io/os": "linux", SYSTEM_NODE_LABEL[0]: SYSTEM_NODE_LABEL[1]},
        "tolerations": [{"key": CRITICAL_ADDONS_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "controller": {
            # System nodes limit IMDS to one hop, so the pod cannot ask IMDS for its region.
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"memory": "1Gi"},
            },
        },
    }


class KarpenterController(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        runs_after: list[IDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.node_role = iam.Role(
            self,
            "NodeRole",
            role_name=karpenter_node_role_name(cluster_name),
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_ROLE_MANAGED_POLICIES
            ],
        )
        # Nodes join through an access entry (API authentication mode, no aws-auth map).
        self.node_access = eks.AccessEntry(
            self,
            "NodeAccess",
            cluster=cluster,
            principal=self.node_role.role_arn,
            access_entry_type=eks.AccessEntryType.EC2_LINUX,
            access_policies=[],
        )

        self.queue = sqs.Queue(
            self,
            "InterruptionQueue",
            queue_name=interruption_queue_name(cluster_name),
            retention_period=Duration.seconds(300),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.rules = [
            events.Rule(
                self,
                rule_id,
                event_pattern=events.EventPattern(source=[source], detail_type=[detail_type]),
                targets=[targets.SqsQueue(self.queue)],
            )
            for rule_id, source, detail_type in INTERRUPTION_RULES
        ]

        self.controller_role = pod_identity_role(self, "ControllerRole")
        self.controller_policies = [
            iam.ManagedPolicy(self, name, document=document, roles=[self.controller_role])
            for name, document in controller_policy_documents(
                stack=stack,
                cluster_name=cluster_name,
                cluster_arn=cluster.cluster_arn,
                node_role_arn=self.node_role.role_arn,
                queue_arn=self.queue.queue_arn,
            ).items()
        ]
        self.pod_identity = pod_identity_association(
            self,
            cluster,
            namespace=KARPENTER_NAMESPACE,
            service_account=KARPENTER_SERVICE_ACCOUNT,
            role=self.controller_role,
        )

        # CRDs in their own release so that a Karpenter upgrade also upgrades them (Helm
        # never updates a chart's crds/ folder after the first install).
        self.crds = eks.HelmChart(
            self,
            "Crds",
            cluster=cluster,
            chart="karpenter-crd",
            repository=versions.KARPENTER_CRD_CHART_REPO,
            version=versions.KARPENTER,
            release=f"{KARPENTER_RELEASE}-crd",
            namespace=KARPENTER_NAMESPACE,
            wait=True,
        )
        self.release = eks.HelmChart(
            self,
            "Release",
            cluster=cluster,
            chart="karpenter",
            repository=versions.KARPENTER_CHART_REPO,
            version=versions.KARPENTER,
            release=KARPENTER_RELEASE,
            namespace=KARPENTER_NAMESPACE,
            values=helm_values(cluster_name=cluster_name, region=stack.region),
            skip_crds=True,
            wait=True,
            timeout=Duration.minutes(10),
        )
        # The controller starts with its credentials, queue and node access in place, and on
        # delete it outlives nothing it needs.
        for dependency in (
            self.crds,
            self.pod_identity,
            self.controller_role,
            *self.controller_policies,
            self.node_access,
            self.queue,
            *self.rules,
            *runs_after,
        ):
            self.release.node.add_dependency(dependency)

    @property
    def deletion_dependencies(self) -> list[IDependable]:
        """What a NodePool needs until its nodes are gone."""
        return [
            self.release,
            self.pod_identity,
            self.controller_role,
            *self.controller_policies,
            self.node_access,
            self.node_role,
            self.queue,
        ]


def controller_policy_documents(
    *, stack: Stack, cluster_name: str, cluster_arn: str, node_role_arn: str, queue_arn: str
) -> dict[str, iam.PolicyDocument]:
    partition, region, account = stack.partition, stack.region, stack.account
    ec2 = f"arn:{partition}:ec2:{region}"
    profile = f"arn:{partition}:iam::{account}:instance-profile/*"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    tagged_resources = [
        f"{ec2}:*:{kind}/*"
        for kind in (
            "fleet",
            "instance",
            "volume",
            "network-interface",
            "launch-template",
            "spot-instances-request",
        )
    ]

    def statement(sid: str, actions: list[str], resources: list[str], conditions=None):
        return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)

    node_lifecycle = [
        statement(
            "AllowScopedEC2InstanceAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
                f"{ec2}:*:placement-group/*",
            ],
        ),
        statement(
            "AllowScopedEC2LaunchTemplateAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [f"{ec2}:*:launch-template/*"],
            {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
        statement(
            "AllowScopedEC2InstanceActionsWithTags",
            ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            tagged_resources,
            {
                "StringEquals": {
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        statement(
            "AllowScopedResourceCreationTagging",
            ["ec2:CreateTags"],
            tagged_resources,
            {
                "StringEquals": {
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        statement(
            "AllowScopedResourceTagging",
            ["ec2:CreateTags"],
            [f"{ec2}:*:instance/*"],
            {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        ),
        statement(
            "AllowScopedDeletion",
            ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
    ]
    iam_integration = [
        statement(
            "AllowPassingInstanceRole",
            ["iam:PassRole"],
            [node_role_arn],
            {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        statement(
            "AllowScopedInstanceProfileCreationActions",
            ["iam:CreateInstanceProfile"],
            [profile],
            {
                "StringEquals": {
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        statement(
            "AllowScopedInstanceProfileTagActions",
            ["iam:TagInstanceProfile"],
            [profile],
            {
                "StringEquals": {
                    f"aws:ResourceTag/{owned}": "owned",
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        ),
        statement(
            "AllowScopedInstanceProfileActions",
            [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            [profile],
            {
                "StringEquals": {
                    f"aws:ResourceTag/{owned}": "owned",
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
    ]
    eks_integration = [
        statement("AllowAPIServerEndpointDiscovery", ["eks:DescribeCluster"], [cluster_arn]),
    ]
    interruption = [
        statement(
            "AllowInterruptionQueueActions",
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            [queue_arn],
        ),
    ]
    zonal_shift = [
        statement(
            "AllowZonalShiftStatusReadOnly",
            ["arc-zonal-shift:GetManagedResource"],
            ["*"],
            {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
        ),
    ]
    resource_discovery = [
        statement(
            "AllowRegionalReadActions",
            [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
        statement(
            "AllowSSMReadActions",
            ["ssm:GetParameter"],
            [f"arn:{partition}:ssm:{region}::parameter/aws/service/*"],
        ),
        statement("AllowPricingReadActions", ["pricing:GetProducts"], ["*"]),
        statement("AllowUnscopedInstanceProfileListAction", ["iam:ListInstanceProfiles"], ["*"]),
        statement("AllowInstanceProfileReadActions", ["iam:GetInstanceProfile"], [profile]),
    ]
    return {
        name: iam.PolicyDocument(statements=statements)
        for name, statements in {
            "NodeLifecyclePolicy": node_lifecycle,
            "IAMIntegrationPolicy": iam_integration,
            "EKSIntegrationPolicy": eks_integration,
            "InterruptionPolicy": interruption,
            "ZonalShiftPolicy": zonal_shift,
            "ResourceDiscoveryPolicy": resource_discovery,
        }.items()
    }
