"""Pipeline (tooling account): CDK Pipelines promoting the same app through environments.

The source is a CodeConnections connection; the synth step runs `make synth` (the CDK CLI
pinned in package.json, offline config validation, cdk-nag); each environment is a Stage
built by the same `add_deployment` as a direct `cdk deploy`, so what the pipeline deploys
to prod is exactly what `make synth` showed for that environment's config.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import CfnOutput, Duration, Environment, RemovalPolicy, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from config import versions
from config.images import ImagesConfig, SharedRegistry, images_stack_name
from config.pipeline import PipelineConfig, PipelineEnvironment
from config.schema import DeploymentConfig
from stacks.deployment import DeploymentStacks, add_deployment
from stacks.drift_check import DriftCheck, DriftTarget
from stacks.image_check import image_check_step
from stacks.nag_acknowledgements import acknowledge, logical_id
from stacks.registry_stack import RegistryStack
from stacks.retention import owned_log_group

REPO = Path(__file__).resolve().parents[1]


def pinned_cdk_cli() -> str:
    """The CDK CLI version in package.json: one pin for local synth and the pipeline."""
    package = json.loads((REPO / "package.json").read_text())
    return package["devDependencies"]["aws-cdk"]


def _join_as_sub(value: object) -> dict | None:
    """{"Fn::Join": ["", [...]]} of strings, Refs and GetAtts as {"Fn::Sub": ...}, else None."""
    if not (isinstance(value, dict) and list(value) == ["Fn::Join"] and value["Fn::Join"][0] == ""):
        return None
    text = ""
    for part in value["Fn::Join"][1]:
        if isinstance(part, str):
            text += part.replace("${", "${!")
        elif isinstance(part, dict) and list(part) == ["Ref"]:
            text += "${" + part["Ref"] + "}"
        elif isinstance(part, dict) and list(part) == ["Fn::GetAtt"]:
            text += "${" + ".".join(part["Fn::GetAtt"]) + "}"
        else:
            return None
    return {"Fn::Sub": text}


class DeploymentStage(Stage):
    """One environment: the stacks `cdk deploy --all` would create for its config."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: DeploymentConfig) -> None:
        super().__init__(scope, construct_id, env=Environment(account=cfg.account, region=cfg.region))
        self.stacks: DeploymentStacks = add_deployment(self, cfg)


class ImagesStage(Stage):
    """The tooling account's image repositories and build: images are built once, here, and
    every environment's account may pull them (repository policy)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, shared: SharedRegistry, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id, env=Environment(account=shared.account, region=shared.region))
        name = images_stack_name(shared.repository_prefix)
        self.registry = RegistryStack(
            self,
            name,
            registry=shared.registry,
            images=ImagesConfig(build=shared.build),
            cluster_name=shared.repository_prefix,
            removal_policy=removal_policy,
            pull_accounts=shared.pull_accounts,
            stack_name=name,
            description=f"dynamo-eks {shared.repository_prefix}: Dynamo images built once for every "
            "pipeline environment (ECR repositories, CodeBuild image build)",
        )


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: PipelineConfig,
        environments: list[tuple[PipelineEnvironment, DeploymentConfig]],
        config_path: str,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        source = pipelines.CodePipelineSource.connection(
            pipeline.repository, pipeline.branch, connection_arn=pipeline.connection_arn
        )
        synth = pipelines.ShellStep(
            "Synth",
            input=source,
            commands=[f"make synth CONFIG={config_path}"],
            primary_output_directory="cdk.out",
        )
        build_image = codebuild.BuildEnvironment(
            build_image=codebuild.LinuxBuildImage.from_code_build_image_id(versions.CODEBUILD_IMAGE)
        )
        # One log group for every CodeBuild project of the pipeline, with retention, instead
        # of /aws/codebuild/<project> groups CodeBuild would create without expiry. Streams
        # are prefixed by what ran: synth, self-update, assets, step (post-deploy).
        self.build_logs = owned_log_group(
            self, "BuildLogs", days=pipeline.log_retention_days, removal_policy=removal_policy
        )

        def logs_to(prefix: str) -> pipelines.CodeBuildOptions:
            return pipelines.CodeBuildOptions(
                logging=codebuild.LoggingOptions(
                    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.build_logs, prefix=prefix)
                )
            )

        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=construct_id,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=synth,
            # Target accounts decrypt artifacts with the pipeline's KMS key.
            cross_account_keys=True,
            enable_key_rotation=True,
            cli_version=pinned_cdk_cli(),
            cdk_assets_cli_version=versions.CDK_ASSETS_CLI,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=build_image,
                logging=logs_to("step").logging,
            ),
            synth_code_build_defaults=logs_to("synth"),
            self_mutation_code_build_defaults=logs_to("self-update"),
            asset_publishing_code_build_defaults=logs_to("assets"),
        )
        # With ECR images: the tooling account's Images stack deploys first, so its
        # repositories (and their pull grants to every environment) exist before any stage.
        shared = next((env.images.shared for _, env in environments if env.images.shared), None)
        self.images_stage: ImagesStage | None = None
        if shared is not None:
            self.images_stage = ImagesStage(self, "Images", shared=shared, removal_policy=removal_policy)
            self.pipeline.add_stage(self.images_stage)
        self.stages: list[DeploymentStage] = []
        for settings, env_cfg in environments:
            stage = DeploymentStage(self, env_cfg.environment, cfg=env_cfg)
            pre: list[pipelines.Step] = []
            stack_steps: list[pipelines.StackSteps] = []
            # Before anything of this environment changes: every image digest its graphs
            # pull exists in the tooling account.
            check_images = image_check_step(self, env_cfg, input_=source)
            if check_images is not None:
                pre.append(check_images)
            if settings.approval:
                # Before anything of this environment changes: stop if IAM or security groups
                # would broaden (CDK's own security diff against the deployed stacks).
                broadening = pipelines.ConfirmPermissionsBroadening(
                    f"CheckBroadening-{env_cfg.environment}", stage=stage
                )
                if check_images is not None:
                    broadening.add_step_dependency(check_images)
                pre.append(broadening)
                # Each stack's change set is created first; the person approves what they see
                # in it, and exactly that change set is executed.
                stack_steps = [
                    pipelines.StackSteps(
                        stack=stack,
                        change_set=[
                            pipelines.ManualApprovalStep(
                                f"Approve-{stack.stack_name}",
                                comment=f"Review the change set of {stack.stack_name} in the CloudFormation "
                                f"console (account {env_cfg.account}, {env_cfg.region}, stack "
                                f"{stack.stack_name}, Change sets tab); approving executes exactly that "
                                "change set.",
                            )
                        ],
                    )
                    for stack in stage.stacks.all()
                ]
            post = []
            if settings.post_deploy:
                post.append(
                    pipelines.ShellStep(
                        f"PostDeploy-{env_cfg.environment}",
                        input=source,
                        commands=list(settings.post_deploy),
                    )
                )
            self.pipeline.add_stage(stage, pre=pre, post=post, stack_steps=stack_steps)
            self.stages.append(stage)
        # Build now (not at synth) so the generated roles exist to be acknowledged.
        self.pipeline.build_pipeline()
        self._artifacts_kept_with_their_key(pipeline.artifact_retention_days)
        self._notifications(pipeline.notification_emails, removal_policy)
        self.drift_check: DriftCheck | None = None
        if pipeline.drift_check.enabled:
            drift_targets = [
                DriftTarget(
                    environment=env_cfg.environment,
                    account=str(env_cfg.account),
                    region=env_cfg.region,
                    stacks=tuple(s.stack_name for s in stage.stacks.all()),
                )
                for (_, env_cfg), stage in zip(environments, self.stages, strict=True)
            ]
            if self.images_stage is not None and shared is not None:
                # The tooling account's Images stack (its lookup role trusts its own account).
                drift_targets.append(
                    DriftTarget(
                        environment=self.images_stage.registry.stack_name,
                        account=shared.account,
                        region=shared.region,
                        stacks=(self.images_stage.registry.stack_name,),
                    )
                )
            self.drift_check = DriftCheck(
                self,
                "DriftCheck",
                targets_=drift_targets,
                schedule=pipeline.drift_check.schedule,
                topic=self.notification_topic,
                topic_key=self.notifications_key,
                log_retention_days=pipeline.log_retention_days,
                removal_policy=removal_policy,
            )
        self._acknowledge_generated_roles()
        self._role_arns_as_sub()

    def _artifacts_kept_with_their_key(self, days: int) -> None:
        """CodePipeline makes the artifact bucket `Retain` and its KMS key `Delete`, which
        would leave a bucket nobody can read. Both are retained (CloudFormation cannot delete
        a non-empty bucket, and the bucket holds the cloud assemblies each environment was
        deployed from); a lifecycle rule expires artifacts so the bucket empties itself."""
        bucket = self.pipeline.pipeline.artifact_bucket
        assert isinstance(bucket, s3.Bucket), type(bucket)
        bucket.add_lifecycle_rule(
            id="ExpireArtifacts",
            expiration=Duration.days(days),
            noncurrent_version_expiration=Duration.days(1),
            abort_incomplete_multipart_upload_after=Duration.days(1),
        )
        bucket.apply_removal_policy(RemovalPolicy.RETAIN)
        assert bucket.encryption_key is not None
        # The alias goes with the stack, so a new pipeline of the same name can create it.
        bucket.encryption_key.apply_removal_policy(RemovalPolicy.RETAIN)

    def _notifications(self, emails: list[str], removal_policy: RemovalPolicy) -> None:
        """Failed or cancelled executions, failed actions, and approvals waiting for a person
        go to an SNS topic (KMS-encrypted, TLS only) through a CodeStar notification rule."""
        key = self.notifications_key = kms.Key(
            self,
            "NotificationsKey",
            description=f"Encrypts the notifications of {self.pipeline.pipeline.pipeline_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CodeStar Notifications publishes to the encrypted topic with this key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                principals=[iam.ServicePrincipal("codestar-notifications.amazonaws.com")],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.notification_topic = sns.Topic(
            self,
            "Notifications",
            master_key=key,
            enforce_ssl=True,
            display_name=f"{self.pipeline.pipeline.pipeline_name} failures and approvals",
        )
        for email in emails:
            self.notification_topic.add_subscription(subscriptions.EmailSubscription(email))
        self.pipeline.pipeline.notify_on(
            "FailuresAndApprovals",
            self.notification_topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_CANCELED,
                codepipeline.PipelineNotificationEvents.ACTION_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
            ],
        )
        CfnOutput(
            self,
            "NotificationTopicArn",
            value=self.notification_topic.topic_arn,
            description="SNS topic of pipeline failures and pending approvals; subscribe to it",
        )

    def _role_arns_as_sub(self) -> None:
        """Write each action's Configuration.RoleArn as the equivalent Fn::Sub.

        CDK Pipelines emits Fn::Join with an empty delimiter there, which cfn-lint's pipeline
        action check (E3703) rejects; the value is unchanged, only its spelling.
        """
        cfn = self.pipeline.pipeline.node.default_child
        if not isinstance(cfn, codepipeline.CfnPipeline):
            raise TypeError(f"{self.pipeline.pipeline.node.path}: no CfnPipeline default child")
        stages = self.resolve(cfn.stages)
        for stage_index, stage in enumerate(stages):
            for action_index, action in enumerate(stage["actions"]):
                arn = (action.get("configuration") or {}).get("RoleArn")
                as_sub = _join_as_sub(arn)
                if as_sub is not None:
                    cfn.add_property_override(
                        f"Stages.{stage_index}.Actions.{action_index}.Configuration.RoleArn", as_sub
                    )

    def _acknowledge_security_check(self) -> None:
        """The permissions-broadening check CDK Pipelines adds (a CodeBuild project running
        CDK's security diff, and a Lambda that approves its manual step when nothing broadens)."""
        check = self.pipeline.node.try_find_child("PipelinesSecurityCheck")
        if check is None:
            return
        # Its CodeBuild project takes no pipeline defaults: log to the pipeline's group too.
        project = check.node.find_child("CDKSecurityCheck").node.default_child
        assert isinstance(project, codebuild.CfnProject), type(project)
        project.add_property_override(
            "LogsConfig.CloudWatchLogs",
            {
                "Status": "ENABLED",
                "GroupName": self.build_logs.log_group_name,
                "StreamName": "security-check",
            },
        )
        approve = check.node.find_child("CDKPipelinesAutoApprove")
        acknowledge(
            approve.node.find_child("ServiceRole"),
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK Pipelines' auto-approve Lambda writes only its own CloudWatch logs with this "
            "managed policy; it has no other AWS permissions than approving this pipeline's step.",
        )
        acknowledge(
            check.node.find_child("CDKSecurityCheck")
            .node.find_child("Role")
            .node.find_child("DefaultPolicy"),
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id(approve.node.default_child)}.Arn>:*]",
            "The security-check project may invoke every version of the one auto-approve Lambda "
            "(ARN plus :* for its versions), nothing else.",
        )

    def _acknowledge_generated_roles(self) -> None:
        """cdk-nag findings on the roles CDK Pipelines generates, each acknowledged only on a
        policy that really contains it (checked against the resolved policy document)."""
        artifacts = self.pipeline.pipeline.artifact_bucket
        bucket = logical_id(artifacts.node.default_child)
        artifact_reason = (
            "CDK Pipelines grants this on the pipeline's own artifact bucket and its objects "
            "only; the bucket holds nothing but this pipeline's source and cloud assembly."
        )
        key_reason = (
            "Encrypt/decrypt on the pipeline's own artifact KMS key only (the statement's "
            "resource is that one key), needed to read and write encrypted artifacts."
        )
        generic = {
            "Action::s3:GetObject*": ("s3:GetObject*", artifact_reason),
            "Action::s3:GetBucket*": ("s3:GetBucket*", artifact_reason),
            "Action::s3:List*": ("s3:List*", artifact_reason),
            "Action::s3:DeleteObject*": ("s3:DeleteObject*", artifact_reason),
            "Action::s3:Abort*": ("s3:Abort*", artifact_reason),
            f"Resource::<{bucket}.Arn>/*": ("/*", artifact_reason),
            "Action::kms:ReEncrypt*": ("kms:ReEncrypt*", key_reason),
            "Action::kms:GenerateDataKey*": ("kms:GenerateDataKey*", key_reason),
            f"Resource::arn:*:iam::{self.account}:role/*": (
                "iam::" + str(self.account) + ":role/*",
                "Self-mutation may assume only CDK bootstrap roles (condition on the "
                "aws-cdk:bootstrap-role tag: deploy, file- and image-publishing) in the tooling "
                "account, to update this pipeline.",
            ),
            "Resource::*": (
                '"Resource": "*"',
                "Actions without resource-level permissions that CDK Pipelines needs: "
                "cloudformation:DescribeStacks and s3:ListBucket for self-mutation, and "
                "CodeBuild build control for asset publishing.",
            ),
            f"Resource::arn:<AWS::Partition>:logs:{self.region}:{self.account}:log-group:/aws/codebuild/*": (
                "log-group:/aws/codebuild/*",
                "The shared asset-publishing role serves CodeBuild projects whose names CDK "
                "generates; it may write only CodeBuild log groups in the tooling account.",
            ),
            f"Resource::arn:<AWS::Partition>:codebuild:{self.region}:{self.account}:report-group/*": (
                "report-group/*",
                "The shared asset-publishing role serves CodeBuild projects whose names CDK "
                "generates; report permissions cannot be narrowed to one project name.",
            ),
        }
        for construct in self.pipeline.node.find_all():
            if isinstance(construct, codebuild.Project):
                project = f"<{logical_id(construct.node.default_child)}>"
                arn = f"arn:<AWS::Partition>:{{}}:{self.region}:{self.account}:"
                reason = (
                    "CodeBuild's own log streams and test-report groups for this one project "
                    "(names prefixed by the project name); nothing of other projects matches."
                )
                role = construct.role
                if role is None:
                    raise TypeError(f"{construct.node.path}: a CodeBuild project without a role")
                for finding in (
                    arn.format("logs") + f"log-group:/aws/codebuild/{project}:*",
                    arn.format("codebuild") + f"report-group/{project}-*",
                ):
                    acknowledge(
                        role.node.find_child("DefaultPolicy"),
                        f"AwsSolutions::AwsSolutions-IAM5[Resource::{finding}]",
                        reason,
                    )
            if isinstance(construct, iam.Policy) and construct.node.id == "DefaultPolicy":
                document = json.dumps(self.resolve(construct.document.to_json()))
                for finding, (evidence, reason) in generic.items():
                    if evidence in document:
                        acknowledge(construct, f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason)
        self._acknowledge_security_check()
        acknowledge(
            artifacts,
            "AwsSolutions::AwsSolutions-S1",
            "The artifact bucket is private to the pipeline (KMS-encrypted, public access "
            "blocked); CodePipeline and CloudTrail record every action that reads or writes it.",
        )
