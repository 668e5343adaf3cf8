"""Names shared by stacks and charts (namespaces, tags, repositories): one owner per fact."""

from __future__ import annotations

# Images we may build ourselves (issue: image build). Upstream names, so a pull from NGC
# and a pull from our ECR differ only in the registry part.
ECR_IMAGES = (
    "vllm-runtime",
    "sglang-runtime",
    "tensorrtllm-runtime",
    "dynamo-frontend",
    "dynamo-planner",
)


def discovery_tag_key() -> str:
    """Tag Karpenter uses to find subnets and security groups for a cluster."""
    return "karpenter.sh/discovery"


def ecr_repository_name(cluster_name: str, image: str) -> str:
    return f"{cluster_name}/{image}"


def stack_id(environment: str, unit: str) -> str:
    return f"{environment}-{unit}"
