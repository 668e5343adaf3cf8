"""Alerting rules (one PrometheusRule), as data: what fires, for how long, and where the
runbook line is (README "Alerts"). Every metric an expression names must be one the pinned
exporters export (tests/test_alerts.py, the same check as the dashboards)."""

from __future__ import annotations

from dataclasses import dataclass

from config.names import INFERENCE_NAMESPACE
from config.schema import DeploymentConfig

RULE_NAME = "dynamo-eks-alerts"
# A GPU pod is one requesting the device plugin's resource (kube-state-metrics writes the
# resource name with `_` for `.` and `/`).
GPU_RESOURCE = "nvidia_com_gpu"
# DCGM reports the GPU's die temperature; the default counters carry no throttle-reason or
# thermal-violation field, so sustained heat near the slowdown point stands in for thermal
# throttling (data-centre GPUs start slowing down in the mid-80s °C).
GPU_HOT_CELSIUS = 85
ERROR_RATIO = 0.05
KV_CACHE_FULL = 0.95
QUEUED_REQUESTS = 10


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str

    @property
    def runbook(self) -> str:
        return f'README.md section "Alerts", {self.name}'


def _latency(name: str, metric: str, graph: str, target_ms: float, what: str) -> Alert:
    seconds = target_ms / 1000
    return Alert(
        f"{name}",
        f'histogram_quantile(0.9, sum by (le, graph) (rate({metric}_bucket{{graph="{graph}"}}[5m])))'
        f" > {seconds:g}",
        "10m",
        "warning",
        f"p90 {what} of graph {graph} above its {target_ms:g} ms target for 10 minutes",
    )


def graph_alerts(cfg: DeploymentConfig) -> list[Alert]:
    """Latency targets per graph: its Planner's ttft_ms / itl_ms (the defaults when unset)."""
    alerts: list[Alert] = []
    for graph in cfg.graphs:
        alerts += [
            _latency(
                "DynamoTimeToFirstTokenHigh",
                "dynamo_frontend_time_to_first_token_seconds",
                graph.name,
                graph.planner.ttft_ms,
                "time to first token",
            ),
            _latency(
                "DynamoInterTokenLatencyHigh",
                "dynamo_frontend_inter_token_latency_seconds",
                graph.name,
                graph.planner.itl_ms,
                "inter-token latency",
            ),
        ]
    return alerts


COMMON_ALERTS = (
    Alert(
        "DynamoErrorRatioHigh",
        f'sum by (graph) (rate(dynamo_frontend_requests_total{{status="error"}}[5m]))'
        f" / sum by (graph) (rate(dynamo_frontend_requests_total[5m])) > {ERROR_RATIO}",
        "10m",
        "critical",
        f"more than {ERROR_RATIO:.0%} of a graph's requests fail",
    ),
    Alert(
        "DynamoQueueGrowing",
        f"sum by (graph) (dynamo_frontend_queued_requests) > {QUEUED_REQUESTS}"
        " and deriv(sum by (graph) (dynamo_frontend_queued_requests)[10m:1m]) > 0",
        "10m",
        "warning",
        "requests queue at a graph's frontend and the queue keeps growing",
    ),
    Alert(
        "DynamoKVCacheSaturated",
        f"max by (graph, pod) (dynamo_component_gpu_cache_usage_percent) > {KV_CACHE_FULL}",
        "15m",
        "warning",
        f"a worker's GPU KV cache is over {KV_CACHE_FULL:.0%} full",
    ),
    Alert(
        "GPUXidError",
        "max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",
        "0m",
        "critical",
        "a GPU reported an XID error (driver or hardware fault)",
    ),
    Alert(
        "GPUThermalThrottling",
        f"max by (node, gpu) (DCGM_FI_DEV_GPU_TEMP) >= {GPU_HOT_CELSIUS}",
        "10m",
        "warning",
        f"a GPU has run at {GPU_HOT_CELSIUS} °C or hotter for 10 minutes",
    ),
    Alert(
        "ModelPrefetchJobFailed",
        f'max by (namespace, job_name) (kube_job_failed{{namespace="{INFERENCE_NAMESPACE}",'
        'job_name=~"model-prefetch-.*",condition="true"}) > 0',
        "0m",
        "warning",
        "a model prefetch Job gave up",
    ),
    Alert(
        "GPUPodPending",
        f'max by (namespace, pod) (kube_pod_status_phase{{namespace="{INFERENCE_NAMESPACE}",phase="Pending"}})'
        f" > 0 and on (namespace, pod) max by (namespace, pod) "
        f'(kube_pod_container_resource_requests{{resource="{GPU_RESOURCE}"}}) > 0',
        "10m",
        "warning",
        "a pod asking for GPUs has been Pending for 10 minutes (no capacity)",
    ),
    Alert(
        "KarpenterLaunchFailures",
        "sum by (capacity_type, zone, reason) "
        "(increase(karpenter_cloudprovider_instance_launch_failures_total[15m])) > 0",
        "0m",
        "warning",
        "Karpenter could not launch instances (capacity, quota or configuration)",
    ),
)


def alerts(cfg: DeploymentConfig) -> list[Alert]:
    return graph_alerts(cfg) + list(COMMON_ALERTS)
