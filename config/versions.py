"""Every version this project deploys, in one place.

Bumping a version is a one-line change here; nothing else in the code base names a version.
Python/npm tooling versions are pinned in requirements*.txt and package.json instead.
"""

from __future__ import annotations

# EKS managed add-ons, pinned per Kubernetes minor version (newest builds seen for each
# minor in 2026-11; `make preflight` checks each against `describe-addon-versions`). A
# Kubernetes version is supported exactly when it has a row here: to add one, add its row.
# 1.34 and older are in (or about to enter) EKS extended support, 6x per cluster-hour.
EKS_ADDONS: dict[str, dict[str, str]] = {
    "1.35": {
        "vpc-cni": "v1.23.2-eksbuild.1",
        "coredns": "v1.14.6-eksbuild.4",
        "kube-proxy": "v1.35.3-eksbuild.29",
        "eks-pod-identity-agent": "v1.4.0-eksbuild.3",
        "aws-efs-csi-driver": "v3.4.2-eksbuild.1",
        "aws-ebs-csi-driver": "v1.59.0-eksbuild.1",
    },
    "1.36": {
        "vpc-cni": "v1.23.2-eksbuild.1",
        "coredns": "v1.14.7-eksbuild.11",
        "kube-proxy": "v1.36.0-eksbuild.45",
        "eks-pod-identity-agent": "v1.4.0-eksbuild.3",
        "aws-efs-csi-driver": "v3.4.2-eksbuild.1",
        "aws-ebs-csi-driver": "v1.59.0-eksbuild.1",
    },
}

KUBERNETES_SUPPORTED = tuple(sorted(EKS_ADDONS, key=lambda v: tuple(map(int, v.split(".")))))
KUBERNETES_DEFAULT = "1.36"

# The kubectl provider's Lambda layer ships kubectl 1.36 (and Helm 4): the
# `aws-cdk.lambda-layer-kubectl-v36` package pinned in requirements.txt and imported by
# stacks/cluster_stack.py. kubectl supports one minor of skew either way, so every supported
# Kubernetes version must be within one minor of it (tests/test_versions.py).
KUBECTL_LAYER_MINOR = 36

# Karpenter controller (Helm chart from OCI) and its CRDs (vendored in k8s_charts/crds/).
KARPENTER = "1.14.1"
KARPENTER_CHART_REPO = "oci://public.ecr.aws/karpenter/karpenter"
# CRDs as their own release: Helm installs a chart's crds/ only on first install, so upgrades
# of the NodePool/EC2NodeClass schemas need this chart (upstream's upgrade guide).
KARPENTER_CRD_CHART_REPO = "oci://public.ecr.aws/karpenter/karpenter-crd"

# Node AMIs for Karpenter EC2NodeClasses: dated releases, never @latest, so a node launched
# next month boots the image that was reviewed.
AMI_ALIAS_AL2023 = "al2023@v20261023"
AMI_ALIAS_BOTTLEROCKET = "bottlerocket@v1.67.0"

# NVIDIA Dynamo: platform chart and runtime images share the release number.
DYNAMO = "1.6.1"
DYNAMO_PLATFORM_CHART_REPO = "https://helm.ngc.nvidia.com/nvidia/ai-dynamo"
DYNAMO_IMAGE_REGISTRY = "nvcr.io/nvidia/ai-dynamo"

# Multinode orchestration (Grove, KAI scheduler) comes with the Dynamo platform chart, at
# the versions that chart release pins: nothing to pin here.

# GPU and EFA enablement.
NVIDIA_DEVICE_PLUGIN = "0.20.1"
NVIDIA_DEVICE_PLUGIN_CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
EFA_DEVICE_PLUGIN = "v0.5.32"
EKS_CHARTS_REPO = "https://aws.github.io/eks-charts"

# Secrets and observability (the vendored CRDs in k8s_charts/crds/ match these releases).
EXTERNAL_SECRETS = "2.9.0"
EXTERNAL_SECRETS_CHART_REPO = "https://charts.external-secrets.io"
KUBE_PROMETHEUS_STACK = "88.5.3"
PROMETHEUS_COMMUNITY_CHART_REPO = "https://prometheus-community.github.io/helm-charts"
DCGM_EXPORTER = "4.8.4"
DCGM_EXPORTER_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
# Logs and traces (platform.logs, platform.tracing). Our values are checked against each
# chart's values.yaml vendored at exactly this version (tests/data/upstream/README.md).
# aws-for-fluent-bit 0.2.0 ships AWS for Fluent Bit 3.2.1; its chart lives in EKS_CHARTS_REPO.
AWS_FOR_FLUENT_BIT = "0.2.0"
# Tempo single binary 2.10.8. The chart moved from grafana/helm-charts (deprecated there at
# 1.24.4) to grafana-community/helm-charts in 2026-02.
TEMPO = "2.2.4"
GRAFANA_COMMUNITY_CHART_REPO = "https://grafana-community.github.io/helm-charts"

# Dynamo image build (image_build/buildspec.yml): upstream source at tag v<DYNAMO>, rendered
# with container/render.py. Its CUDA choice per framework (1.6: trtllm needs 13.1).
DYNAMO_GIT_REPOSITORY = "https://github.com/ai-dynamo/dynamo.git"
DYNAMO_BUILD_CUDA = {"vllm": "13.0", "sglang": "13.0", "trtllm": "13.1"}
# render.py's own dependencies, installed in the CodeBuild container.
DYNAMO_RENDER_PIP = ("jinja2==3.1.6", "PyYAML==6.0.3")

# cdk-assets, which the pipeline's asset-publishing steps install with npm (the CDK CLI itself
# is pinned once, in package.json, and read from there).
CDK_ASSETS_CLI = "4.7.3"

# CodeBuild image for the Dynamo image build and the pipeline's synth/deploy steps (Ubuntu,
# Docker, Python 3 and Node).
CODEBUILD_IMAGE = "aws/codebuild/standard:7.0"

# Lambda runtime of our own functions (the teardown guard).
LAMBDA_PYTHON_RUNTIME = "python3.14"
