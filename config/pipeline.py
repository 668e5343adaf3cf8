"""Cross-account promotion: a CDK Pipeline in a tooling account deploying each environment.

Per-environment settings are expressed as `overrides` deep-merged over the file's own
top-level settings (mappings merge key by key; lists and scalars replace). One file holds
what every environment shares and, per environment, only what differs, so a reviewer sees
the dev/prod difference in one place. Each merged result is validated like any config.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from config.base import ACCOUNT_ID, StrictModel
from config.catalog.regions import ZONE_LETTERS

_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# EventBridge schedule expressions: rate(<n> <unit>) or cron(<6 fields>).
_SCHEDULE = re.compile(r"^(rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)|cron\((\S+ ){5}\S+\))$")
_DIGESTS_FILE = re.compile(r"^[A-Za-z0-9_.-]+\.ya?ml$")


def _account(value: object) -> str:
    text = str(value)
    if not ACCOUNT_ID.match(text):
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


class DriftCheckConfig(StrictModel):
    # A Lambda of the pipeline stack runs CloudFormation drift detection on every stack of
    # each environment on this schedule and publishes drift to the notifications topic.
    enabled: bool = Field(True, description="Check every environment's stacks for drift on a schedule.")
    schedule: str = Field(
        "cron(0 6 * * ? *)",
        description="EventBridge schedule of the drift check (rate(...) or cron(...), UTC).",
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        match = _SCHEDULE.match(value)
        if not match:
            raise ValueError(
                f"'{value}' is not an EventBridge schedule; write rate(1 day) or "
                "cron(0 6 * * ? *) (minutes hours day-of-month month day-of-week year, UTC)"
            )
        number, unit = match.group(2), match.group(3)
        if number is not None and (number == "1") == unit.endswith("s"):
            raise ValueError(
                f"'{value}': EventBridge wants the singular unit for 1 and the plural otherwise "
                "(rate(1 day), rate(12 hours))"
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
    # Every CodeBuild project of the pipeline (synth, self-update, assets, post-deploy steps)
    # logs to one group of the pipeline stack with this retention.
    log_retention_days: int = Field(
        default=30,
        ge=1,
        le=3653,
        description="Days to keep the pipeline's CodeBuild logs (rounded up to a CloudWatch period).",
    )
    # Source and cloud-assembly artifacts expire after this; an execution older than that
    # cannot be retried (push again instead).
    artifact_retention_days: int = Field(
        default=90, ge=7, le=3650, description="Days to keep pipeline artifacts in the artifact bucket."
    )
    # Failed executions and approvals waiting for a person go to an SNS topic (output
    # NotificationTopicArn); these addresses are subscribed to it (each confirms by email).
    notification_emails: list[str] = Field(
        default_factory=list,
        description="Email addresses subscribed to pipeline failure and pending-approval notifications.",
    )

    # With ECR images, the pipeline builds each image once in the tooling account and every
    # stage pulls it by the digest recorded in this file (next to the pipeline config).
    image_digests: str = Field(
        "image-digests.yaml",
        description="File, next to this config, holding the digests of the images built once in the tooling account.",
    )
    drift_check: DriftCheckConfig = Field(
        DriftCheckConfig(), description="Scheduled CloudFormation drift detection of every environment."
    )

    @field_validator("image_digests")
    @classmethod
    def _digests_file(cls, value: str) -> str:
        if not _DIGESTS_FILE.match(value):
            raise ValueError(
                f"'{value}' is not a file name next to the pipeline config; use e.g. image-digests.yaml"
            )
        return value

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

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"'{address}' is not an email address; write it like team@example.com")
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not _BRANCH.match(value):
            raise ValueError(f"'{value}' is not a branch name; use e.g. main")
        return value
