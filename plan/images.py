"""The URI a pod pulls for an image of this deployment."""

from __future__ import annotations

from config import versions
from config.images import BUILT_IMAGES, SharedRegistry, ecr_registry, framework_of, image_tag
from config.loader import ConfigError
from config.names import ecr_repository_name
from config.schema import DeploymentConfig


def image_uri(cfg: DeploymentConfig, image_name: str, *, account: str, efa: bool = False) -> str:
    """The URI a pod pulls for `image_name` (e.g. 'vllm-runtime') in this deployment.

    With `images.source: ecr`, images our build produces resolve to this environment's
    repository in `account` (nodes pull it with their AmazonEC2ContainerRegistryPullOnly
    policy), or, in a pipeline, to the tooling account's repository by the digest recorded
    in the pipeline's digest file (the repository policy lets each stage's account pull).
    Images the build does not produce (dynamo-frontend needs upstream's EPP build;
    dynamo-planner) stay on NGC, so a graph never points at a repository nobody pushes to.
    `account` is the config's, or the deploying stack's (a CloudFormation token) without one.
    """
    tag = image_tag(efa=efa)
    if cfg.images.source == "ngc" or image_name not in BUILT_IMAGES:
        return f"{versions.DYNAMO_IMAGE_REGISTRY}/{image_name}:{tag}"
    shared = cfg.images.shared
    if shared is not None:
        return pinned_uri(shared, image_name, tag=tag, efa=efa, environment=cfg.environment)
    repository = ecr_repository_name(cfg.cluster.name, image_name)
    return f"{ecr_registry(account, cfg.region)}/{repository}:{tag}"


def pinned_uri(shared: SharedRegistry, image_name: str, *, tag: str, efa: bool, environment: str) -> str:
    key = f"{image_name}:{tag}"
    digest = shared.digests.get(key)
    if digest is None:
        build = f"python -m image_build start --config {shared.config_path} --framework {framework_of(image_name)}"
        raise ConfigError(
            [
                f"{shared.digests_file}: images.{key}: no digest recorded, and graphs of "
                f"environment '{environment}' need it; build it once with tooling-account "
                f"credentials (`{build}{' --efa' if efa else ''} --wait` records it here) and "
                "commit the file"
            ]
        )
    return f"{shared.location}/{image_name}@{digest}"
