"""EKS managed add-ons, pinned per Kubernetes version in config/versions.py."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from config import versions
from config.names import VOLUME_CLUSTER_TAG_KEY

# Installed before any node joins: a node is not Ready without networking.
_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
_AFTER_NODES = ("coredns", "aws-efs-csi-driver", "aws-ebs-csi-driver")


def pod_identity_role(scope: Construct, construct_id: str) -> iam.Role:
    """An IAM role that only EKS Pod Identity can assume."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
    )


def pod_identity_association(
    scope: Construct, cluster: eks.ICluster, *, namespace: str, service_account: str, role: iam.IRole
) -> eks.CfnPodIdentityAssociation:
    """Give one service account `role` (construct id "PodIdentity": one per scope)."""
    return eks.CfnPodIdentityAssociation(
        scope,
        "PodIdentity",
        cluster_name=cluster.cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.role_arn,
    )


def addon_configuration(cluster_name: str) -> dict[str, dict[str, Any]]:
    """Configuration values per add-on. EKS validates them against the add-on's schema, which
    follows the upstream Helm chart's values: tests/test_addon_configuration.py checks each key
    and value type against the chart values of the pinned release (tests/data/upstream/)."""
    return {
        # The teardown guard finds this cluster's volumes by this tag.
        "aws-ebs-csi-driver": {"controller": {"extraVolumeTags": {VOLUME_CLUSTER_TAG_KEY: cluster_name}}},
        # NetworkPolicy enforcement (the VPC CNI's network policy agent; every graph renders
        # default-deny ingress plus its flows, k8s_charts/network_policies.py). A string, as
        # in the chart (EKS User Guide, "Configure your cluster for Kubernetes network
        # policies": --configuration-values '{"enableNetworkPolicy": "true"}').
        "vpc-cni": {"enableNetworkPolicy": "true"},
    }


class EksAddons(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        kubernetes_version: str,
        nodes: IConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        pinned = versions.EKS_ADDONS[kubernetes_version]
        self.addons: dict[str, eks.Addon] = {}

        self.efs_csi_role = self._csi_role("EfsCsiRole", "service-role/AmazonEFSCSIDriverPolicy")
        self.ebs_csi_role = self._csi_role("EbsCsiRole", "service-role/AmazonEBSCSIDriverPolicy")
        pod_identities = {
            "aws-efs-csi-driver": ("efs-csi-controller-sa", self.efs_csi_role),
            "aws-ebs-csi-driver": ("ebs-csi-controller-sa", self.ebs_csi_role),
        }
        configuration = addon_configuration(cluster_name)

        for name in _BEFORE_NODES + _AFTER_NODES:
            addon = eks.Addon(
                self,
                name,
                cluster=cluster,
                addon_name=name,
                addon_version=pinned[name],
                preserve_on_delete=False,
                configuration_values=configuration.get(name),
            )
            if name in pod_identities:
                service_account, role = pod_identities[name]
                cfn = addon.node.default_child
                if not isinstance(cfn, CfnResource):
                    raise TypeError(f"{addon.node.path}: no CfnAddon default child")
                cfn.add_property_override(
                    "PodIdentityAssociations",
                    [{"ServiceAccount": service_account, "RoleArn": role.role_arn}],
                )
            if name in _BEFORE_NODES:
                nodes.node.add_dependency(addon)
            else:
                addon.node.add_dependency(nodes)
            self.addons[name] = addon

    def _csi_role(self, construct_id: str, managed_policy: str) -> iam.Role:
        role = pod_identity_role(self, construct_id)
        role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(managed_policy))
        return role
