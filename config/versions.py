"""Every version this project deploys, in one place.

Bumping a version is a one-line change here; nothing else in the code base names a version.
Python/npm tooling versions are pinned in requirements*.txt and package.json instead.
"""

from __future__ import annotations

# Kubernetes: 1.36 by default. 1.35 is still in EKS standard support; 1.34 and older are
# in (or about to enter) extended support, which costs 6x per cluster-hour.
KUBERNETES_DEFAULT = "1.36"
KUBERNETES_SUPPORTED = ("1.35", "1.36")

# The kubectl/helm Lambda layer used by the CDK kubectl provider (kubectl 1.36, Helm 4).
KUBECTL_LAYER = "v36"

# EKS managed add-ons, pinned per Kubernetes minor version.
EKS_ADDONS: dict[str, dict[str, str]] = {
    "1.35": {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "coredns": "v1.13.1-eksbuild.1",
        "kube-proxy": "v1.35.0-eksbuild.2",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.1",
        "aws-efs-csi-driver": "v2.2.0-eksbuild.1",
    },
    "1.36": {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "coredns": "v1.13.1-eksbuild.1",
        "kube-proxy": "v1.36.0-eksbuild.1",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.1",
        "aws-efs-csi-driver": "v2.2.0-eksbuild.1",
    },
}

# Karpenter controller (Helm chart from OCI) and its CRDs (vendored in k8s_charts/crds/).
KARPENTER = "1.14.1"
KARPENTER_CHART_REPO = "oci://public.ecr.aws/karpenter/karpenter"

# NVIDIA Dynamo: platform chart and runtime images share the release number.
DYNAMO = "1.6.1"
