"""The Dynamo operator (and Grove + KAI when a graph is multinode), from the NGC Helm repo."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config import versions
from config.names import DYNAMO_PLATFORM_RELEASE, DYNAMO_SYSTEM_NAMESPACE
from k8s_charts.dynamo_platform_values import DynamoPlatformValues


class DynamoPlatform(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, cluster: eks.ICluster, values: DynamoPlatformValues
    ) -> None:
        super().__init__(scope, construct_id)
        self.values = values
        self.release = eks.HelmChart(
            self,
            "Release",
            cluster=cluster,
            chart="dynamo-platform",
            repository=versions.DYNAMO_PLATFORM_CHART_REPO,
            version=versions.DYNAMO,
            release=DYNAMO_PLATFORM_RELEASE,
            namespace=DYNAMO_SYSTEM_NAMESPACE,
            # The namespace, with its Pod Security labels, is the Platform stack's namespaces
            # chart (k8s_charts/platform_charts.py namespace_pod_security); the release waits
            # for it and is deleted before it.
            create_namespace=False,
            values=values.to_helm(),
            # The Inference stack applies DynamoGraphDeployments right after this stack:
            # the operator, its CRDs and its admission webhook must be serving by then.
            wait=True,
            timeout=Duration.minutes(15),
        )
