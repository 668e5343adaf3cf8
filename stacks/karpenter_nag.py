"""cdk-nag acknowledgements for Karpenter, its node role and the teardown guard.

Each names the exact wildcard resource cdk-nag reports, so a new wildcard still fails synth.
The controller's wildcards are upstream Karpenter's (v1.14 getting-started CloudFormation):
EC2 ids of instances, fleets and launch templates do not exist before Karpenter creates
them, so upstream scopes those statements by tag conditions instead of ids.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from constructs import IConstruct

from stacks.nag_acknowledgements import acknowledge, acknowledge_aws_managed, acknowledge_node_role

_IAM5 = "AwsSolutions::AwsSolutions-IAM5[Resource::{}]"

_LAUNCH_INPUTS = (
    "Launch inputs Karpenter picks at run time (AMI, snapshot, security group, subnet, "
    "capacity reservation, placement group), as in upstream Karpenter's policy; RunInstances/"
    "CreateFleet can only create resources through the tag-conditioned statements."
)
_TAG_SCOPED = (
    "Upstream Karpenter statement: resource ids are created at run time, so RunInstances, "
    "CreateFleet, CreateLaunchTemplate, CreateTags, TerminateInstances and DeleteLaunchTemplate "
    "are conditioned on the kubernetes.io/cluster/<cluster>=owned and karpenter.sh/nodepool tags."
)
_PROFILES = (
    "Karpenter creates one instance profile per EC2NodeClass with generated names; create, "
    "tag, role and delete actions require the kubernetes.io/cluster/<cluster>=owned and "
    "karpenter.k8s.aws/ec2nodeclass tags (upstream policy); GetInstanceProfile is read-only."
)


def _arn_parts(stack: Stack) -> tuple[str, str]:
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return stack.region, account


def acknowledge_karpenter(controller, guard) -> None:
    stack = Stack.of(controller)
    region, account = _arn_parts(stack)
    ec2 = f"arn:<AWS::Partition>:ec2:{region}"
    profiles = f"arn:<AWS::Partition>:iam::{account}:instance-profile/*"
    policies = {p.node.id: p for p in controller.controller_policies}

    acknowledge_node_role(controller.node_role)
    lifecycle = policies["NodeLifecyclePolicy"]
    for kind in ("image", "snapshot"):
        acknowledge(lifecycle, _IAM5.format(f"{ec2}::{kind}/*"), _LAUNCH_INPUTS)
    for kind in ("security-group", "subnet", "capacity-reservation", "placement-group"):
        acknowledge(lifecycle, _IAM5.format(f"{ec2}:*:{kind}/*"), _LAUNCH_INPUTS)
    for kind in (
        "launch-template",
        "fleet",
        "instance",
        "volume",
        "network-interface",
        "spot-instances-request",
    ):
        acknowledge(lifecycle, _IAM5.format(f"{ec2}:*:{kind}/*"), _TAG_SCOPED)
    acknowledge(policies["IAMIntegrationPolicy"], _IAM5.format(profiles), _PROFILES)
    discovery = policies["ResourceDiscoveryPolicy"]
    acknowledge(discovery, _IAM5.format(profiles), _PROFILES)
    acknowledge(
        discovery,
        _IAM5.format("*"),
        "Upstream Karpenter read-only discovery: EC2 Describe* (no resource-level permissions; "
        "limited to this region by aws:RequestedRegion), pricing:GetProducts and "
        "iam:ListInstanceProfiles, which support no resource scoping.",
    )
    acknowledge(
        discovery,
        _IAM5.format(f"arn:<AWS::Partition>:ssm:{region}::parameter/aws/service/*"),
        "Read-only lookup of AWS-published public parameters (EKS AMI ids) under "
        "/aws/service/; no account parameters are reachable.",
    )
    acknowledge(
        policies["ZonalShiftPolicy"],
        _IAM5.format("*"),
        "arc-zonal-shift:GetManagedResource has no resource ARN; upstream conditions it on "
        "arc-zonal-shift:ResourceIdentifier = this cluster's ARN.",
    )
    acknowledge(
        controller.queue,
        "AwsSolutions::AwsSolutions-SQS3",
        "Interruption events are only useful for minutes (300 s retention, as upstream); a "
        "dead-letter queue would keep stale spot/health notices nobody acts on.",
    )
    _acknowledge_guard(guard, region, account, profiles)


def _acknowledge_guard(guard, region: str, account: str, profiles: str) -> None:
    policy: IConstruct = guard.role.node.find_child("DefaultPolicy")
    ec2 = f"arn:<AWS::Partition>:ec2:{region}:{account}"
    kinds = ["instance", "launch-template", "network-interface"]
    for kind in kinds + (["volume"] if guard.delete_volumes else []):
        acknowledge(
            policy,
            _IAM5.format(f"{ec2}:{kind}/*"),
            "Teardown guard deletes leftovers whose ids it only learns at delete time; every "
            "delete/terminate statement requires this cluster's tag as Karpenter 1.14.1 applies "
            "it (kubernetes.io/cluster/<cluster>=owned or eks:eks-cluster-name=<cluster>, with "
            "karpenter.sh/nodepool on instances and volumes and karpenter.k8s.aws/ec2nodeclass "
            "on launch templates), the VPC CNI's cluster.k8s.amazonaws.com/name on ENIs, or "
            "dynamo-eks/cluster on EBS CSI volumes.",
        )
    acknowledge(
        policy,
        _IAM5.format(profiles),
        "Teardown guard lists instance profiles and their tags (read-only) and may remove/"
        "delete only profiles tagged kubernetes.io/cluster/<cluster>=owned.",
    )
    acknowledge(
        policy,
        _IAM5.format("*"),
        "EC2 Describe* calls have no resource-level permissions; limited to this region by "
        "aws:RequestedRegion and read-only.",
    )
    acknowledge_aws_managed(
        guard.role,
        "service-role/AWSLambdaBasicExecutionRole",
        "Teardown guard Lambda writes its own CloudWatch logs and nothing else.",
    )
    framework = guard.provider.node.find_child("framework-onEvent")
    acknowledge_aws_managed(
        framework.node.find_child("ServiceRole"),
        "service-role/AWSLambdaBasicExecutionRole",
        "CDK custom-resource provider framework: writes its own CloudWatch logs only.",
    )
    handler_arn = Stack.of(guard).resolve(guard.handler.node.find_child("Resource").logical_id)
    acknowledge(
        framework.node.find_child("ServiceRole").node.find_child("DefaultPolicy"),
        _IAM5.format(f"<{handler_arn}.Arn>:*"),
        "CDK's provider framework may invoke only the teardown guard handler (any version of "
        "that one function).",
    )
