"""Platform: what every inference graph needs from the cluster.

Dynamo operator (+ Grove/KAI for multinode graphs), the EFS model cache, the Hugging Face
token sync, and monitoring. Order inside the stack follows what each piece waits for;
CloudFormation deletes in reverse, so custom resources go before the operators that own
their CRDs.
"""

from __future__ import annotations

import cdk8s
from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config.names import (
    GRAFANA_SERVICE,
    MONITORING_NAMESPACE,
    PROMETHEUS_PORT,
    PROMETHEUS_SERVICE,
    container_log_group_name,
    grafana_admin_secret_name,
    prometheus_url,
)
from config.schema import DeploymentConfig
from k8s_charts.dynamo_platform_values import dynamo_platform_values
from k8s_charts.observability_charts import tracing_chart
from k8s_charts.platform_charts import PlatformInputs, build_charts
from stacks.dynamo_platform import DynamoPlatform
from stacks.model_cache import ModelCacheFileSystem
from stacks.nag_acknowledgements import acknowledge
from stacks.observability import ContainerLogs, Observability
from stacks.platform_secrets import PlatformSecrets


class PlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: DeploymentConfig,
        cluster: eks.ICluster,
        vpc: ec2.IVpc,
        removal_policy: RemovalPolicy,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        monitoring = cfg.platform.monitoring

        self.model_cache = ModelCacheFileSystem(
            self,
            "ModelCache",
            vpc=vpc,
            cluster_security_group_id=cluster.cluster_security_group_id,
            removal_policy=removal_policy,
        )
        self.secrets = PlatformSecrets(
            self,
            "Secrets",
            cluster=cluster,
            cluster_name=cfg.cluster.name,
            grafana=monitoring.enabled,
            alert_webhook=monitoring.alert_webhook,
        )

        charts = build_charts(
            cdk8s.App(),
            cfg,
            PlatformInputs(file_system_id=self.model_cache.file_system.file_system_id),
        )
        # Every namespace we install into, with its Pod Security labels; no Helm release
        # creates one. Each release depends on this manifest, so CloudFormation deletes the
        # namespaces only after the releases in them.
        namespaces = self._apply(cluster, "Namespaces", charts.namespaces)
        self.secrets.operator.node.add_dependency(namespaces)
        synced_secrets = self._apply(cluster, "SyncedSecrets", charts.secrets)
        synced_secrets.node.add_dependency(self.secrets.operator, namespaces)
        model_cache = self._apply(cluster, "ModelCacheVolume", charts.model_cache)
        model_cache.node.add_dependency(namespaces)
        # Mount targets must exist before the CSI driver creates access points.
        model_cache.node.add_dependency(self.model_cache.file_system.mount_targets_available)

        self.observability: Observability | None = None
        storage_chart = charts.prometheus_storage  # built with the monitoring chart
        if monitoring.enabled and charts.monitoring is not None and storage_chart is not None:
            self.observability = Observability(
                self,
                "Observability",
                cluster=cluster,
                monitoring=monitoring,
                retain_data=cfg.retain_data,
                bottlerocket=cfg.karpenter.use_bottlerocket,
                tracing=cfg.platform.tracing,
            )
            storage = self._apply(cluster, "PrometheusStorage", storage_chart)
            self.observability.prometheus_stack.node.add_dependency(namespaces, synced_secrets, storage)
            if self.observability.dcgm_exporter is not None:
                self.observability.dcgm_exporter.node.add_dependency(namespaces)
            monitors = self._apply(cluster, "MonitorsAndDashboards", charts.monitoring)
            monitors.node.add_dependency(self.observability.prometheus_stack)
            traces = tracing_chart(cdk8s.App(), cfg)
            if self.observability.tempo is not None and traces is not None:
                # Tempo's volume uses the gp3-encrypted StorageClass applied with Prometheus'.
                self.observability.tempo.node.add_dependency(namespaces, storage)
                self._apply(cluster, "TracingDatasource", traces).node.add_dependency(namespaces)

        self.container_logs: ContainerLogs | None = None
        if cfg.platform.logs.enabled:
            self.container_logs = ContainerLogs(
                self,
                "ContainerLogs",
                cluster=cluster,
                cluster_name=cfg.cluster.name,
                region=cfg.region,
                logs=cfg.platform.logs,
                removal_policy=removal_policy,
            )

        self.dynamo = DynamoPlatform(
            self,
            "Dynamo",
            cluster=cluster,
            values=dynamo_platform_values(
                cfg, prometheus_endpoint=prometheus_url() if monitoring.enabled else ""
            ),
        )

        self.dynamo.release.node.add_dependency(namespaces)

        self._acknowledge()
        self._outputs(cfg)

    def _apply(self, cluster: eks.ICluster, construct_id: str, chart: cdk8s.Chart) -> eks.KubernetesManifest:
        return eks.KubernetesManifest(self, construct_id, cluster=cluster, manifest=chart.to_json())

    def _acknowledge(self) -> None:
        acknowledge(
            self.secrets.hf_token,
            "AwsSolutions::AwsSolutions-SMG4",
            "The Hugging Face token is issued by huggingface.co and cannot be rotated by a "
            "Secrets Manager rotation Lambda; users replace it with put-secret-value and "
            "External Secrets picks the new value up within an hour.",
        )
        if self.secrets.grafana_admin is not None:
            acknowledge(
                self.secrets.grafana_admin,
                "AwsSolutions::AwsSolutions-SMG4",
                "Grafana reads its admin password only when its database is initialised; a "
                "rotated secret would not change the login. Grafana is reachable only "
                "through kubectl port-forward (ClusterIP service).",
            )
        if self.secrets.alert_webhook is not None:
            acknowledge(
                self.secrets.alert_webhook,
                "AwsSolutions::AwsSolutions-SMG4",
                "The alert webhook URL is issued by the receiving service (its token cannot be "
                "rotated by a Secrets Manager rotation Lambda); users replace it with "
                "put-secret-value and External Secrets picks the new value up within an hour.",
            )

    def _outputs(self, cfg: DeploymentConfig) -> None:
        CfnOutput(
            self,
            "SetHfTokenCommand",
            value=(
                f"aws secretsmanager put-secret-value --region {cfg.region} "
                f'--secret-id {self.secrets.hf_token.name} --secret-string "$HF_TOKEN"'
            ),
            description="Store your Hugging Face token (synced to the hf-token-secret Secret)",
        )
        if self.container_logs is not None:
            CfnOutput(
                self,
                "ContainerLogsTailCommand",
                value=(
                    f"aws logs tail {container_log_group_name(cfg.cluster.name)} --region {cfg.region} "
                    "--follow --log-stream-name-prefix fluentbit-kube.var.log.containers."
                ),
                description="Follow every container's log (add the pod name to the prefix for one pod)",
            )
        CfnOutput(
            self,
            "ModelCacheFileSystemId",
            value=self.model_cache.file_system.file_system_id,
            description="EFS file system behind the model-cache PVC",
        )
        if self.secrets.grafana_admin is None:
            return
        CfnOutput(
            self,
            "GrafanaPortForwardCommand",
            value=f"kubectl -n {MONITORING_NAMESPACE} port-forward svc/{GRAFANA_SERVICE} 3000:80",
            description="Then open http://localhost:3000 (user admin)",
        )
        CfnOutput(
            self,
            "GrafanaPasswordCommand",
            value=(
                f"aws secretsmanager get-secret-value --region {cfg.region} "
                f"--secret-id {grafana_admin_secret_name(cfg.cluster.name)} "
                "--query SecretString --output text"
            ),
            description="Grafana admin login (JSON with admin-user and admin-password)",
        )
        CfnOutput(
            self,
            "PrometheusPortForwardCommand",
            value=(
                f"kubectl -n {MONITORING_NAMESPACE} port-forward svc/{PROMETHEUS_SERVICE} "
                f"{PROMETHEUS_PORT}:{PROMETHEUS_PORT}"
            ),
            description="Then open http://localhost:9090 (targets at /targets)",
        )
