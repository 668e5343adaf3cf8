"""Every cdk-nag finding we accept, each with the reason a security reviewer would need.

Acknowledgements are attached to the narrowest construct that produces the finding and name
the exact finding (policy ARN or resource) where cdk-nag reports one, so a new finding on
the same construct still fails synth.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

_MANAGED = "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{}]"

NODE_ROLE_POLICIES = {
    "AmazonEKSWorkerNodePolicy": "Required by every EKS worker node to join the cluster; "
    "AWS maintains it as EKS adds node APIs.",
    "AmazonEKS_CNI_Policy": "The VPC CNI assigns pod IPs through ENI APIs; this is the "
    "policy EKS documents for it and the one upstream Karpenter attaches to node roles.",
    "AmazonEC2ContainerRegistryPullOnly": "Nodes pull images from ECR; pull-only is the "
    "narrowest AWS policy for that (no push, no delete).",
    "AmazonSSMManagedInstanceCore": "Session Manager replaces SSH (no key pairs, no open "
    "port 22); this is the minimal policy for the SSM agent.",
}


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def acknowledge_node_role(role: IConstruct) -> None:
    for policy, reason in NODE_ROLE_POLICIES.items():
        acknowledge(role, _MANAGED.format(policy), reason)


def acknowledge_aws_managed(scope: IConstruct, policy: str, reason: str) -> None:
    acknowledge(scope, _MANAGED.format(policy), reason)


def logical_id(element: IConstruct | None) -> str:
    """The resolved logical ID of a CloudFormation element, as cdk-nag names it in findings.

    Takes what `node.default_child` and `node.find_child` return (typed as a plain construct).
    """
    if not isinstance(element, CfnElement):
        raise TypeError(f"not a CloudFormation element: {element.node.path if element else None}")
    return str(Stack.of(element).resolve(element.logical_id))


def acknowledge_kubectl_provider(cluster: IConstruct) -> None:
    """Findings on the kubectl provider that aws-cdk-lib creates for eks_v2 clusters."""
    provider = cluster.node.find_child("KubectlProvider")
    handler = provider.node.find_child("Handler")
    framework = provider.node.find_child("Provider").node.find_child("framework-onEvent")
    execution = {
        "service-role/AWSLambdaBasicExecutionRole": "CDK-managed kubectl provider: writes "
        "its own CloudWatch logs and nothing else.",
        "service-role/AWSLambdaVPCAccessExecutionRole": "CDK-managed kubectl provider runs "
        "in the cluster's private subnets to reach the private API endpoint; this policy "
        "only manages its ENIs.",
    }
    for role in (handler, framework):
        for policy, reason in execution.items():
            acknowledge_aws_managed(role.node.find_child("ServiceRole"), policy, reason)
    acknowledge_aws_managed(
        handler.node.find_child("ServiceRole"),
        "AmazonEC2ContainerRegistryReadOnly",
        "The kubectl provider pulls Helm charts stored as OCI artifacts in ECR "
        "(e.g. Karpenter's); read-only, no push.",
    )
    ecr_public_policy_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly",
            ],
        ]
    }
    # cdk-nag names the conditional policy by its compact JSON.
    public_policy = json.dumps(
        {
            "Fn::If": [
                logical_id(handler.node.find_child("HasEcrPublic")),
                ecr_public_policy_arn,
                {"Ref": "AWS::NoValue"},
            ]
        },
        separators=(",", ":"),
    )
    acknowledge(
        handler.node.find_child("ServiceRole"),
        f"AwsSolutions::AwsSolutions-IAM4[Policy::{public_policy}]",
        "Only in regions with ECR Public: lets the kubectl provider pull public OCI Helm "
        "charts (Karpenter is published to public.ecr.aws); read-only.",
    )
    handler_arn = logical_id(handler.node.find_child("Resource"))
    acknowledge(
        framework,
        f"AwsSolutions::AwsSolutions-IAM5[Resource::<{handler_arn}.Arn>:*]",
        "CDK's provider framework may invoke only the kubectl handler function (any version "
        "of that one ARN); no other resource is reachable.",
    )
    acknowledge(
        handler,
        "AwsSolutions::AwsSolutions-L1",
        "The kubectl handler's runtime is chosen by aws-cdk-lib to match the kubectl layer; "
        "it moves with aws-cdk-lib, which is pinned and updated with the project.",
    )
