"""Scheduled drift check: per pipeline environment, an EventBridge schedule invokes one
Lambda (stacks/drift_check_handler/index.py) that runs CloudFormation drift detection on
every stack of that environment, through the environment's CDK lookup role, and publishes
drift to the pipeline's notifications topic.

Least privilege: the function may assume only the lookup role of each environment
(read-only, created by `cdk bootstrap --trust <tooling account>`), publish only to the one
topic (with its key), and write only its own log group.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import DefaultStackSynthesizer, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from config import versions
from stacks.lambda_code import handler_code
from stacks.retention import owned_log_group

HANDLER_DIR = Path(__file__).parent / "drift_check_handler"


@dataclass(frozen=True)
class DriftTarget:
    environment: str
    account: str
    region: str
    stacks: tuple[str, ...]


def lookup_role_arn(account: str, region: str, partition: str = "aws") -> str:
    """The CDK bootstrap lookup role (CDK's own name template, default qualifier): it has
    ReadOnlyAccess (which includes cloudformation:Detect*) and trusts the accounts given to
    `cdk bootstrap --trust`; the bootstrap template denies it kms:Decrypt."""
    return (
        DefaultStackSynthesizer.DEFAULT_LOOKUP_ROLE_ARN.replace("${AWS::Partition}", partition)
        .replace("${Qualifier}", DefaultStackSynthesizer.DEFAULT_QUALIFIER)
        .replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
    )


class DriftCheck(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets_: list[DriftTarget],
        schedule: str,
        topic: sns.ITopic,
        topic_key: kms.IKey,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        log_group = owned_log_group(self, "Logs", days=log_retention_days, removal_policy=removal_policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Runs CloudFormation drift detection in the pipeline's environments",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeEnvironmentLookupRoles",
                actions=["sts:AssumeRole"],
                resources=sorted({lookup_role_arn(t.account, t.region, stack.partition) for t in targets_}),
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        # Explicit rather than topic.grant_publish, which adds kms:GenerateDataKey* too.
        self.role.add_to_policy(
            iam.PolicyStatement(sid="PublishDrift", actions=["sns:Publish"], resources=[topic.topic_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptForTopic",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[topic_key.key_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime(versions.LAMBDA_PYTHON_RUNTIME, lambda_.RuntimeFamily.PYTHON),
            handler="index.handler",
            code=handler_code(HANDLER_DIR),
            role=self.role,
            timeout=Duration.minutes(10),
            memory_size=256,
            description="Scheduled CloudFormation drift check of the pipeline's environments",
            log_group=log_group,
        )
        self.rules: dict[str, events.Rule] = {}
        for target in targets_:
            self.rules[target.environment] = events.Rule(
                self,
                f"Schedule-{target.environment}",
                description=f"Drift check of environment {target.environment}",
                schedule=events.Schedule.expression(schedule),
                targets=[
                    targets.LambdaFunction(
                        self.function,
                        retry_attempts=0,
                        event=events.RuleTargetInput.from_object(
                            {
                                "environment": target.environment,
                                "account": target.account,
                                "region": target.region,
                                "role_arn": lookup_role_arn(target.account, target.region, stack.partition),
                                "stacks": list(target.stacks),
                                "topic_arn": topic.topic_arn,
                            }
                        ),
                    )
                ],
            )
