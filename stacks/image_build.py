"""ImageBuild: a CodeBuild project that builds Dynamo runtime images into our ECR.

A construct of the Registry stack rather than a stack of its own: it pushes only to the
repositories that stack owns, so grants stay inside one template (no cross-stack exports
that would pin the repositories), and both are created and destroyed together.
"""

from __future__ import annotations

import yaml
from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import versions
from config.images import (
    BUILDKIT_IMAGE,
    BUILDKIT_VERSION,
    DOCKER_HUB_UPSTREAM_URL,
    ImageBuildConfig,
    docker_hub_cache_prefix,
    docker_hub_secret_name,
)
from config.names import (
    BUILD_FRAMEWORKS,
    BUILDSPEC,
    OUTPUT_LOG_GROUP,
    OUTPUT_PROJECT,
    framework_env_key,
    image_build_project_name,
)
from stacks.nag_acknowledgements import acknowledge, logical_id
from stacks.retention import log_retention

_COMPUTE = {
    "large": codebuild.ComputeType.LARGE,
    "xlarge": codebuild.ComputeType.X_LARGE,
    "2xlarge": codebuild.ComputeType.X2_LARGE,
}


class ImageBuild(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        build: ImageBuildConfig,
        cluster_name: str,
        repositories: dict[str, ecr.IRepository],
        cache_repository: ecr.IRepository,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        project_name = image_build_project_name(cluster_name)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/codebuild/{project_name}",
            retention=log_retention(build.log_retention_days),
            removal_policy=removal_policy,
        )
        # Encrypts the build's working artifacts and cache CodeBuild keeps (AwsSolutions-CB4).
        key = kms.Key(
            self,
            "Key",
            description=f"CodeBuild encryption for {project_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )

        self._docker_hub_cache(cluster_name)
        registry_host = f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}"
        environment_variables = {
            "FRAMEWORK": "vllm",
            "EFA": "false",
            "DYNAMO_VERSION": versions.DYNAMO,
            "DYNAMO_GIT_REPOSITORY": versions.DYNAMO_GIT_REPOSITORY,
            "ECR_REGISTRY": registry_host,
            "CACHE_REPOSITORY": cache_repository.repository_uri,
            "RENDER_PIP": " ".join(versions.DYNAMO_RENDER_PIP),
            # Docker Hub through this registry's pull-through cache (BuildKit's docker.io
            # mirror, and the BuildKit image itself).
            "DOCKER_HUB_MIRROR": f"{registry_host}/{self.docker_hub_prefix}",
            "BUILDKIT_IMAGE": f"{BUILDKIT_IMAGE}:{BUILDKIT_VERSION}",
        }
        for framework, image in BUILD_FRAMEWORKS.items():
            key_name = framework_env_key(framework)
            environment_variables[f"IMAGE_REPOSITORY_{key_name}"] = repositories[image].repository_uri
            environment_variables[f"CUDA_VERSION_{key_name}"] = versions.DYNAMO_BUILD_CUDA[framework]

        self.project = codebuild.Project(
            self,
            "Project",
            project_name=project_name,
            description=f"Builds Dynamo {versions.DYNAMO} runtime images from upstream source into ECR",
            build_spec=codebuild.BuildSpec.from_object(yaml.safe_load(BUILDSPEC.read_text())),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.from_code_build_image_id(versions.CODEBUILD_IMAGE),
                compute_type=_COMPUTE[build.compute],
                privileged=True,
            ),
            environment_variables={
                name: codebuild.BuildEnvironmentVariable(value=value)
                for name, value in environment_variables.items()
            },
            encryption_key=key,
            timeout=Duration.minutes(build.timeout_minutes),
            # One build per framework at a time is the normal use; the cap stops a script
            # loop from starting dozens of large machines.
            concurrent_build_limit=3,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
        )
        role = self.project.role
        assert role is not None
        # Push and pull only to our release repositories and the cache; the describe call
        # lets the build stop early when a tag already exists. GetAuthorizationToken has no
        # resource-level permissions, so grant_pull_push adds it on "*".
        for repository in (*(repositories[i] for i in BUILD_FRAMEWORKS.values()), cache_repository):
            repository.grant_pull_push(role)
            repository.grant(role, "ecr:DescribeImages")
        # Pulls through the cache: the first pull of an image creates its repository under
        # the rule's prefix and imports it from Docker Hub (ECR user guide, "IAM permissions
        # required to sync an upstream registry").
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullDockerHubThroughCache",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                ],
                resources=[
                    stack.format_arn(
                        service="ecr", resource="repository", resource_name=f"{self.docker_hub_prefix}/*"
                    )
                ],
            )
        )

        acknowledge(
            self.project,
            "AwsSolutions::AwsSolutions-CB3",
            "Privileged mode runs the Docker daemon that builds the Dynamo image; the build "
            "runs only upstream's pinned release tag and can push only to this stack's ECR "
            "repositories.",
        )
        self._acknowledge_role_policy(role)

        CfnOutput(
            stack,
            OUTPUT_PROJECT,
            value=self.project.project_name,
            description="CodeBuild project that builds Dynamo images (python -m image_build)",
        )
        CfnOutput(
            stack,
            OUTPUT_LOG_GROUP,
            value=self.log_group.log_group_name,
            description="CloudWatch log group of the image build",
        )

    def _docker_hub_cache(self, name: str) -> None:
        """A pull-through cache rule for Docker Hub, authenticated with a Docker Hub access
        token the user stores in the secret (created empty, like the Hugging Face token).
        Until it holds one, BuildKit falls back to Docker Hub directly (anonymous)."""
        self.docker_hub_prefix = docker_hub_cache_prefix(name)
        # L1 on purpose: without SecretString, Secrets Manager creates it with no value.
        # Always deleted with the stack: a retained secret would hold its fixed name.
        self.docker_hub_secret = secretsmanager.CfnSecret(
            self,
            "DockerHubCredentials",
            name=docker_hub_secret_name(name),
            description="Docker Hub login for the ECR pull-through cache of the Dynamo image build: "
            '{"username": "<user>", "accessToken": "<token>"} (set with aws secretsmanager put-secret-value)',
        )
        self.docker_hub_secret.apply_removal_policy(RemovalPolicy.DESTROY)
        acknowledge(
            self.docker_hub_secret,
            "AwsSolutions::AwsSolutions-SMG4",
            "A Docker Hub access token the user creates on Docker Hub and stores here; Secrets "
            "Manager cannot rotate a third-party token (rotate it on Docker Hub, then put the new value).",
        )
        self.pull_through_cache = ecr.CfnPullThroughCacheRule(
            self,
            "DockerHubCache",
            ecr_repository_prefix=self.docker_hub_prefix,
            upstream_registry="docker-hub",
            upstream_registry_url=DOCKER_HUB_UPSTREAM_URL,
            credential_arn=self.docker_hub_secret.ref,
        )
        CfnOutput(
            Stack.of(self),
            "DockerHubSecretName",
            value=docker_hub_secret_name(name),
            description="Store a Docker Hub access token here so image builds pull Docker Hub authenticated",
        )

    def _acknowledge_role_policy(self, role: iam.IRole) -> None:
        """Wildcards CodeBuild and ECR need, each confined to this project's own resources."""
        stack = Stack.of(self)
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        project = f"<{logical_id(self.project.node.default_child)}>"
        prefix = f"arn:<AWS::Partition>:{{}}:{region}:{account}:"
        findings = {
            "Resource::"
            + prefix.format("logs")
            + f"log-group:/aws/codebuild/{project}:*": "Log streams inside this project's own log group; CodeBuild names each stream "
            "after the build id, so they cannot be listed in advance.",
            "Resource::"
            + prefix.format("codebuild")
            + f"report-group/{project}-*": "CodeBuild's test-report permissions for this project's own report groups "
            "(name prefix = project name); no other project's reports match.",
            "Action::kms:ReEncrypt*": "Encrypt/decrypt grant on the project's own KMS key only (the key policy and "
            "the statement's resource both name that one key).",
            "Action::kms:GenerateDataKey*": "Data keys from the project's own KMS key only, for CodeBuild's encrypted "
            "artifacts and cache (the statement's resource is that one key).",
            "Resource::*": "Only ecr:GetAuthorizationToken is granted on '*': it has no resource-level "
            "permissions. Push and pull are limited to this stack's repositories.",
            "Resource::"
            + prefix.format("ecr")
            + f"repository/{self.docker_hub_prefix}/*": "Repositories of this build's Docker Hub pull-through "
            "cache: ECR creates one per upstream image on its first pull, so their names are not known "
            "in advance; the prefix is this registry's own rule.",
        }
        policy = role.node.find_child("DefaultPolicy")
        for finding, reason in findings.items():
            acknowledge(policy, f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason)
