"""Names of the log and trace pipelines (platform.logs, platform.tracing) that config, charts,
stacks and the README commands share. A leaf beside config/names.py: it imports only that."""

from __future__ import annotations

from config.names import MONITORING_NAMESPACE

# Tempo: the release name is also the chart's fullnameOverride, so the StatefulSet and its
# Service are both `tempo` (grafana-community/helm-charts charts/tempo templates/_helpers.tpl
# "tempo.fullname"). Ports are the chart's defaults (tempo.receivers.otlp.protocols.grpc and
# tempo.server.http_listen_port), checked against the vendored values.yaml by
# tests/test_observability_values.py.
TEMPO_RELEASE = "tempo"
TEMPO_OTLP_GRPC_PORT = 4317
TEMPO_HTTP_PORT = 3200
# Grafana datasource uid of Tempo, fixed so links and dashboards can name it.
TEMPO_DATASOURCE_UID = "tempo"

# Fluent Bit runs in kube-system: it is a node agent that must read the host's /var/log
# (hostPath, which Pod Security baseline forbids), like the device plugins there, and it does
# not depend on monitoring being on (so not the monitoring namespace).
FLUENT_BIT_RELEASE = "aws-for-fluent-bit"
FLUENT_BIT_NAMESPACE = "kube-system"
# Fixed name: the Pod Identity association is made for exactly this account.
FLUENT_BIT_SERVICE_ACCOUNT = "aws-for-fluent-bit"


def container_log_group_name(cluster_name: str) -> str:
    """CloudWatch log group of every container's log, beside EKS' /aws/eks/<cluster>/cluster."""
    return f"/aws/eks/{cluster_name}/containers"


def tempo_otlp_grpc_url() -> str:
    return f"http://{TEMPO_RELEASE}.{MONITORING_NAMESPACE}.svc.cluster.local:{TEMPO_OTLP_GRPC_PORT}"


def tempo_query_url() -> str:
    return f"http://{TEMPO_RELEASE}.{MONITORING_NAMESPACE}.svc.cluster.local:{TEMPO_HTTP_PORT}"
