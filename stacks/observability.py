"""Prometheus, Grafana and GPU metrics (Helm releases; monitors and the dashboard are cdk8s)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config import versions
from config.names import DCGM_EXPORTER_RELEASE, MONITORING_NAMESPACE, PROMETHEUS_RELEASE
from config.platform import MonitoringConfig
from k8s_charts.platform_helm_values import dcgm_exporter_values, kube_prometheus_stack_values


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
