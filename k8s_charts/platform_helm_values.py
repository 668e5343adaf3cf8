"""Helm values for the platform's third-party charts: External Secrets Operator,
kube-prometheus-stack, DCGM exporter, and the optional log and trace pipelines (aws-for-fluent-bit,
Tempo). Pure functions of config.

Keys set on kube-prometheus-stack are checked against its vendored values.yaml
(tests/test_platform_helm_values.py); keys that belong to its subcharts are listed in
KPS_SUBCHART_KEYS with where they are documented.
"""

from __future__ import annotations

from config.names import (
    ALERT_WEBHOOK_KEY,
    ALERT_WEBHOOK_SECRET,
    EBS_STORAGE_CLASS,
    EXTERNAL_SECRETS_SERVICE_ACCOUNT,
    FLUENT_BIT_RELEASE,
    FLUENT_BIT_SERVICE_ACCOUNT,
    GPU_TAINT_KEY,
    GRAFANA_ADMIN_SECRET,
    PROMETHEUS_RELEASE,
    TEMPO_RELEASE,
)
from config.platform import MonitoringConfig, TracingConfig
from k8s_charts.placement import SYSTEM_TOLERATIONS, system_node_affinity

# Label every ServiceMonitor/PodMonitor needs for our Prometheus to pick it up. The chart's
# own monitors carry it too (`release: <release name>`).
# Prometheus scrapes only monitors with this label: ours. PodMonitors the Dynamo operator
# may create for the same pods lack it, so no pod is scraped twice (one source of series).
MONITOR_SELECTOR_LABELS = {"release": PROMETHEUS_RELEASE}
GRAFANA_DASHBOARD_LABEL = ("grafana_dashboard", "1")
GRAFANA_ADMIN_USER_KEY = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY = "admin-password"
# The chart mounts each Secret in alertmanagerSpec.secrets at /etc/alertmanager/secrets/<name>/.
ALERT_WEBHOOK_URL_FILE = f"/etc/alertmanager/secrets/{ALERT_WEBHOOK_SECRET}/{ALERT_WEBHOOK_KEY}"
# Karpenter labels every node it launches with the instance type's GPU count.
GPU_NODE_LABEL = "karpenter.k8s.aws/instance-gpu-count"

KPS_SUBCHART_KEYS = {
    "grafana.tolerations": "grafana chart values.yaml (tolerations: [])",
    "grafana.affinity": "grafana chart values.yaml (affinity: {})",
    "kube-state-metrics.tolerations": "kube-state-metrics chart values.yaml (tolerations: [])",
    "kube-state-metrics.affinity": "kube-state-metrics chart values.yaml (affinity: {})",
    "grafana.persistence.enabled": "grafana chart values.yaml (persistence.enabled: false)",
}


def _system() -> dict:
    return {"tolerations": SYSTEM_TOLERATIONS, "affinity": system_node_affinity()}


def external_secrets_values() -> dict:
    return {
        "installCRDs": True,
        # Fixed name: the Pod Identity association is made for exactly this account.
        "serviceAccount": {"create": True, "name": EXTERNAL_SECRETS_SERVICE_ACCOUNT},
        **_system(),
        "webhook": _system(),
        "certController": _system(),
    }


def kube_prometheus_stack_values(monitoring: MonitoringConfig, *, retain_data: bool) -> dict:
    selector = {"matchLabels": dict(MONITOR_SELECTOR_LABELS)}
    # The StatefulSet's volume goes with it unless data is retained (removal_policy).
    keep = "Retain" if retain_data else "Delete"
    return {
        # Fixed object names, so the Dynamo operator's prometheusEndpoint and the
        # port-forward commands need no lookup (config/names.py PROMETHEUS_SERVICE).
        "fullnameOverride": PROMETHEUS_RELEASE,
        "alertmanager": _alertmanager(monitoring),
        # EKS runs the control plane: etcd, scheduler and controller-manager are not
        # scrapable and kube-proxy binds its metrics to localhost, so their targets (and
        # alerts) would be permanently down.
        "kubeEtcd": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheusOperator": {
            **_system(),
            "admissionWebhooks": {"patch": {"tolerations": SYSTEM_TOLERATIONS}},
        },
        "prometheus": {
            "prometheusSpec": {
                **_system(),
                "retention": f"{monitoring.prometheus_retention_days}d",
                "retentionSize": f"{monitoring.prometheus_retention_size_gib}GB",
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": EBS_STORAGE_CLASS,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{monitoring.prometheus_storage_gib}Gi"}},
                        }
                    }
                },
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": keep, "whenScaled": "Retain"},
                "scrapeInterval": f"{monitoring.scrape_interval_seconds}s",
                # Explicit selectors (not the chart's implicit ones) so a test can prove
                # that every monitor we ship is selected.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelector": selector,
                "serviceMonitorNamespaceSelector": {},
                "podMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelector": selector,
                "podMonitorNamespaceSelector": {},
                # Our PrometheusRule (monitoring_chart) carries the same label.
                "ruleSelectorNilUsesHelmValues": False,
                "ruleSelector": selector,
                "ruleNamespaceSelector": {},
            }
        },
        "grafana": {
            # The admin password comes from Secrets Manager through External Secrets
            # (`secrets_chart` in k8s_charts/platform_charts.py); the chart generates none.
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_ADMIN_USER_KEY,
                "passwordKey": GRAFANA_ADMIN_PASSWORD_KEY,
            },
            # Stateless by design: every dashboard is a ConfigMap the sidecar provisions, the
            # Prometheus datasource is provisioned by the chart and the login comes from the
            # synced secret, so a new Grafana pod rebuilds everything and no volume is needed.
            # UI edits to provisioned dashboards cannot be saved (change the code instead).
            "persistence": {"enabled": False},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": GRAFANA_DASHBOARD_LABEL[0],
                    "labelValue": GRAFANA_DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                    "provider": {"allowUiUpdates": False},
                },
                "datasources": {"enabled": True, "defaultDatasourceEnabled": True},
            },
            **_system(),
        },
        "kube-state-metrics": _system(),
    }


def _alertmanager(monitoring: MonitoringConfig) -> dict:
    """Alertmanager on; alerts go to the webhook from Secrets Manager when configured, else
    to the chart's `null` receiver (visible in the Alertmanager UI, sent nowhere). The URL is
    read from the mounted Secret (`url_file`), so it is in no template or Helm value."""
    receivers: list[dict] = [{"name": "null"}]
    if monitoring.alert_webhook:
        receivers.append(
            {
                "name": "webhook",
                "webhook_configs": [{"url_file": ALERT_WEBHOOK_URL_FILE, "send_resolved": True}],
            }
        )
    return {
        "enabled": True,
        "config": {
            "route": {
                "receiver": "webhook" if monitoring.alert_webhook else "null",
                "group_by": ["alertname", "graph", "namespace"],
                # The chart's always-firing Watchdog proves the pipeline; it pages nobody.
                "routes": [{"matchers": ['alertname = "Watchdog"'], "receiver": "null"}],
            },
            "receivers": receivers,
        },
        "alertmanagerSpec": {
            **_system(),
            "secrets": [ALERT_WEBHOOK_SECRET] if monitoring.alert_webhook else [],
        },
    }


# Bottlerocket's NVIDIA runtime honours NVIDIA_VISIBLE_DEVICES only for containers it counts as
# privileged (visible-devices-envvar-when-unprivileged defaults to false; bottlerocket.dev
# .../api/settings/nvidia-container-runtime), and DCGM requests no nvidia.com/gpu, so it gets
# no device mounts. The toolkit counts CAP_SYS_ADMIN in the bounding set as privileged, and the
# chart adds SYS_ADMIN by default (NVIDIA/dcgm-exporter deployment/values.yaml
# `securityContext`); with it DCGM initialises on Bottlerocket (maintainer and reporter in
# bottlerocket-os/bottlerocket#3992). So on Bottlerocket we ask for every GPU explicitly
# (`extraEnv`) and keep the chart's SYS_ADMIN, rather than turning on the node-wide
# visible-devices-envvar-when-unprivileged, which would give all GPUs to any pod on the node
# that requests none but carries NVIDIA_VISIBLE_DEVICES=all (CUDA base images do).
DCGM_BOTTLEROCKET_ENV = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]


def dcgm_exporter_values(*, bottlerocket: bool = False) -> dict:
    values: dict = {
        # Our own ServiceMonitor (`monitoring_chart` in k8s_charts/platform_charts.py) replaces
        # the chart's, so its labels and relabelings are validated and tested with the rest.
        "serviceMonitor": {"enabled": False},
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_NODE_LABEL, "operator": "Gt", "values": ["0"]}]}
                    ]
                }
            }
        },
    }
    if bottlerocket:
        values["extraEnv"] = DCGM_BOTTLEROCKET_ENV
    return values


# Keys the Tempo chart's templates read that its values.yaml only mentions in a comment; each
# with the template line that reads it (tests/data/upstream/tempo-2.2.4-statefulset.yaml).
TEMPO_TEMPLATE_KEYS = {
    "persistence.storageClassName": "storageClassName: {{ .Values.persistence.storageClassName }}",
}


def tempo_values(tracing: TracingConfig, *, retain_data: bool) -> dict:
    """Tempo single binary on the system nodes, traces on an encrypted gp3 volume (the
    StorageClass the monitoring stack applies), kept for `retention_hours`."""
    return {
        # Fixed object names: the OTLP endpoint Dynamo pods get and Grafana's datasource URL
        # need no lookup (config/names.py).
        "fullnameOverride": TEMPO_RELEASE,
        "tempo": {
            "retention": f"{tracing.retention_hours}h",
            # A private cluster does not send usage reports to Grafana Labs.
            "reportingEnabled": False,
        },
        "persistence": {
            "enabled": True,
            "storageClassName": EBS_STORAGE_CLASS,
            "size": f"{tracing.storage_gib}Gi",
            # The chart's switch for the StatefulSet deleting its claim (whenDeleted: Delete):
            # with removal_policy destroy the volume goes with the stack, with retain it stays.
            "enableStatefulSetAutoDeletePVC": not retain_data,
        },
        **_system(),
    }


# Tolerate every taint: a log agent must run on every node that runs pods (system nodes'
# CriticalAddonsOnly, GPU and EFA taints, nodes being drained), or those pods' logs are lost.
FLUENT_BIT_TOLERATIONS = [{"operator": "Exists"}]
# containerd writes container logs under /var/log/pods (/var/log/containers links there); the
# chart's second default volume, /var/lib/docker/containers, is Docker's and absent on AL2023
# and Bottlerocket nodes. Writable: Fluent Bit keeps its read offsets in /var/log/flb_kube.db
# (the chart's input.db), so a restarted pod neither re-sends nor skips lines.
FLUENT_BIT_VOLUMES = [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
FLUENT_BIT_VOLUME_MOUNTS = [{"name": "varlog", "mountPath": "/var/log"}]


def fluent_bit_values(*, region: str, log_group_name: str) -> dict:
    """Every container's log to one CloudWatch log group that the Platform stack owns (its
    retention and removal follow config), so Fluent Bit never creates a group itself."""
    return {
        "fullnameOverride": FLUENT_BIT_RELEASE,
        # Fixed name: the Pod Identity association is made for exactly this account.
        "serviceAccount": {"create": True, "name": FLUENT_BIT_SERVICE_ACCOUNT},
        "cloudWatchLogs": {
            "enabled": True,
            "region": region,
            "logGroupName": log_group_name,
            # The chart writes auto_create_group only when true; Fluent Bit's default is off.
            "autoCreateGroup": False,
        },
        "tolerations": FLUENT_BIT_TOLERATIONS,
        "volumes": FLUENT_BIT_VOLUMES,
        "volumeMounts": FLUENT_BIT_VOLUME_MOUNTS,
    }
