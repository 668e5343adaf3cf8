"""Device plugins that turn Karpenter GPU/EFA nodes into schedulable `nvidia.com/gpu` and
`vpc.amazonaws.com/efa` capacity.

Exactly one NVIDIA device plugin: installed here on AL2023, skipped on Bottlerocket whose
NVIDIA variants ship it in the AMI. The EFA plugin is installed only if an EFA pool exists.
Both select nodes by the labels our NodePools set, not by node-feature-discovery labels
(which nothing in this cluster would add).
"""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from config import versions
from config.karpenter import KarpenterConfig
from config.names import EFA_LABEL, GPU_MODEL_LABEL, GPU_TAINT_KEY, KARPENTER_NAMESPACE

GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def nvidia_values() -> dict:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_MODEL_LABEL, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "tolerations": [GPU_TOLERATION],
    }


def efa_values() -> dict:
    return {"nodeSelector": {EFA_LABEL: "true"}, "tolerations": [GPU_TOLERATION]}


class GpuEnablement(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        karpenter: KarpenterConfig,
        runs_after: list[IDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        self.charts: list[eks.HelmChart] = []
        if karpenter.nvidia_device_plugin:
            self.charts.append(
                eks.HelmChart(
                    self,
                    "NvidiaDevicePlugin",
                    cluster=cluster,
                    chart="nvidia-device-plugin",
                    repository=versions.NVIDIA_DEVICE_PLUGIN_CHART_REPO,
                    version=versions.NVIDIA_DEVICE_PLUGIN,
                    release="nvidia-device-plugin",
                    namespace=KARPENTER_NAMESPACE,
                    values=nvidia_values(),
                )
            )
        if karpenter.has_efa_pool:
            self.charts.append(
                eks.HelmChart(
                    self,
                    "EfaDevicePlugin",
                    cluster=cluster,
                    chart="aws-efa-k8s-device-plugin",
                    repository=versions.EKS_CHARTS_REPO,
                    version=versions.EFA_DEVICE_PLUGIN,
                    release="aws-efa-k8s-device-plugin",
                    namespace=KARPENTER_NAMESPACE,
                    values=efa_values(),
                )
            )
        for chart in self.charts:
            for dependency in runs_after:
                chart.node.add_dependency(dependency)
