"""Helm values of External Secrets, kube-prometheus-stack and DCGM exporter."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.names import GPU_TAINT_KEY, GRAFANA_ADMIN_SECRET, PROMETHEUS_RELEASE, PROMETHEUS_SERVICE
from config.platform import MonitoringConfig
from k8s_charts.platform_helm_values import (
    GPU_NODE_LABEL,
    KPS_SUBCHART_KEYS,
    MONITOR_SELECTOR_LABELS,
    dcgm_exporter_values,
    external_secrets_values,
    kube_prometheus_stack_values,
)
from tests.tools.helm_values import nested, unknown_keys, without

REPO = Path(__file__).resolve().parents[1]
KPS_UPSTREAM = yaml.safe_load(
    (REPO / "tests/data/upstream/kube-prometheus-stack-88.5.3-values.yaml").read_text()
)


def test_every_kube_prometheus_stack_key_exists_upstream():
    values = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)
    assert unknown_keys(without(values, KPS_SUBCHART_KEYS), KPS_UPSTREAM) == []


def test_subchart_exceptions_are_absent_upstream():
    for path in KPS_SUBCHART_KEYS:
        assert unknown_keys(nested(path), KPS_UPSTREAM) != [], f"{path} is in kps values now"


def test_prometheus_selectors_are_explicit_and_retention_from_config():
    spec = kube_prometheus_stack_values(
        MonitoringConfig(
            prometheus_retention_days=3, prometheus_retention_size_gib=5, scrape_interval_seconds=30
        ),
        retain_data=False,
    )["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "3d" and spec["retentionSize"] == "5GB" and spec["scrapeInterval"] == "30s"
    for kind in ("serviceMonitor", "podMonitor"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {"matchLabels": MONITOR_SELECTOR_LABELS}
        assert spec[f"{kind}NamespaceSelector"] == {}


def test_service_names_follow_the_release():
    values = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)
    assert values["fullnameOverride"] == PROMETHEUS_RELEASE
    assert f"{PROMETHEUS_RELEASE}-prometheus" == PROMETHEUS_SERVICE


def test_grafana_admin_comes_from_the_synced_secret():
    grafana = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["grafana"]
    assert grafana["admin"]["existingSecret"] == GRAFANA_ADMIN_SECRET
    assert "adminPassword" not in grafana
    assert grafana["sidecar"]["dashboards"]["label"] == "grafana_dashboard"


def test_dcgm_runs_only_on_gpu_nodes_and_tolerates_the_gpu_taint():
    values = dcgm_exporter_values()
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    (term,) = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [{"key": GPU_NODE_LABEL, "operator": "Gt", "values": ["0"]}]
    assert values["serviceMonitor"] == {"enabled": False}  # ours replaces it


def test_dcgm_sees_every_gpu_on_bottlerocket_only():
    """Bottlerocket honours NVIDIA_VISIBLE_DEVICES only for containers with CAP_SYS_ADMIN (the
    chart's default securityContext, which we must not override); AL2023 needs nothing."""
    from config.loader import load_config

    cfg = load_config(REPO / "config/examples/custom-pools-bottlerocket.yaml")
    assert cfg.karpenter.use_bottlerocket and cfg.platform.monitoring.dcgm_exporter
    values = dcgm_exporter_values(bottlerocket=cfg.karpenter.use_bottlerocket)
    assert values["extraEnv"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]
    assert "extraEnv" not in dcgm_exporter_values(bottlerocket=False)
    for bottlerocket in (True, False):
        values = dcgm_exporter_values(bottlerocket=bottlerocket)
        assert "securityContext" not in values and "podSecurityContext" not in values


def test_external_secrets_service_account_matches_the_pod_identity_association():
    values = external_secrets_values()
    assert values["installCRDs"] is True
    assert values["serviceAccount"] == {"create": True, "name": "external-secrets"}


def test_grafana_is_stateless_by_design():
    """No volume: dashboards, datasource and login are all provisioned, so a new pod loses nothing
    but ad-hoc UI state (which cannot be saved on provisioned dashboards)."""
    grafana = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["grafana"]
    assert grafana["persistence"] == {"enabled": False}
    assert grafana["sidecar"]["dashboards"]["provider"]["allowUiUpdates"] is False
    assert grafana["sidecar"]["datasources"] == {"enabled": True, "defaultDatasourceEnabled": True}
    assert grafana["admin"]["existingSecret"] == GRAFANA_ADMIN_SECRET
