"""The whole deployment configuration: what one YAML file may say."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from config.base import ACCOUNT_ID, DnsLabel, StrictModel
from config.catalog.regions import ZONE_LETTERS
from config.cluster import ClusterConfig
from config.graphs import GraphConfig
from config.images import ImagesConfig
from config.karpenter import KarpenterConfig, check_with_deployment
from config.network import NetworkConfig
from config.pipeline import PipelineConfig
from config.platform import PlatformConfig
from config.registry import RegistryConfig


class DeploymentConfig(StrictModel):
    environment: DnsLabel = Field(description="Environment name (dev, prod, ...); prefixes stack names.")
    account: str | None = Field(
        None, description="12-digit AWS account; null = the account of the deploying credentials."
    )
    region: str = Field(description="AWS region, e.g. us-west-2.")
    removal_policy: Literal["destroy", "retain"] = Field(
        "destroy",
        description="On `cdk destroy`, data (images, model cache, keys, logs) is destroyed (dev) "
        "or retained (prod).",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every resource.")
    network: NetworkConfig = Field(description="VPC layout.")
    cluster: ClusterConfig = Field(description="EKS cluster.")
    registry: RegistryConfig = Field(RegistryConfig(), description="ECR repositories.")
    karpenter: KarpenterConfig = Field(
        KarpenterConfig(), description="Karpenter node pools, limits and node OS."
    )
    graphs: list[GraphConfig] = Field(
        default_factory=list,
        description="Inference graphs (one DynamoGraphDeployment each); see the README section 'Inference graphs'.",
    )
    platform: PlatformConfig = Field(
        PlatformConfig(), description="Dynamo platform, model cache, secrets and monitoring."
    )
    images: ImagesConfig = Field(
        ImagesConfig(), description="Where graph images come from (ngc | ecr) and the image build."
    )
    pipeline: PipelineConfig | None = Field(
        None,
        description="Only in a pipeline config: a CDK Pipeline deploying this file's settings plus "
        "per-environment overrides.",
    )

    @field_validator("account", mode="before")
    @classmethod
    def _account_12_digits(cls, value: object) -> object:
        if value is None:
            return None
        text = str(value)
        if not ACCOUNT_ID.match(text):
            raise ValueError(
                f"'{text}' is not an AWS account id; use the 12 digits (quote it in YAML so "
                "leading zeros survive) or null for the deploying credentials' account"
            )
        return text

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in ZONE_LETTERS:
            raise ValueError(
                f"'{value}' is not a known AWS region; use one of e.g. us-west-2, us-east-1, "
                "eu-west-1 (see config/catalog/regions.py)"
            )
        return value

    @model_validator(mode="after")
    def _zones_in_region(self) -> DeploymentConfig:
        letters = ZONE_LETTERS[self.region]
        for zone in self.network.availability_zones:
            if not (zone.startswith(self.region) and zone[len(self.region) :] in letters):
                allowed = ", ".join(self.region + letter for letter in letters)
                raise ValueError(
                    f"network.availability_zones: '{zone}' is not a zone of {self.region}; "
                    f"use zones from {allowed}"
                )
        vpc = ipaddress.IPv4Network(self.network.vpc_cidr)
        service = ipaddress.IPv4Network(self.cluster.service_ipv4_cidr)
        if vpc.overlaps(service):
            raise ValueError(
                f"cluster.service_ipv4_cidr {service} overlaps network.vpc_cidr {vpc}; "
                "pick a range outside the VPC, e.g. 172.20.0.0/16"
            )
        return self

    @model_validator(mode="after")
    def _karpenter_fits(self) -> DeploymentConfig:
        check_with_deployment(self.karpenter, self.network.availability_zones, self.tags)
        return self

    @property
    def retain_data(self) -> bool:
        return self.removal_policy == "retain"
