"""Where graph images come from (NGC or our ECR) and how our own images are built.

`image_uri` is the one place that turns an image name into the URI a pod pulls; graphs and
charts call it instead of formatting registries themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from config import versions
from config.base import StrictModel
from stacks.names import BUILD_FRAMEWORKS, ecr_repository_name

if TYPE_CHECKING:
    from config.schema import DeploymentConfig

class ImageBuildConfig(StrictModel):
    # Upstream builds Rust wheels, UCX and NIXL from source and pulls multi-GB base images,
    # so nothing smaller than large is offered. large: 8 vCPU / 15 GB / 128 GB disk; 2xlarge: 72 vCPU / 145 GB / 824 GB (faster, dearer).
    compute: Literal["large", "xlarge", "2xlarge"] = Field(
        "large", description="CodeBuild compute size for image builds (large = 8 vCPU, 15 GB)."
    )
    # CodeBuild stops a build after this long (its own maximum is 8 hours).
    timeout_minutes: int = Field(
        default=240, ge=30, le=480, description="CodeBuild stops a build after this long."
    )
    log_retention_days: int = Field(
        default=30, ge=1, le=3653, description="Days to keep image build logs."
    )


class ImagesConfig(StrictModel):
    # ngc: NVIDIA's published images; ecr: the images `python -m image_build start` pushed
    # to this environment's repositories (same names, same tags).
    source: Literal["ngc", "ecr"] = Field(
        "ngc", description="ngc: NVIDIA's images; ecr: images built into this environment's ECR."
    )
    build: ImageBuildConfig = Field(
        ImageBuildConfig(), description="CodeBuild project that builds Dynamo runtime images."
    )


# Images our CodeBuild project produces; the others always come from NGC (see image_uri).
BUILT_IMAGES = frozenset(BUILD_FRAMEWORKS.values())


def image_tag(*, efa: bool = False) -> str:
    """Release tag of Dynamo images: the pinned version, with upstream's -efa suffix."""
    return f"{versions.DYNAMO}-efa" if efa else versions.DYNAMO


def ecr_registry(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def image_uri(cfg: DeploymentConfig, image_name: str, *, efa: bool = False) -> str:
    """The URI a pod pulls for `image_name` (e.g. 'vllm-runtime') in this deployment.

    With `images.source: ecr`, images our build produces resolve to this environment's
    repository (nodes pull it with their AmazonEC2ContainerRegistryPullOnly policy). Images
    the build does not produce (dynamo-frontend needs upstream's EPP build; dynamo-planner)
    stay on NGC, so a graph never points at a repository nobody pushes to. With no
    `account` in the config, the account is the deploying stack's (a CloudFormation token).
    """
    tag = image_tag(efa=efa)
    if cfg.images.source == "ngc" or image_name not in BUILT_IMAGES:
        return f"{versions.DYNAMO_IMAGE_REGISTRY}/{image_name}:{tag}"
    account = cfg.account
    if account is None:
        from aws_cdk import Aws

        account = Aws.ACCOUNT_ID
    repository = ecr_repository_name(cfg.cluster.name, image_name)
    return f"{ecr_registry(account, cfg.region)}/{repository}:{tag}"
