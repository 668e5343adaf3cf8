"""Prometheus, Grafana and GPU metrics, and the optional Tempo traces and CloudWatch container
logs (Helm releases; monitors, the dashboard and Tempo's datasource are cdk8s)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config import versions
from config.names import (
    DCGM_EXPORTER_RELEASE,
    FLUENT_BIT_NAMESPACE,
    FLUENT_BIT_RELEASE,
    FLUENT_BIT_SERVICE_ACCOUNT,
    MONITORING_NAMESPACE,
    PROMETHEUS_RELEASE,
    TEMPO_RELEASE,
    container_log_group_name,
)
from config.platform import LogsConfig, MonitoringConfig, TracingConfig
from k8s_charts.platform_helm_values import (
    dcgm_exporter_values,
    fluent_bit_values,
    kube_prometheus_stack_values,
    tempo_values,
)
from stacks.eks_addons import pod_identity_association, pod_identity_role
from stacks.retention import owned_log_group


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        monitoring: MonitoringConfig,
        retain_data: bool,
        bottlerocket: bool = False,
        tracing: TracingConfig | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prometheus_stack = eks.HelmChart(
            self,
            "KubePrometheusStack",
            cluster=cluster,
            chart="kube-prometheus-stack",
            repository=versions.PROMETHEUS_COMMUNITY_CHART_REPO,
            version=versions.KUBE_PROMETHEUS_STACK,
            release=PROMETHEUS_RELEASE,
            namespace=MONITORING_NAMESPACE,
            # The namespace (Pod Security labels) is the Platform stack's namespaces chart.
            create_namespace=False,
            values=kube_prometheus_stack_values(monitoring, retain_data=retain_data),
            # Grafana waits for its admin secret; PodMonitors need the CRDs this installs.
            wait=True,
            timeout=Duration.minutes(15),
        )
        self.dcgm_exporter: eks.HelmChart | None = None
        if monitoring.dcgm_exporter:
            self.dcgm_exporter = eks.HelmChart(
                self,
                "DcgmExporter",
                cluster=cluster,
                chart="dcgm-exporter",
                repository=versions.DCGM_EXPORTER_CHART_REPO,
                version=versions.DCGM_EXPORTER,
                release=DCGM_EXPORTER_RELEASE,
                namespace=MONITORING_NAMESPACE,
                create_namespace=False,
                values=dcgm_exporter_values(bottlerocket=bottlerocket),
                # A DaemonSet on GPU nodes only: with no GPU node yet there is nothing to
                # wait for.
                wait=False,
            )
        self.tempo: eks.HelmChart | None = None
        if tracing is not None and tracing.enabled:
            self.tempo = eks.HelmChart(
                self,
                "Tempo",
                cluster=cluster,
                chart="tempo",
                repository=versions.GRAFANA_COMMUNITY_CHART_REPO,
                version=versions.TEMPO,
                release=TEMPO_RELEASE,
                namespace=MONITORING_NAMESPACE,
                create_namespace=False,
                values=tempo_values(tracing, retain_data=retain_data),
                # A Tempo that cannot start (volume, image) fails the deploy here, not later as
                # silently missing traces.
                wait=True,
                timeout=Duration.minutes(10),
            )


class ContainerLogs(Construct):
    """Every container's stdout/stderr in one CloudWatch log group: the group (owned here, so
    its retention and removal follow config), a Pod Identity role that can only write to it,
    and aws-for-fluent-bit as a DaemonSet on every node."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        region: str,
        logs: LogsConfig,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = owned_log_group(
            self,
            "Group",
            name=container_log_group_name(cluster_name),
            days=logs.retention_days,
            removal_policy=removal_policy,
        )
        self.role = pod_identity_role(self, "FluentBitRole")
        # logs:CreateLogStream and logs:PutLogEvents on this group's streams, nothing else:
        # the group exists before Fluent Bit starts, so it needs no logs:CreateLogGroup.
        self.log_group.grant_write(self.role)
        association = pod_identity_association(
            self,
            cluster,
            namespace=FLUENT_BIT_NAMESPACE,
            service_account=FLUENT_BIT_SERVICE_ACCOUNT,
            role=self.role,
        )
        self.fluent_bit = eks.HelmChart(
            self,
            "FluentBit",
            cluster=cluster,
            chart="aws-for-fluent-bit",
            repository=versions.EKS_CHARTS_REPO,
            version=versions.AWS_FOR_FLUENT_BIT,
            release=FLUENT_BIT_RELEASE,
            namespace=FLUENT_BIT_NAMESPACE,
            create_namespace=False,
            values=fluent_bit_values(region=region, log_group_name=container_log_group_name(cluster_name)),
            # A DaemonSet: nothing else waits for it.
            wait=False,
        )
        # Pod Identity injects credentials only into pods created after the association
        # exists; the group must exist before the first write (Fluent Bit never creates it).
        # Deleted in reverse: Fluent Bit stops before its role and group go.
        self.fluent_bit.node.add_dependency(association, self.role, self.log_group)
