"""Registry: ECR repositories for Dynamo images we build ourselves, and the build."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from config.images import ImagesConfig
from config.names import BUILD_CACHE_IMAGE, ECR_IMAGES, ecr_repository_name
from config.registry import RegistryConfig
from stacks.image_build import ImageBuild


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
            CfnOutput(
                self,
                f"{image}Uri",
                value=repository.repository_uri,
                description=f"ECR repository for {image} images",
            )

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
