"""The URI a pod pulls for an image of this deployment."""

from __future__ import annotations

from config import versions
from config.images import BUILT_IMAGES, ecr_registry, image_tag
from config.names import ecr_repository_name
from config.schema import DeploymentConfig


def image_uri(cfg: DeploymentConfig, image_name: str, *, account: str, efa: bool = False) -> str:
    """The URI a pod pulls for `image_name` (e.g. 'vllm-runtime') in this deployment.

    With `images.source: ecr`, images our build produces resolve to this environment's
    repository in `account` (nodes pull it with their AmazonEC2ContainerRegistryPullOnly
    policy). Images the build does not produce (dynamo-frontend needs upstream's EPP build;
    dynamo-planner) stay on NGC, so a graph never points at a repository nobody pushes to.
    `account` is the config's, or the deploying stack's (a CloudFormation token) without one.
    """
    tag = image_tag(efa=efa)
    if cfg.images.source == "ngc" or image_name not in BUILT_IMAGES:
        return f"{versions.DYNAMO_IMAGE_REGISTRY}/{image_name}:{tag}"
    repository = ecr_repository_name(cfg.cluster.name, image_name)
    return f"{ecr_registry(account, cfg.region)}/{repository}:{tag}"
