"""Where graph images come from (NGC or our ECR) and how our own images are built.

`plan.images.image_uri` is the one place that turns an image name into the URI a pod pulls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field, PrivateAttr

from config import versions
from config.base import StrictModel
from config.names import BUILD_FRAMEWORKS

if TYPE_CHECKING:
    from config.registry import RegistryConfig


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


@dataclass(frozen=True)
class SharedRegistry:
    """A pipeline's images: built once in its tooling account, pulled by digest everywhere.

    Set by `config.environments.environment_configs` on every environment of a pipeline that
    uses ECR images (never by hand: it is not a config key). `digests` maps "<image>:<tag>"
    to the digest recorded in `digests_file` by `python -m image_build` after a build.
    """

    account: str
    region: str
    # Repositories are <repository_prefix>/<image>, in the tooling account's Images stack.
    repository_prefix: str
    digests: dict[str, str]
    digests_file: str
    config_path: str
    # Settings of the tooling account's Images stack (the pipeline file's top level).
    build: ImageBuildConfig
    registry: RegistryConfig
    pull_accounts: tuple[str, ...] = field(default=())

    @property
    def registry_host(self) -> str:
        return ecr_registry(self.account, self.region)

    @property
    def location(self) -> str:
        """<registry host>/<prefix>: what a digest file records, so digests of another
        registry are never used."""
        return f"{self.registry_host}/{self.repository_prefix}"


class ImagesConfig(StrictModel):
    # ngc: NVIDIA's published images; ecr: the images `python -m image_build start` pushed
    # to this environment's repositories (same names, same tags), or, in a pipeline, to the
    # tooling account's repositories (pulled by digest).
    source: Literal["ngc", "ecr"] = Field(
        "ngc",
        description="ngc: NVIDIA's images; ecr: images built into ECR (in a pipeline: once, in the tooling account).",
    )
    build: ImageBuildConfig = Field(
        ImageBuildConfig(), description="CodeBuild project that builds Dynamo runtime images."
    )
    # Not a config key: set by the pipeline (see SharedRegistry).
    _shared: SharedRegistry | None = PrivateAttr(default=None)

    @property
    def shared(self) -> SharedRegistry | None:
        return self._shared

    def with_shared(self, shared: SharedRegistry) -> ImagesConfig:
        copy = self.model_copy()
        copy._shared = shared
        return copy


# Images our CodeBuild project produces; the others always come from NGC (see image_uri).
BUILT_IMAGES = frozenset(BUILD_FRAMEWORKS.values())


def framework_of(image: str) -> str:
    """The build framework (vllm, sglang, trtllm) that produces a built image."""
    (framework,) = [fw for fw, built in BUILD_FRAMEWORKS.items() if built == image]
    return framework


def image_tag(*, efa: bool = False) -> str:
    """Release tag of Dynamo images: the pinned version, with upstream's -efa suffix."""
    return f"{versions.DYNAMO}-efa" if efa else versions.DYNAMO


def ecr_registry(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


# -- Docker Hub through an ECR pull-through cache ------------------------------------------
# The image build pulls BuildKit and upstream's Docker Hub base images (vllm/vllm-openai,
# lmsysorg/sglang, ...) through a pull-through cache rule of its registry, authenticated
# with a Docker Hub access token, instead of anonymously from CodeBuild's shared egress
# (rate-limited per IP). Values ECR requires, from the ECR API and user guide:
# - upstream URL for Docker Hub: "registry-1.docker.io"
#   (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html);
# - the credential secret's name "begins with ecr-pullthroughcache/", in the rule's account
#   and region (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-rule.html);
#   CloudFormation's CredentialArn pattern enforces it (AWS::ECR::PullThroughCacheRule);
# - the rule's repository prefix: 2-30 characters (same API reference).
DOCKER_HUB_UPSTREAM_URL = "registry-1.docker.io"
PULL_THROUGH_CACHE_SECRET_PREFIX = "ecr-pullthroughcache/"
_PULL_THROUGH_PREFIX_MAX = 30
# BuildKit for `docker buildx create --driver docker-container`, pinned instead of buildx's
# moving default (moby/buildkit:buildx-stable-1); v0.31.2 is the release moby/moby vendors
# (moby/moby#53087). A mirror with a path (<registry>/<prefix>) needs BuildKit >= 0.11
# (moby/buildkit#3427).
BUILDKIT_IMAGE = "moby/buildkit"
BUILDKIT_VERSION = "v0.31.2"


def docker_hub_cache_prefix(name: str) -> str:
    """Repository prefix of the Docker Hub pull-through cache rule of the registry `name`
    (a cluster name, or a pipeline's name): unique per name, at most 30 characters."""
    prefix = f"{name}-docker-hub"
    if len(prefix) <= _PULL_THROUGH_PREFIX_MAX:
        return prefix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:10].rstrip('-')}-{digest}-docker-hub"


def docker_hub_secret_name(name: str) -> str:
    """Secrets Manager name of the Docker Hub credentials of that rule ({"username",
    "accessToken"}; set by the user, never by CDK)."""
    return f"{PULL_THROUGH_CACHE_SECRET_PREFIX}{docker_hub_cache_prefix(name)}"


def images_stack_name(pipeline_name: str) -> str:
    """The tooling account's stack holding a pipeline's image repositories and build."""
    from config.names import stack_id

    return stack_id(pipeline_name, "images")
