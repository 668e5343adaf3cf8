"""Registry: ECR repositories for Dynamo images we build ourselves, and the build.

An environment's Registry stack builds its own images, unless it belongs to a pipeline that
builds them once in the tooling account: then that account's Images stack (this class too,
with `pull_accounts`) holds the build, and lets each environment's account pull.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.images import ImagesConfig
from config.names import BUILD_CACHE_IMAGE, ECR_IMAGES, ecr_repository_name
from config.registry import RegistryConfig
from stacks.image_build import ImageBuild

# What a cross-account pull needs from the repository (ECR user guide, "Private repository
# policy examples": allow another account to pull).
PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


class RegistryStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry: RegistryConfig,
        images: ImagesConfig,
        cluster_name: str,
        removal_policy: RemovalPolicy,
        pull_accounts: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.repositories: dict[str, ecr.Repository] = {}
        for image in ECR_IMAGES:
            repository = ecr.Repository(
                self,
                image,
                repository_name=ecr_repository_name(cluster_name, image),
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                image_scan_on_push=True,
                encryption=ecr.RepositoryEncryption.KMS,
                removal_policy=removal_policy,
                empty_on_delete=removal_policy == RemovalPolicy.DESTROY,
                lifecycle_rules=[
                    ecr.LifecycleRule(
                        rule_priority=1,
                        description="Drop untagged layers left by rebuilds",
                        tag_status=ecr.TagStatus.UNTAGGED,
                        max_image_age=Duration.days(registry.untagged_expiry_days),
                    ),
                    ecr.LifecycleRule(
                        rule_priority=2,
                        description=f"Keep the newest {registry.keep_release_images} tagged images",
                        tag_status=ecr.TagStatus.TAGGED,
                        tag_pattern_list=["*"],
                        max_image_count=registry.keep_release_images,
                    ),
                ],
            )
            self.repositories[image] = repository
            if pull_accounts:
                # Pull only (no push, no delete, no listing) for each stage's account; its
                # nodes' AmazonEC2ContainerRegistryPullOnly policy is the identity side.
                repository.add_to_resource_policy(
                    iam.PolicyStatement(
                        sid="PullFromPipelineEnvironments",
                        principals=[iam.AccountPrincipal(account) for account in pull_accounts],
                        actions=list(PULL_ACTIONS),
                    )
                )
            CfnOutput(
                self,
                f"{image}Uri",
                value=repository.repository_uri,
                description=f"ECR repository for {image} images",
            )

        self.image_build: ImageBuild | None = None
        self.cache_repository: ecr.Repository | None = None
        if images.shared is not None:
            # Built once, in the pipeline's tooling account (its Images stack): no build
            # project, layer cache or Docker Hub cache here.
            return
        # Layer cache is rewritten by every build (mutable tags) and worth nothing on its own,
        # so it is always emptied on destroy and kept apart from the immutable releases.
        self.cache_repository = ecr.Repository(
            self,
            BUILD_CACHE_IMAGE,
            repository_name=ecr_repository_name(cluster_name, BUILD_CACHE_IMAGE),
            image_tag_mutability=ecr.TagMutability.MUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            removal_policy=RemovalPolicy.DESTROY,
            empty_on_delete=True,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop cache manifests replaced by newer builds",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(registry.untagged_expiry_days),
                )
            ],
        )
        self.image_build = ImageBuild(
            self,
            "ImageBuild",
            build=images.build,
            cluster_name=cluster_name,
            repositories=dict(self.repositories),
            cache_repository=self.cache_repository,
            removal_policy=removal_policy,
        )
