"""One environment = the set of stacks below, wired together in creation order."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Environment, RemovalPolicy, Stack, Tags
from constructs import Construct

from config.names import stack_id
from config.schema import DeploymentConfig
from stacks.cluster_stack import ClusterStack
from stacks.custom_resource_timeout import bound_kubernetes_custom_resources
from stacks.inference_stack import InferenceStack, add_inference_stacks
from stacks.network_stack import NetworkStack
from stacks.platform_stack import PlatformStack
from stacks.registry_stack import RegistryStack


@dataclass(frozen=True)
class DeploymentStacks:
    network: NetworkStack
    cluster: ClusterStack
    registry: RegistryStack
    platform: PlatformStack
    # One per shard of graphs (stacks/inference_stack.py GRAPHS_PER_STACK).
    inference: tuple[InferenceStack, ...] = ()

    def all(self) -> list[Stack]:
        return [self.network, self.cluster, self.registry, self.platform, *self.inference]


def add_deployment(scope: Construct, cfg: DeploymentConfig) -> DeploymentStacks:
    env = Environment(account=cfg.account or Aws.ACCOUNT_ID, region=cfg.region)
    removal = RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY
    name = cfg.cluster.name

    def props(unit: str, description: str) -> dict:
        return {
            "env": env,
            "stack_name": stack_id(cfg.environment, unit),
            "description": f"dynamo-eks {cfg.environment}: {description}",
        }

    network = NetworkStack(
        scope,
        stack_id(cfg.environment, "network"),
        network=cfg.network,
        cluster_name=name,
        removal_policy=removal,
        **props("network", "VPC, subnets, NAT, flow logs"),
    )
    cluster = ClusterStack(
        scope,
        stack_id(cfg.environment, "cluster"),
        cluster_config=cfg.cluster,
        vpc=network.vpc,
        removal_policy=removal,
        deployment=cfg,
        **props("cluster", "EKS cluster, system nodes, add-ons"),
    )
    registry = RegistryStack(
        scope,
        stack_id(cfg.environment, "registry"),
        registry=cfg.registry,
        images=cfg.images,
        cluster_name=name,
        removal_policy=removal,
        **props("registry", "ECR repositories and CodeBuild image build for Dynamo images"),
    )
    platform = PlatformStack(
        scope,
        stack_id(cfg.environment, "platform"),
        cfg=cfg,
        cluster=cluster.cluster_interface,
        vpc=network.vpc,
        removal_policy=removal,
        **props("platform", "Dynamo operator, model cache, secrets sync, monitoring"),
    )
    platform.add_stack_dependency(cluster)
    inference = add_inference_stacks(
        scope, cfg, cluster=cluster.cluster_interface, after=platform, stack_props=props
    )
    stacks = DeploymentStacks(
        network=network,
        cluster=cluster,
        registry=registry,
        platform=platform,
        inference=tuple(inference),
    )
    for stack in stacks.all():
        bound_kubernetes_custom_resources(stack)
        for key, value in {"dynamo-eks:environment": cfg.environment, **cfg.tags}.items():
            Tags.of(stack).add(key, value)
    return stacks
