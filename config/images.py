"""Where graph images come from (NGC or our ECR) and how our own images are built.

`plan.images.image_uri` is the one place that turns an image name into the URI a pod pulls.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config import versions
from config.base import StrictModel
from config.names import BUILD_FRAMEWORKS


class ImageBuildConfig(StrictModel):
    # Upstream builds Rust wheels, UCX and NIXL from source and pulls multi-GB base images,
    # so nothing smaller than large is offered. large: 8 vCPU / 15 GB / 128 GB disk; 2xlarge: 72 vCPU / 145 GB / 824 GB (faster, dearer).
    compute: Literal["large", "xlarge", "2xlarge"] = Field(
        "large", description="CodeBuild compute size for image builds (large = 8 vCPU, 15 GB)."
    )
    # CodeBuild stops a build after this long; 2160 minutes (36 hours) is CodeBuild's own
    # maximum build timeout (TimeoutInMinutes 5-2160).
    timeout_minutes: int = Field(
        default=240,
        ge=30,
        le=2160,
        description="CodeBuild stops a build after this long (30 to 2160, CodeBuild's maximum).",
    )
    log_retention_days: int = Field(default=30, ge=1, le=3653, description="Days to keep image build logs.")


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
