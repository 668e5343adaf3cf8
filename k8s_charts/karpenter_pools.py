"""Karpenter NodePools and EC2NodeClasses: one pair per configured pool (same name).

Pure function of the config plus one input: the EKS cluster security group id. EKS does not
copy cluster tags to the security group it creates, so selecting it by the discovery tag
would find nothing; its id is exact. Subnets are selected by the discovery tag that the
Network stack puts on the private subnets.
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from config import versions
from config.karpenter import KarpenterConfig, NodePoolConfig
from config.names import (
    EFA_LABEL,
    EFS_STARTUP_TAINT_KEY,
    GPU_MODEL_LABEL,
    GPU_TAINT_KEY,
    NODE_ROLE_LABEL,
    discovery_tag_key,
    karpenter_node_role_name,
)
from config.schema import DeploymentConfig
from k8s_charts.imports.karpenter.aws.k8s import karpenter as ec2
from k8s_charts.imports.karpenter.sh import karpenter as kp
from plan.pools import PoolLimits, resolve_pool_limits

# Bottlerocket keeps its OS on a small volume and images/ephemeral data on the second one.
_BOTTLEROCKET_OS_VOLUME_GIB = 10


@dataclass(frozen=True)
class PoolInputs:
    cluster_security_group_id: str


def review_inputs(cfg: DeploymentConfig) -> PoolInputs:
    return PoolInputs(cluster_security_group_id="sg-0clustersecuritygroup")


def build(app: cdk8s.App, cfg: DeploymentConfig, inputs: PoolInputs) -> list[cdk8s.Chart]:
    chart = cdk8s.Chart(app, "karpenter-pools", disable_resource_name_hashes=True)
    limits, _ = resolve_pool_limits(cfg)
    for pool in cfg.karpenter.pools():
        node_class(chart, cfg, pool, inputs)
        node_pool(chart, cfg.karpenter, pool, limits[pool.name])
    return [chart]


# Label Karpenter 1.14.1 puts on reserved nodes (pkg/apis/v1/labels.go,
# LabelCapacityReservationType; values default | capacity-block).
CAPACITY_RESERVATION_TYPE_LABEL = "karpenter.k8s.aws/capacity-reservation-type"


def node_class(
    scope: Construct, cfg: DeploymentConfig, pool: NodePoolConfig, inputs: PoolInputs
) -> ec2.Ec2NodeClass:
    karpenter = cfg.karpenter
    alias = versions.AMI_ALIAS_BOTTLEROCKET if karpenter.use_bottlerocket else versions.AMI_ALIAS_AL2023
    volume_gib = karpenter.gpu_root_volume_gib if pool.is_gpu else karpenter.cpu_root_volume_gib
    return ec2.Ec2NodeClass(
        scope,
        f"{pool.name}-class",
        metadata=cdk8s.ApiObjectMetadata(name=pool.name),
        spec=ec2.Ec2NodeClassSpec(
            role=karpenter_node_role_name(cfg.cluster.name),
            ami_selector_terms=[ec2.Ec2NodeClassSpecAmiSelectorTerms(alias=alias)],
            subnet_selector_terms=[
                ec2.Ec2NodeClassSpecSubnetSelectorTerms(tags={discovery_tag_key(): cfg.cluster.name})
            ],
            security_group_selector_terms=[
                ec2.Ec2NodeClassSpecSecurityGroupSelectorTerms(id=inputs.cluster_security_group_id)
            ],
            # Pods get AWS credentials from Pod Identity; hop limit 1 keeps them off the
            # node role, as on the system nodes.
            metadata_options=ec2.Ec2NodeClassSpecMetadataOptions(
                http_endpoint=ec2.Ec2NodeClassSpecMetadataOptionsHttpEndpoint.ENABLED,
                http_protocol_i_pv6=ec2.Ec2NodeClassSpecMetadataOptionsHttpProtocolIPv6.DISABLED,
                http_put_response_hop_limit=1,
                http_tokens=ec2.Ec2NodeClassSpecMetadataOptionsHttpTokens.REQUIRED,
            ),
            block_device_mappings=_volumes(karpenter.use_bottlerocket, volume_gib),
            # GPU sizes carry local NVMe; striped, it holds images and model scratch space.
            instance_store_policy=(ec2.Ec2NodeClassSpecInstanceStorePolicy.RAID0 if pool.is_gpu else None),
            network_interfaces=_efa_interfaces(pool.efa_interfaces) if pool.efa else None,
            placement_group_selector=(
                ec2.Ec2NodeClassSpecPlacementGroupSelector(name=pool.placement_group)
                if pool.placement_group
                else None
            ),
            capacity_reservation_selector_terms=[
                ec2.Ec2NodeClassSpecCapacityReservationSelectorTerms(
                    id=term.id, tags=term.tags or None, owner_id=term.owner_id
                )
                for term in pool.capacity_reservations
            ]
            or None,
            tags={"dynamo-eks:environment": cfg.environment, **cfg.tags},
        ),
    )


def _volumes(bottlerocket: bool, gib: int) -> list[ec2.Ec2NodeClassSpecBlockDeviceMappings]:
    def ebs(size: int) -> ec2.Ec2NodeClassSpecBlockDeviceMappingsEbs:
        return ec2.Ec2NodeClassSpecBlockDeviceMappingsEbs(
            volume_size=f"{size}Gi",
            volume_type=ec2.Ec2NodeClassSpecBlockDeviceMappingsEbsVolumeType.GP3,
            encrypted=True,
            delete_on_termination=True,
        )

    if bottlerocket:
        return [
            ec2.Ec2NodeClassSpecBlockDeviceMappings(
                device_name="/dev/xvda", ebs=ebs(_BOTTLEROCKET_OS_VOLUME_GIB)
            ),
            ec2.Ec2NodeClassSpecBlockDeviceMappings(device_name="/dev/xvdb", root_volume=True, ebs=ebs(gib)),
        ]
    return [ec2.Ec2NodeClassSpecBlockDeviceMappings(device_name="/dev/xvda", root_volume=True, ebs=ebs(gib))]


def _efa_interfaces(cards: int) -> list[ec2.Ec2NodeClassSpecNetworkInterfaces]:
    """IP-optimised EFA layout: one ENA interface (primary) and one EFA-only interface per
    network card, so every card carries EFA traffic while pods use a single ENI's IPs."""
    kind = ec2.Ec2NodeClassSpecNetworkInterfacesInterfaceType
    layout = [
        ec2.Ec2NodeClassSpecNetworkInterfaces(
            network_card_index=0, device_index=0, interface_type=kind.INTERFACE
        )
    ]
    layout += [
        ec2.Ec2NodeClassSpecNetworkInterfaces(
            network_card_index=card, device_index=1 if card == 0 else 0, interface_type=kind.EFA_HYPHEN_ONLY
        )
        for card in range(cards)
    ]
    return layout


def node_pool(
    scope: Construct, karpenter: KarpenterConfig, pool: NodePoolConfig, pool_limits: PoolLimits
) -> kp.NodePool:
    op = kp.NodePoolSpecTemplateSpecRequirementsOperator
    requirements = [
        kp.NodePoolSpecTemplateSpecRequirements(
            key="karpenter.sh/capacity-type", operator=op.IN, values=list(pool.capacity_types)
        ),
        kp.NodePoolSpecTemplateSpecRequirements(key="kubernetes.io/arch", operator=op.IN, values=["amd64"]),
        kp.NodePoolSpecTemplateSpecRequirements(key="kubernetes.io/os", operator=op.IN, values=["linux"]),
    ]
    if pool.efa or pool.instance_types:
        names = [row.name for row in pool.launchable()] if pool.efa else pool.instance_types
        requirements.append(
            kp.NodePoolSpecTemplateSpecRequirements(
                key="node.kubernetes.io/instance-type", operator=op.IN, values=names
            )
        )
    else:
        requirements.append(
            kp.NodePoolSpecTemplateSpecRequirements(
                key="karpenter.k8s.aws/instance-family",
                operator=op.IN,
                values=list(pool.instance_families),
            )
        )
    if pool.zones:
        requirements.append(
            kp.NodePoolSpecTemplateSpecRequirements(
                key="topology.kubernetes.io/zone", operator=op.IN, values=list(pool.zones)
            )
        )
    if pool.reservation_types and pool.capacity_types == ["reserved"]:
        # Karpenter 1.14 labels reserved nodes with their reservation's type; on-demand and
        # spot nodes carry no such label, so only a reserved-only pool may require it.
        requirements.append(
            kp.NodePoolSpecTemplateSpecRequirements(
                key=CAPACITY_RESERVATION_TYPE_LABEL, operator=op.IN, values=pool.reservation_types
            )
        )

    labels = {NODE_ROLE_LABEL: "gpu" if pool.is_gpu else "cpu"}
    taints = []
    # Per pool, from the plan: the pool's own limits, or derived so its graphs fit.
    limits = {
        "cpu": kp.NodePoolSpecLimits.from_string(str(pool_limits.cpu)),
        "memory": kp.NodePoolSpecLimits.from_string(f"{pool_limits.memory_gib}Gi"),
    }
    gpu_label = pool.gpu_label  # None for a CPU pool
    if gpu_label is not None:
        labels[GPU_MODEL_LABEL] = gpu_label
        taints.append(
            kp.NodePoolSpecTemplateSpecTaints(
                key=GPU_TAINT_KEY, effect=kp.NodePoolSpecTemplateSpecTaintsEffect.NO_SCHEDULE
            )
        )
        limits[GPU_TAINT_KEY] = kp.NodePoolSpecLimits.from_string(str(pool_limits.gpus))
    if pool.efa:
        labels[EFA_LABEL] = "true"

    policy = kp.NodePoolSpecDisruptionConsolidationPolicy
    return kp.NodePool(
        scope,
        f"{pool.name}-pool",
        metadata=cdk8s.ApiObjectMetadata(name=pool.name),
        spec=kp.NodePoolSpec(
            weight=karpenter.weight(pool),
            limits=limits,
            disruption=kp.NodePoolSpecDisruption(
                # GPU nodes are only reclaimed when empty: moving a loaded model costs minutes.
                consolidation_policy=(
                    policy.WHEN_EMPTY if pool.is_gpu else policy.WHEN_EMPTY_OR_UNDERUTILIZED
                ),
                consolidate_after=pool.consolidate_after,
                budgets=[kp.NodePoolSpecDisruptionBudgets(nodes=pool.disruption_budget)],
            ),
            template=kp.NodePoolSpecTemplate(
                metadata=kp.NodePoolSpecTemplateMetadata(labels=labels),
                spec=kp.NodePoolSpecTemplateSpec(
                    node_class_ref=kp.NodePoolSpecTemplateSpecNodeClassRef(
                        group="karpenter.k8s.aws", kind="EC2NodeClass", name=pool.name
                    ),
                    requirements=requirements,
                    taints=taints or None,
                    startup_taints=[
                        kp.NodePoolSpecTemplateSpecStartupTaints(
                            key=EFS_STARTUP_TAINT_KEY,
                            effect=kp.NodePoolSpecTemplateSpecStartupTaintsEffect.NO_EXECUTE,
                        )
                    ],
                    expire_after=pool.expire_after,
                    termination_grace_period=pool.termination_grace_period,
                ),
            ),
        ),
    )
