"""Kubernetes objects of the optional trace pipeline (platform.tracing), as a cdk8s chart.

Tempo itself is a Helm release (stacks/observability.py); what is ours is how Grafana finds
it: a datasource ConfigMap that kube-prometheus-stack's Grafana sidecar provisions, like the
dashboards, so turning tracing on or off never upgrades the kube-prometheus-stack release.
The log pipeline (platform.logs) has no object of its own here: Fluent Bit is a Helm release
and its log group a CloudFormation resource (stacks/observability.py).
"""

from __future__ import annotations

import cdk8s
import yaml
from cdk8s_plus_36 import k8s

from config.names import MONITORING_NAMESPACE, TEMPO_DATASOURCE_UID, tempo_query_url
from config.schema import DeploymentConfig

# kube-prometheus-stack's Grafana sidecar provisions every ConfigMap in Grafana's namespace
# with this label as datasources (grafana.sidecar.datasources.label/labelValue, checked against
# the vendored values by tests/test_observability_values.py).
GRAFANA_DATASOURCE_LABEL = ("grafana_datasource", "1")
TEMPO_DATASOURCE_CONFIG_MAP = "grafana-datasource-tempo"
# Grafana's id of its built-in Tempo datasource plugin (tests/data/upstream/grafana-tempo-plugin-facts.json).
TEMPO_DATASOURCE_TYPE = "tempo"


def tempo_datasource() -> dict:
    """A Grafana provisioning file (apiVersion 1) with Tempo's query API as a datasource."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Tempo",
                "type": TEMPO_DATASOURCE_TYPE,
                "uid": TEMPO_DATASOURCE_UID,
                "access": "proxy",
                "url": tempo_query_url(),
                # Provisioned: edits belong in this file, like the dashboards'.
                "editable": False,
            }
        ],
    }


def tracing_chart(app: cdk8s.App, cfg: DeploymentConfig) -> cdk8s.Chart | None:
    if not cfg.platform.tracing.enabled:
        return None
    chart = cdk8s.Chart(app, "platform-tracing")
    k8s.KubeConfigMap(
        chart,
        "tempo-datasource",
        metadata=k8s.ObjectMeta(
            name=TEMPO_DATASOURCE_CONFIG_MAP,
            namespace=MONITORING_NAMESPACE,
            labels={GRAFANA_DATASOURCE_LABEL[0]: GRAFANA_DATASOURCE_LABEL[1]},
        ),
        data={"tempo.yaml": yaml.safe_dump(tempo_datasource(), sort_keys=False)},
    )
    return chart


def build(app: cdk8s.App, cfg: DeploymentConfig, inputs: None) -> list[cdk8s.Chart]:
    chart = tracing_chart(app, cfg)
    return [chart] if chart is not None else []


def review_inputs(cfg: DeploymentConfig) -> None:
    return None
