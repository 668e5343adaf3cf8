"""A pipeline config's environments: each one's settings merged over the shared ones, and
validated as a standalone config, in pipeline order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.images import SharedRegistry, ecr_registry
from config.loader import ConfigError, describe_errors
from config.pipeline import PipelineEnvironment
from config.schema import DeploymentConfig


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def environment_configs(
    cfg: DeploymentConfig, path: str | Path
) -> list[tuple[PipelineEnvironment, DeploymentConfig]]:
    """Each pipeline environment's own validated config, in pipeline order.

    Raises ConfigError with one line per problem, naming the environment.
    """
    assert cfg.pipeline is not None
    path = Path(path)
    base = cfg.model_dump(exclude={"pipeline"}, exclude_unset=True)
    lines: list[str] = []
    result: list[tuple[PipelineEnvironment, DeploymentConfig]] = []
    seen: dict[str, int] = {}
    clusters: dict[tuple[str | None, str], int] = {}
    for index, settings in enumerate(cfg.pipeline.environments):
        where = f"pipeline.environments.{index} ({settings.overrides['environment']})"
        try:
            merged = DeploymentConfig.model_validate(deep_merge(base, settings.overrides))
        except ValidationError as err:
            lines.extend(
                f"{path}: {where}: {line.removeprefix(f'{path}: ')}" for line in describe_errors(path, err)
            )
            continue
        if merged.environment in seen:
            lines.append(
                f"{path}: {where}: environment '{merged.environment}' is already used by "
                f"pipeline.environments.{seen[merged.environment]}; stack names derive from "
                "it, so give each environment its own name"
            )
        seen.setdefault(merged.environment, index)
        # IAM role names, ECR repositories, the image-build project, the interruption queue
        # (and the cluster itself, per region) derive from cluster.name: unique per account.
        cluster_key = (merged.account, merged.cluster.name)
        if cluster_key in clusters:
            first = clusters[cluster_key]
            other = cfg.pipeline.environments[first].overrides["environment"]
            lines.append(
                f"{path}: {where}: cluster.name '{merged.cluster.name}' is already used by "
                f"pipeline.environments.{first} ({other}) in account {merged.account}; IAM role "
                "names, ECR repositories, the image-build project and the interruption queue "
                "derive from it, so set a distinct cluster.name in one of their overrides"
            )
        clusters.setdefault(cluster_key, index)
        if merged.account == cfg.pipeline.account and merged.cluster.name == cfg.environment:
            lines.append(
                f"{path}: {where}: cluster.name '{merged.cluster.name}' in the tooling account "
                f"{merged.account} is the name of the pipeline's own image repositories "
                f"({cfg.environment}/<image>); set another cluster.name in its overrides"
            )
        result.append((settings, merged))
    if lines:
        raise ConfigError(lines)
    if any(uses_ecr(env) for _, env in result):
        shared = shared_registry(cfg, path, accounts=[env.account for _, env in result])
        result = [
            (settings, env.model_copy(update={"images": env.images.with_shared(shared)}))
            for settings, env in result
        ]
    return result


def uses_ecr(cfg: DeploymentConfig) -> bool:
    """Whether any graph of this environment pulls an image we build."""
    return cfg.images.source == "ecr" or any(graph.image_source == "ecr" for graph in cfg.graphs)


def shared_registry(cfg: DeploymentConfig, path: Path, *, accounts: list[str | None]) -> SharedRegistry:
    """The pipeline's images: repositories <pipeline name>/<image> in the tooling account
    (its Images stack), their recorded digests, and who may pull them."""
    from config.image_digests import load

    assert cfg.pipeline is not None
    pipeline = cfg.pipeline
    prefix = cfg.environment
    digests_file = path.parent / pipeline.image_digests
    location = f"{ecr_registry(pipeline.account, pipeline.region)}/{prefix}"
    return SharedRegistry(
        account=pipeline.account,
        region=pipeline.region,
        repository_prefix=prefix,
        digests=load(digests_file, registry=location),
        digests_file=str(digests_file),
        config_path=str(path),
        build=cfg.images.build,
        registry=cfg.registry,
        pull_accounts=tuple(sorted({a for a in accounts if a is not None and a != pipeline.account})),
    )
