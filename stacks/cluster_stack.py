"""Cluster: the EKS control plane, access, system nodes and add-ons."""

from __future__ import annotations

import cdk8s
from aws_cdk import CfnOutput, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer
from constructs import Construct

from config.cluster import ClusterConfig, EndpointConfig
from config.names import discovery_tag_key
from config.schema import DeploymentConfig
from stacks.eks_addons import EksAddons
from stacks.gpu_enablement import GpuEnablement
from stacks.karpenter import KarpenterController
from stacks.karpenter_nag import acknowledge_karpenter
from stacks.nag_acknowledgements import (
    acknowledge_aws_managed,
    acknowledge_kubectl_provider,
    acknowledge_node_role,
)
from stacks.retention import owned_log_group, send_function_logs_to
from stacks.system_nodes import SystemNodeGroup
from stacks.teardown_guard import TeardownGuard

_ALL_LOG_TYPES = [
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
]


class ClusterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_config: ClusterConfig,
        vpc: ec2.IVpc,
        removal_policy: RemovalPolicy,
        deployment: DeploymentConfig,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in {cluster_config.name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )

        # EKS writes control-plane logs to this name and would create it without expiry (and
        # leave it after `cdk destroy`); created first, it is the stack's.
        self.control_plane_logs = owned_log_group(
            self,
            "ControlPlaneLogs",
            name=f"/aws/eks/{cluster_config.name}/cluster",
            days=cluster_config.log_retention_days,
            removal_policy=removal_policy,
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_config.name,
            version=eks.KubernetesVersion.of(cluster_config.kubernetes_version),
            vpc=vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            service_ipv4_cidr=cluster_config.service_ipv4_cidr,
            endpoint_access=_endpoint_access(cluster_config.endpoint),
            secrets_encryption_key=secrets_key,
            cluster_logging=_ALL_LOG_TYPES,
            # Capacity is ours: a system node group here, Karpenter for everything else.
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            bootstrap_self_managed_addons=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV36Layer(self, "KubectlLayer"),
            ),
            tags={discovery_tag_key(): cluster_config.name},
        )
        # The same cluster, typed as what constructs and other stacks take. jsii renders ICluster's
        # optional kubectlProviderOptions as a required Protocol property, which the Python binding
        # of Cluster (like the TypeScript class, which may omit an optional member) lacks.
        self.cluster_interface: eks.ICluster = self.cluster  # type: ignore[assignment]
        self.cluster.node.find_child("Resource").node.add_dependency(self.control_plane_logs)
        self._own_kubectl_provider_logs(cluster_config.log_retention_days, removal_policy)

        for index, principal in enumerate(cluster_config.admin_principals):
            eks.AccessEntry(
                self,
                f"Admin{index}",
                cluster=self.cluster_interface,
                principal=principal,
                access_policies=[
                    eks.AccessPolicy.from_access_policy_name(
                        "AmazonEKSClusterAdminPolicy",
                        access_scope_type=eks.AccessScopeType.CLUSTER,
                    )
                ],
            )

        self.system_nodes = SystemNodeGroup(
            self, "System", cluster=self.cluster, nodes=cluster_config.system_nodes
        )
        self.addons = EksAddons(
            self,
            "Addons",
            cluster=self.cluster_interface,
            cluster_name=cluster_config.name,
            kubernetes_version=cluster_config.kubernetes_version,
            nodes=self.system_nodes.nodegroup,
        )

        self._add_karpenter(deployment, vpc)

        acknowledge_kubectl_provider(self.cluster)
        acknowledge_aws_managed(
            self.cluster.role,
            "AmazonEKSClusterPolicy",
            "The EKS service role policy that EKS requires for the control plane; AWS keeps it "
            "in step with the EKS API.",
        )
        acknowledge_node_role(self.system_nodes.role)
        acknowledge_aws_managed(
            self.addons.efs_csi_role,
            "service-role/AmazonEFSCSIDriverPolicy",
            "EFS CSI needs to create and delete access points for dynamic provisioning; the AWS "
            "policy limits deletes to access points tagged by the driver, and only the "
            "efs-csi-controller-sa service account can assume this role (Pod Identity).",
        )
        acknowledge_aws_managed(
            self.addons.ebs_csi_role,
            "service-role/AmazonEBSCSIDriverPolicy",
            "EBS CSI creates, attaches and deletes the volumes of PersistentVolumeClaims; the "
            "AWS policy limits deletes and detaches to volumes the driver tagged, and only the "
            "ebs-csi-controller-sa service account can assume this role (Pod Identity).",
        )

        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        CfnOutput(
            self,
            "UpdateKubeconfigCommand",
            value=f"aws eks update-kubeconfig --region {self.region} --name {cluster_config.name}",
            description="Point kubectl at the cluster (needs an admin_principals identity)",
        )

    def _own_kubectl_provider_logs(self, days: int, removal_policy: RemovalPolicy) -> None:
        """The kubectl provider's handler and its provider-framework Lambda log to groups of
        this stack (one per function), created before the functions."""
        provider = self.cluster.kubectl_provider
        assert isinstance(provider, Construct)  # eks.KubectlProvider, from kubectl_provider_options
        functions = [
            construct
            for construct in provider.node.find_all()
            if isinstance(construct, CfnResource) and construct.cfn_resource_type == "AWS::Lambda::Function"
        ]
        assert len(functions) == 2, [f.node.path for f in functions]
        for function in functions:
            owner = function.node.scope  # the lambda.Function construct
            assert owner is not None
            log_group = owned_log_group(
                provider,
                f"{owner.node.id.replace('-', '')}Logs",
                days=days,
                removal_policy=removal_policy,
            )
            send_function_logs_to(function, log_group)

    def _add_karpenter(self, cfg: DeploymentConfig, vpc: ec2.IVpc) -> None:
        """Karpenter and its pools, wired so that `cdk destroy` deletes in this order:
        NodePools/EC2NodeClasses (Karpenter drains and terminates their nodes) -> Karpenter
        release and device plugins -> system nodes -> teardown guard (sweeps leftovers) ->
        the controller's IAM, queue, access entries -> cluster -> (Network stack) VPC."""
        from k8s_charts import karpenter_pools

        name = cfg.cluster.name
        self.karpenter = KarpenterController(
            self,
            "Karpenter",
            cluster=self.cluster_interface,
            cluster_name=name,
            runs_after=[self.system_nodes.nodegroup, self.addons.addons["coredns"]],
        )
        self.teardown_guard = TeardownGuard(
            self,
            "TeardownGuard",
            cluster_name=name,
            subnets=vpc.private_subnets,
            node_role=self.karpenter.node_role,
            delete_volumes=not cfg.retain_data,
            log_retention_days=cfg.cluster.log_retention_days,
            removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
        )
        # The control plane only (the Cluster construct also holds nodegroups and manifests).
        self.teardown_guard.resource.node.add_dependency(self.cluster.node.find_child("Resource"))
        self.teardown_guard.resource.node.add_dependency(self.karpenter.node_role)
        # Created before the system nodes, deleted after them: the sweep also catches ENIs
        # the VPC CNI leaked from system nodes.
        self.system_nodes.nodegroup.node.add_dependency(self.teardown_guard.resource)
        self.karpenter.release.node.add_dependency(self.teardown_guard.resource)

        self.gpu = GpuEnablement(
            self,
            "GpuEnablement",
            cluster=self.cluster_interface,
            karpenter=cfg.karpenter,
            runs_after=[self.system_nodes.nodegroup],
        )

        app = cdk8s.App()
        inputs = karpenter_pools.PoolInputs(cluster_security_group_id=self.cluster.cluster_security_group_id)
        (chart,) = karpenter_pools.build(app, cfg, inputs)
        self.node_pools = self.cluster.add_cdk8s_chart("KarpenterPools", chart)
        for dependency in (*self.karpenter.deletion_dependencies, *self.gpu.charts):
            self.node_pools.node.add_dependency(dependency)

        acknowledge_karpenter(self.karpenter, self.teardown_guard)


def _endpoint_access(endpoint: EndpointConfig) -> eks.EndpointAccess:
    if endpoint.public_access and endpoint.private_access:
        return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*endpoint.public_access_cidrs)
    if endpoint.public_access:
        return eks.EndpointAccess.PUBLIC.only_from(*endpoint.public_access_cidrs)
    return eks.EndpointAccess.PRIVATE
