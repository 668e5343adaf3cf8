"""Helm values for the platform's third-party charts: External Secrets Operator,
kube-prometheus-stack and DCGM exporter. Pure functions of config.

Keys set on kube-prometheus-stack are checked against its vendored values.yaml
(tests/test_platform_helm_values.py); keys that belong to its subcharts are listed in
KPS_SUBCHART_KEYS with where they are documented.
"""

from __future__ import annotations

from config.names import (
    EBS_STORAGE_CLASS,
    EXTERNAL_SECRETS_SERVICE_ACCOUNT,
    GPU_TAINT_KEY,
    GRAFANA_ADMIN_SECRET,
    PROMETHEUS_RELEASE,
)
from config.platform import MonitoringConfig
from k8s_charts.placement import SYSTEM_TOLERATIONS, system_node_affinity

# Label every ServiceMonitor/PodMonitor needs for our Prometheus to pick it up. The chart's
# own monitors carry it too (`release: <release name>`).
# Prometheus scrapes only monitors with this label: ours. PodMonitors the Dynamo operator
# may create for the same pods lack it, so no pod is scraped twice (one source of series).
MONITOR_SELECTOR_LABELS = {"release": PROMETHEUS_RELEASE}
GRAFANA_DASHBOARD_LABEL = ("grafana_dashboard", "1")
GRAFANA_ADMIN_USER_KEY = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY = "admin-password"
# Karpenter labels every node it launches with the instance type's GPU count.
GPU_NODE_LABEL = "karpenter.k8s.aws/instance-gpu-count"

KPS_SUBCHART_KEYS = {
    "grafana.tolerations": "grafana chart values.yaml (tolerations: [])",
    "grafana.affinity": "grafana chart values.yaml (affinity: {})",
    "kube-state-metrics.tolerations": "kube-state-metrics chart values.yaml (tolerations: [])",
    "kube-state-metrics.affinity": "kube-state-metrics chart values.yaml (affinity: {})",
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
        # No receivers are configured; alerts stay visible in Prometheus' /alerts page.
        "alertmanager": {"enabled": False},
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
                            "resources": {
                                "requests": {"storage": f"{monitoring.prometheus_storage_gib}Gi"}
                            },
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
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": GRAFANA_DASHBOARD_LABEL[0],
                    "labelValue": GRAFANA_DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                }
            },
            **_system(),
        },
        "kube-state-metrics": _system(),
    }


def dcgm_exporter_values() -> dict:
    return {
        # Our own ServiceMonitor (`monitoring_chart` in k8s_charts/platform_charts.py) replaces
        # the chart's, so its labels and relabelings are validated and tested with the rest.
        "serviceMonitor": {"enabled": False},
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": GPU_NODE_LABEL, "operator": "Gt", "values": ["0"]}
                            ]
                        }
                    ]
                }
            }
        },
    }
