"""Kubernetes objects of the Platform stack, as cdk8s charts (pure functions of config).

Split into charts by what they wait for, so the stack can order them: namespaces first;
secrets after the External Secrets Operator (its CRDs); monitors and the dashboard after
kube-prometheus-stack (its CRDs); the model cache after the EFS file system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_36 import k8s

from config.names import (
    ALERT_WEBHOOK_KEY,
    ALERT_WEBHOOK_SECRET,
    CLUSTER_SECRET_STORE,
    DCGM_EXPORTER_RELEASE,
    DYNAMO_SYSTEM_NAMESPACE,
    EBS_STORAGE_CLASS,
    EXTERNAL_SECRETS_NAMESPACE,
    GRAFANA_ADMIN_SECRET,
    HF_TOKEN_KEY,
    HF_TOKEN_SECRET,
    INFERENCE_NAMESPACE,
    KARPENTER_NAMESPACE,
    KARPENTER_RELEASE,
    MODEL_CACHE_PVC,
    MODEL_CACHE_STORAGE_CLASS,
    MONITORING_NAMESPACE,
    alert_webhook_secret_name,
    grafana_admin_secret_name,
    hf_token_secret_name,
)
from config.schema import DeploymentConfig
from k8s_charts.alerts import RULE_NAME, alerts
from k8s_charts.dashboards.dynamo_dashboard import dashboard
from k8s_charts.dashboards.provisioned import our_dashboards
from k8s_charts.dashboards.upstream_dashboards import DASHBOARDS as UPSTREAM_DASHBOARDS
from k8s_charts.dynamo_platform_values import OPERATOR_METRICS_PORT
from k8s_charts.imports.external_secrets.io import external_secrets as eso
from k8s_charts.imports.prometheus_operator.com.coreos import monitoring as prom
from k8s_charts.platform_helm_values import (
    GRAFANA_ADMIN_PASSWORD_KEY,
    GRAFANA_ADMIN_USER_KEY,
    GRAFANA_DASHBOARD_LABEL,
    MONITOR_SELECTOR_LABELS,
)
from k8s_charts.pod_security import PSA_REASON_ANNOTATION, psa_labels

# Pod labels the Dynamo operator puts on every pod it manages (ai-dynamo/dynamo operator
# consts: KubeLabelMetricsEnabled; docs "Set Up Metrics Collection").
DYNAMO_METRICS_ENABLED = "nvidia.com/metrics-enabled"
DYNAMO_COMPONENT_TYPE = "nvidia.com/dynamo-component-type"
DYNAMO_GRAPH_NAME = "nvidia.com/dynamo-graph-deployment-name"
# The operator sets this pod label (and DYN_NAMESPACE) to "<k8s namespace>-<graph>"; the
# Planner keeps only series whose `dynamo_namespace` label equals its DYN_NAMESPACE, and the
# frontend does not label its own series, so every monitor copies the pod label onto them.
DYNAMO_NAMESPACE_LABEL = "nvidia.com/dynamo-namespace"
PLANNER_NAMESPACE_LABEL = "dynamo_namespace"
# What each monitor scrapes: component types (label values) and the named container port
# (upstream's "Set Up Metrics Collection": frontend HTTP 8000 as `http`, workers' system port
# 9090 as `system`, the planner's `metrics`). v1beta1 graphs type their workers prefill and
# decode as well as worker, so the worker monitor takes all three.
DYNAMO_MONITORS = (
    ("frontend", ("frontend",), "http"),
    ("worker", ("worker", "prefill", "decode"), "system"),
    ("planner", ("planner",), "metrics"),
    # KV-offload workers' KVBM metrics (k8s_charts/graphs.py KVBM_METRICS_PORT_NAME); decode
    # workers never offload. Pods without the port give no target.
    ("kvbm", ("worker", "prefill"), "kvbm-metrics"),
)
SECRET_REFRESH = "1h"


@dataclass(frozen=True)
class PlatformInputs:
    """What CloudFormation fills in (tokens in the stack, readable stand-ins for review)."""

    file_system_id: str


@dataclass(frozen=True)
class PlatformCharts:
    namespaces: cdk8s.Chart
    secrets: cdk8s.Chart
    model_cache: cdk8s.Chart
    # Prometheus' StorageClass is applied before kube-prometheus-stack; the monitors after it.
    prometheus_storage: cdk8s.Chart | None
    monitoring: cdk8s.Chart | None

    def all(self) -> list[cdk8s.Chart]:
        charts = [self.namespaces, self.secrets, self.model_cache]
        return charts + [c for c in (self.prometheus_storage, self.monitoring) if c is not None]


def _meta(name: str, namespace: str | None = None, labels: dict | None = None) -> k8s.ObjectMeta:
    return k8s.ObjectMeta(name=name, namespace=namespace, labels=labels)


# Why a namespace we create cannot enforce Pod Security "restricted" (None: it can). Every
# level below restricted keeps warn/audit at restricted (k8s_charts/pod_security.py).
MONITORING_PSA_REASON = (
    "kube-prometheus-stack's prometheus-node-exporter DaemonSet (enabled by default) uses "
    "hostNetwork, hostPID and hostPath mounts of / and /proc, which only privileged admits"
)
DYNAMO_SYSTEM_PSA_REASON = (
    "dynamo-platform documents no Pod Security level, and its bundled NATS chart sets no "
    "securityContext (no runAsNonRoot, seccompProfile or dropped capabilities), which "
    "restricted requires; none of its pods asks for host namespaces, hostPath or privilege, "
    "which baseline forbids"
)


def namespace_pod_security(cfg: DeploymentConfig) -> dict[str, tuple[str, str | None]]:
    """Namespace -> (enforce level, reason when below restricted), for every namespace we cause
    to exist. The Helm releases installed into them (Dynamo platform, External Secrets,
    kube-prometheus-stack, DCGM exporter) do not create them but wait for this chart
    (stacks/platform_stack.py). kube-system (Karpenter, device plugins) is EKS's, not ours."""
    levels: dict[str, tuple[str, str | None]] = {
        # EFA workers included: they add no capability (k8s_charts/pod_security.py).
        INFERENCE_NAMESPACE: ("restricted", None),
        DYNAMO_SYSTEM_NAMESPACE: ("baseline", DYNAMO_SYSTEM_PSA_REASON),
        # The chart's controller, webhook and cert controller all default to restricted's
        # securityContext (non-root uid 1000, no privilege escalation, drop ALL, read-only
        # root, RuntimeDefault seccomp: external-secrets deploy/charts/external-secrets/
        # values.yaml), and external_secrets_values() does not override it.
        EXTERNAL_SECRETS_NAMESPACE: ("restricted", None),
    }
    if cfg.platform.monitoring.enabled:
        levels[MONITORING_NAMESPACE] = ("privileged", MONITORING_PSA_REASON)
    return levels


def namespaces_chart(app: cdk8s.App, cfg: DeploymentConfig) -> cdk8s.Chart:
    chart = cdk8s.Chart(app, "platform-namespaces")
    for name, (enforce, reason) in namespace_pod_security(cfg).items():
        k8s.KubeNamespace(
            chart,
            name,
            metadata=k8s.ObjectMeta(
                name=name,
                labels=psa_labels(enforce, reason=reason),
                annotations={PSA_REASON_ANNOTATION: reason} if reason else None,
            ),
        )
    return chart


def secrets_chart(app: cdk8s.App, cfg: DeploymentConfig) -> cdk8s.Chart:
    """Secrets Manager -> Kubernetes Secrets. No secret value appears here or in a template."""
    chart = cdk8s.Chart(app, "platform-secrets")
    consumers = [INFERENCE_NAMESPACE]
    if cfg.platform.monitoring.enabled:
        consumers.append(MONITORING_NAMESPACE)
    eso.ClusterSecretStore(
        chart,
        "store",
        metadata=cdk8s.ApiObjectMetadata(name=CLUSTER_SECRET_STORE),
        spec=eso.ClusterSecretStoreSpec(
            # No auth block: the controller's own Pod Identity role, which may read only
            # this deployment's secrets.
            provider=eso.ClusterSecretStoreSpecProvider(
                aws=eso.ClusterSecretStoreSpecProviderAws(
                    service=eso.ClusterSecretStoreSpecProviderAwsService.SECRETS_MANAGER,
                    region=cfg.region,
                )
            ),
            # Only the namespaces that consume a synced secret may use the store.
            conditions=[eso.ClusterSecretStoreSpecConditions(namespaces=consumers)],
        ),
    )
    _synced_secret(
        chart,
        HF_TOKEN_SECRET,
        INFERENCE_NAMESPACE,
        [(HF_TOKEN_KEY, hf_token_secret_name(cfg.cluster.name), None)],
    )
    if cfg.platform.monitoring.enabled:
        remote = grafana_admin_secret_name(cfg.cluster.name)
        _synced_secret(
            chart,
            GRAFANA_ADMIN_SECRET,
            MONITORING_NAMESPACE,
            [(key, remote, key) for key in (GRAFANA_ADMIN_USER_KEY, GRAFANA_ADMIN_PASSWORD_KEY)],
        )
    if cfg.platform.monitoring.alert_webhook:
        _synced_secret(
            chart,
            ALERT_WEBHOOK_SECRET,
            MONITORING_NAMESPACE,
            [(ALERT_WEBHOOK_KEY, alert_webhook_secret_name(cfg.cluster.name), None)],
        )
    return chart


def _synced_secret(
    chart: cdk8s.Chart, name: str, namespace: str, data: list[tuple[str, str, str | None]]
) -> eso.ExternalSecret:
    """A Kubernetes Secret `name` kept in sync from Secrets Manager through the cluster store;
    `data` is (key in the Secret, Secrets Manager secret, JSON property or None)."""
    return eso.ExternalSecret(
        chart,
        name,
        metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace),
        spec=eso.ExternalSecretSpec(
            refresh_interval=SECRET_REFRESH,
            secret_store_ref=eso.ExternalSecretSpecSecretStoreRef(
                name=CLUSTER_SECRET_STORE,
                kind=eso.ExternalSecretSpecSecretStoreRefKind.CLUSTER_SECRET_STORE,
            ),
            target=eso.ExternalSecretSpecTarget(
                name=name, creation_policy=eso.ExternalSecretSpecTargetCreationPolicy.OWNER
            ),
            data=[
                eso.ExternalSecretSpecData(
                    secret_key=key,
                    remote_ref=eso.ExternalSecretSpecDataRemoteRef(key=remote, property=prop),
                )
                for key, remote, prop in data
            ],
        ),
    )


def model_cache_chart(app: cdk8s.App, cfg: DeploymentConfig, *, file_system_id: str) -> cdk8s.Chart:
    chart = cdk8s.Chart(app, "platform-model-cache")
    _storage_class(
        chart,
        cfg,
        MODEL_CACHE_STORAGE_CLASS,
        "efs.csi.aws.com",
        {
            # One EFS access point per volume: its own directory and POSIX identity, so any
            # container user can read and write the cache.
            "provisioningMode": "efs-ap",
            "fileSystemId": file_system_id,
            "directoryPerms": "700",
            "basePath": "/dynamo",
        },
        binding="Immediate",
    )
    k8s.KubePersistentVolumeClaim(
        chart,
        "pvc",
        metadata=_meta(MODEL_CACHE_PVC, INFERENCE_NAMESPACE),
        spec=k8s.PersistentVolumeClaimSpec(
            access_modes=["ReadWriteMany"],
            storage_class_name=MODEL_CACHE_STORAGE_CLASS,
            resources=k8s.VolumeResourceRequirements(
                requests={"storage": k8s.Quantity.from_string(f"{cfg.platform.model_cache.size_gib}Gi")}
            ),
        ),
    )
    return chart


def prometheus_storage_chart(app: cdk8s.App, cfg: DeploymentConfig) -> cdk8s.Chart:
    """gp3 volumes for Prometheus' TSDB: block storage, because Prometheus does not support
    NFS (the EFS model cache) for its data."""
    chart = cdk8s.Chart(app, "platform-prometheus-storage")
    _storage_class(
        chart,
        cfg,
        EBS_STORAGE_CLASS,
        "ebs.csi.aws.com",
        {"type": "gp3", "encrypted": "true"},
        # The volume is made in the zone of the node the pod is scheduled to.
        binding="WaitForFirstConsumer",
        expandable=True,
    )
    return chart


def _storage_class(
    chart: cdk8s.Chart,
    cfg: DeploymentConfig,
    name: str,
    provisioner: str,
    parameters: dict[str, str],
    *,
    binding: str,
    expandable: bool = False,
) -> k8s.KubeStorageClass:
    return k8s.KubeStorageClass(
        chart,
        "storage-class",
        metadata=_meta(name),
        provisioner=provisioner,
        parameters=parameters,
        # Retained environments keep a volume when its claim goes: hundreds of GB of
        # weights, or the metrics history.
        reclaim_policy="Retain" if cfg.retain_data else "Delete",
        volume_binding_mode=binding,
        allow_volume_expansion=expandable or None,
    )


def _graph_relabelings() -> list[prom.PodMonitorSpecPodMetricsEndpointsRelabelings]:
    """Copy the operator's pod labels onto every series: the dashboard filters by `graph`,
    the Planner by `dynamo_namespace` (as upstream's monitors do)."""

    def from_label(label: str, target: str) -> prom.PodMonitorSpecPodMetricsEndpointsRelabelings:
        source = "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)
        return prom.PodMonitorSpecPodMetricsEndpointsRelabelings(source_labels=[source], target_label=target)

    return [
        from_label(DYNAMO_GRAPH_NAME, "graph"),
        from_label(DYNAMO_COMPONENT_TYPE, "component_type"),
        from_label(DYNAMO_NAMESPACE_LABEL, PLANNER_NAMESPACE_LABEL),
    ]


def _monitoring_meta(name: str) -> cdk8s.ApiObjectMetadata:
    """A monitor or rule in the monitoring namespace, with the label Prometheus selects by."""
    return cdk8s.ApiObjectMetadata(
        name=name, namespace=MONITORING_NAMESPACE, labels=dict(MONITOR_SELECTOR_LABELS)
    )


def monitoring_chart(app: cdk8s.App, cfg: DeploymentConfig) -> cdk8s.Chart:
    chart = cdk8s.Chart(app, "platform-monitoring")
    interval = f"{cfg.platform.monitoring.scrape_interval_seconds}s"
    for component, types, port in DYNAMO_MONITORS:
        prom.PodMonitor(
            chart,
            f"dynamo-{component}",
            metadata=_monitoring_meta(f"dynamo-{component}"),
            spec=prom.PodMonitorSpec(
                selector=prom.PodMonitorSpecSelector(
                    match_labels={DYNAMO_METRICS_ENABLED: "true"},
                    match_expressions=[
                        prom.PodMonitorSpecSelectorMatchExpressions(
                            key=DYNAMO_COMPONENT_TYPE, operator="In", values=list(types)
                        )
                    ],
                ),
                namespace_selector=prom.PodMonitorSpecNamespaceSelector(match_names=[INFERENCE_NAMESPACE]),
                pod_metrics_endpoints=[
                    prom.PodMonitorSpecPodMetricsEndpoints(
                        port=port,
                        path="/metrics",
                        interval=interval,
                        # Workers label their own series with dynamo_namespace; keep theirs.
                        honor_labels=True,
                        relabelings=_graph_relabelings(),
                    )
                ],
            ),
        )
    if cfg.platform.monitoring.dcgm_exporter:
        prom.ServiceMonitor(
            chart,
            "dcgm-exporter",
            metadata=_monitoring_meta("dcgm-exporter"),
            spec=prom.ServiceMonitorSpec(
                # Labels the dcgm-exporter chart puts on its Service (selectorLabels helper).
                selector=prom.ServiceMonitorSpecSelector(
                    match_labels={
                        "app.kubernetes.io/name": "dcgm-exporter",
                        "app.kubernetes.io/instance": DCGM_EXPORTER_RELEASE,
                    }
                ),
                namespace_selector=prom.ServiceMonitorSpecNamespaceSelector(
                    match_names=[MONITORING_NAMESPACE]
                ),
                endpoints=[
                    prom.ServiceMonitorSpecEndpoints(
                        port="metrics",
                        path="/metrics",
                        interval=interval,
                        # Keep DCGM's pod/namespace labels: they name the pod using the GPU,
                        # not the exporter.
                        honor_labels=True,
                        relabelings=[
                            prom.ServiceMonitorSpecEndpointsRelabelings(
                                source_labels=["__meta_kubernetes_pod_node_name"],
                                target_label="node",
                            )
                        ],
                    )
                ],
            ),
        )
    # The Dynamo operator's metrics (its dashboard). The chart declares no container port for
    # them, so the address is set from the pod IP; `honorLabels` keeps the metrics' own
    # `namespace` label (the namespace of the resource reconciled, which the dashboard filters).
    relabel = prom.PodMonitorSpecPodMetricsEndpointsRelabelings
    prom.PodMonitor(
        chart,
        "dynamo-operator",
        metadata=_monitoring_meta("dynamo-operator"),
        spec=prom.PodMonitorSpec(
            selector=prom.PodMonitorSpecSelector(match_labels={"control-plane": "controller-manager"}),
            namespace_selector=prom.PodMonitorSpecNamespaceSelector(match_names=[DYNAMO_SYSTEM_NAMESPACE]),
            pod_metrics_endpoints=[
                prom.PodMonitorSpecPodMetricsEndpoints(
                    path="/metrics",
                    interval=interval,
                    honor_labels=True,
                    relabelings=[
                        relabel(
                            source_labels=["__meta_kubernetes_pod_container_name"],
                            regex="manager",
                            action=prom.PodMonitorSpecPodMetricsEndpointsRelabelingsAction.KEEP,
                        ),
                        relabel(
                            source_labels=["__meta_kubernetes_pod_ip"],
                            target_label="__address__",
                            replacement=f"$1:{OPERATOR_METRICS_PORT}",
                        ),
                    ],
                )
            ],
        ),
    )
    # Karpenter's controller metrics (launch failures alert); the chart's own ServiceMonitor
    # stays off, as for DCGM, so labels and selection are ours and tested.
    prom.ServiceMonitor(
        chart,
        "karpenter",
        metadata=_monitoring_meta("karpenter"),
        spec=prom.ServiceMonitorSpec(
            selector=prom.ServiceMonitorSpecSelector(
                match_labels={
                    "app.kubernetes.io/name": "karpenter",
                    "app.kubernetes.io/instance": KARPENTER_RELEASE,
                }
            ),
            namespace_selector=prom.ServiceMonitorSpecNamespaceSelector(match_names=[KARPENTER_NAMESPACE]),
            endpoints=[
                prom.ServiceMonitorSpecEndpoints(port="http-metrics", path="/metrics", interval=interval)
            ],
        ),
    )
    prom.PrometheusRule(
        chart,
        "alerts",
        metadata=_monitoring_meta(RULE_NAME),
        spec=prom.PrometheusRuleSpec(
            groups=[
                prom.PrometheusRuleSpecGroups(
                    name="dynamo-eks",
                    rules=[
                        prom.PrometheusRuleSpecGroupsRules(
                            alert=alert.name,
                            expr=prom.PrometheusRuleSpecGroupsRulesExpr.from_string(alert.expr),
                            for_=alert.for_,
                            labels={"severity": alert.severity},
                            annotations={"summary": alert.summary, "runbook": alert.runbook},
                        )
                        for alert in alerts(cfg)
                    ],
                )
            ]
        ),
    )
    _dashboard(chart, "dashboard", "grafana-dashboard-dynamo", "dynamo.json", dashboard())
    # Ours for what upstream's do not cover with 1.6.1 names: Planner, disaggregation, SGLang, cost.
    for ours in our_dashboards(cfg):
        _dashboard(chart, ours.config_map, ours.config_map, ours.key, ours.model)
    # Upstream's dashboards (vendored verbatim, fixed for this platform when rendered).
    for upstream in UPSTREAM_DASHBOARDS:
        _dashboard(chart, upstream.config_map, upstream.config_map, upstream.file, upstream.model())
    return chart


def _dashboard(chart: cdk8s.Chart, construct_id: str, name: str, key: str, model: dict) -> None:
    """A ConfigMap the Grafana sidecar provisions as a dashboard (label from the chart values)."""
    k8s.KubeConfigMap(
        chart,
        construct_id,
        metadata=_meta(
            name, MONITORING_NAMESPACE, labels={GRAFANA_DASHBOARD_LABEL[0]: GRAFANA_DASHBOARD_LABEL[1]}
        ),
        data={key: json.dumps(model, indent=1, sort_keys=True)},
    )


def build_charts(app: cdk8s.App, cfg: DeploymentConfig, inputs: PlatformInputs) -> PlatformCharts:
    return PlatformCharts(
        namespaces=namespaces_chart(app, cfg),
        secrets=secrets_chart(app, cfg),
        model_cache=model_cache_chart(app, cfg, file_system_id=inputs.file_system_id),
        prometheus_storage=(prometheus_storage_chart(app, cfg) if cfg.platform.monitoring.enabled else None),
        monitoring=monitoring_chart(app, cfg) if cfg.platform.monitoring.enabled else None,
    )


def build(app: cdk8s.App, cfg: DeploymentConfig, inputs: PlatformInputs) -> list[cdk8s.Chart]:
    return build_charts(app, cfg, inputs).all()


def review_inputs(cfg: DeploymentConfig) -> PlatformInputs:
    return PlatformInputs(file_system_id="fs-MODELCACHE")
