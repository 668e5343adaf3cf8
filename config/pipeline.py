"""Cross-account promotion: a CDK Pipeline in a tooling account deploying each environment.

Per-environment settings are expressed as `overrides` deep-merged over the file's own
top-level settings (mappings merge key by key; lists and scalars replace). One file holds
what every environment shares and, per environment, only what differs, so a reviewer sees
the dev/prod difference in one place. Each merged result is validated like any config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator

from config.base import StrictModel
from config.catalog.regions import ZONE_LETTERS

if TYPE_CHECKING:
    from config.schema import DeploymentConfig

_ACCOUNT = re.compile(r"^\d{12}$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")


def _account(value: object) -> str:
    text = str(value)
    if not _ACCOUNT.match(text):
        raise ValueError(
            f"'{text}' is not an AWS account id; use the 12 digits in quotes (e.g. \"111122223333\")"
        )
    return text


class PipelineEnvironment(StrictModel):
    # Deep-merged over this file's top-level settings; must at least set `environment`
    # and `account` (and usually cluster.name, removal_policy, sizes).
    overrides: dict[str, Any] = Field(
        description="Settings merged over the file's top level; must set environment and account."
    )
    # A person approves in CodePipeline before this environment is deployed.
    approval: bool = Field(False, description="Require a manual approval before this environment.")
    # Shell commands run in the tooling account after this environment deployed (a CodeBuild
    # step with the source checked out); e.g. a check that calls the new endpoint.
    post_deploy: list[str] = Field(
        default_factory=list, description="Shell commands run after this environment deployed."
    )

    @field_validator("overrides")
    @classmethod
    def _names_environment(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "pipeline" in value:
            raise ValueError("an environment cannot contain a pipeline; remove 'pipeline' from its overrides")
        for key in ("environment", "account"):
            if key not in value:
                raise ValueError(
                    f"overrides must set '{key}' (each pipeline environment deploys to its own "
                    "named environment in an explicit account)"
                )
        return value


class PipelineConfig(StrictModel):
    # The tooling account and region that host the pipeline itself.
    account: str = Field(description="Tooling account (12 digits) that hosts the pipeline.")
    region: str = Field(description="Region of the pipeline.")
    # CodeConnections connection (created and authorized once in the console).
    connection_arn: str = Field(description="CodeConnections connection ARN for the repository.")
    repository: str = Field(description="Source repository as owner/name.")
    branch: str = Field("main", description="Branch whose commits run the pipeline.")
    environments: list[PipelineEnvironment] = Field(
        min_length=1, description="Environments in promotion order."
    )

    @field_validator("account", mode="before")
    @classmethod
    def _tooling_account(cls, value: object) -> str:
        return _account(value)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in ZONE_LETTERS:
            raise ValueError(f"'{value}' is not a known AWS region; use e.g. us-west-2")
        return value

    @field_validator("connection_arn")
    @classmethod
    def _connection(cls, value: str) -> str:
        if not _CONNECTION_ARN.match(value):
            raise ValueError(
                f"'{value}' is not a CodeConnections connection ARN; copy it from Developer "
                "Tools > Settings > Connections, e.g. "
                "arn:aws:codeconnections:us-west-2:111122223333:connection/<uuid>"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        if not _REPOSITORY.match(value):
            raise ValueError(f"'{value}' is not owner/name; write it like my-org/dynamo-eks")
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not _BRANCH.match(value):
            raise ValueError(f"'{value}' is not a branch name; use e.g. main")
        return value


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
    from config.loader import ConfigError, describe_errors
    from config.schema import DeploymentConfig

    assert cfg.pipeline is not None
    path = Path(path)
    base = cfg.model_dump(exclude={"pipeline"}, exclude_unset=True)
    lines: list[str] = []
    result: list[tuple[PipelineEnvironment, DeploymentConfig]] = []
    seen: dict[str, int] = {}
    for index, settings in enumerate(cfg.pipeline.environments):
        where = f"pipeline.environments.{index} ({settings.overrides['environment']})"
        try:
            merged = DeploymentConfig.model_validate(deep_merge(base, settings.overrides))
        except ValidationError as err:
            lines.extend(
                f"{path}: {where}: {line.removeprefix(f'{path}: ')}"
                for line in describe_errors(path, err)
            )
            continue
        if merged.environment in seen:
            lines.append(
                f"{path}: {where}: environment '{merged.environment}' is already used by "
                f"pipeline.environments.{seen[merged.environment]}; stack names derive from "
                "it, so give each environment its own name"
            )
        seen.setdefault(merged.environment, index)
        result.append((settings, merged))
    if lines:
        raise ConfigError(lines)
    return result
