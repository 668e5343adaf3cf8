"""Bound how long CloudFormation waits for the Kubernetes custom resources of aws_eks_v2.

KubernetesManifest, HelmChart, KubernetesPatch and KubernetesObjectValue run in the kubectl
provider's Lambda (15 minutes at most) behind a provider-framework Lambda (15 minutes). A
delete that outlives them (a NodePool whose nodes wait on Karpenter's finalizers and a long
termination grace period, a Helm uninstall stuck on a hook) gets no answer at all, and
CloudFormation then waits its default hour (ServiceTimeout 3600 s) before it fails the stack.
aws-cdk-lib 2.275 exposes `serviceTimeout` on `CustomResource` but not on these constructs, so
an aspect writes the same property (`ServiceTimeout`, seconds as a string, as CustomResource
renders it) on every one of them. After the bound the operation fails; a second
`cdk destroy` retries it, and the teardown guard sweeps whatever instances remain.
"""

from __future__ import annotations

import jsii
from aws_cdk import Aspects, CfnResource, IAspect
from constructs import IConstruct

from stacks.teardown_guard import CUSTOM_RESOURCE_SERVICE_TIMEOUT

EKS_CUSTOM_RESOURCE_TYPES = frozenset(
    {
        "Custom::AWSCDK-EKS-KubernetesResource",
        "Custom::AWSCDK-EKS-HelmChart",
        "Custom::AWSCDK-EKS-KubernetesPatch",
        "Custom::AWSCDK-EKS-KubernetesObjectValue",
    }
)


@jsii.implements(IAspect)
class BoundKubernetesCustomResources:
    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type in EKS_CUSTOM_RESOURCE_TYPES:
            node.add_property_override(
                "ServiceTimeout", str(int(CUSTOM_RESOURCE_SERVICE_TIMEOUT.to_seconds()))
            )


def bound_kubernetes_custom_resources(scope: IConstruct) -> None:
    Aspects.of(scope).add(BoundKubernetesCustomResources())
