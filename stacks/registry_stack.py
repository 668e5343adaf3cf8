"""Registry: ECR repositories for Dynamo images we build ourselves."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from config.registry import RegistryConfig
from stacks.names import ECR_IMAGES, ecr_repository_name


class RegistryStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry: RegistryConfig,
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
