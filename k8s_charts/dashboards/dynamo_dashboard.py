"""The Grafana dashboard for Dynamo, written as data (Grafana dashboard JSON model).

Labels it relies on are added by our monitors (k8s_charts/platform_charts.py): `graph` (the
DynamoGraphDeployment) on Dynamo metrics and `node` on DCGM metrics. Every metric name in a
query must be one the pinned exporters export (k8s_charts/dashboards/exported_metrics.py,
tests/test_metric_names.py). Upstream's dashboards are provisioned beside it
(upstream_dashboards.py); this one covers what upstream publishes nothing for here:
frontend, workers and GPUs per graph.
"""

from __future__ import annotations

from k8s_charts.dashboards.builder import GRAPH, RATE, Panel, Query, Row, build, graph_variable, quantiles

DASHBOARD_UID = "dynamo-eks-overview"


ROWS: tuple[Row, ...] = (
    (
        "Requests",
        (
            Panel(
                "Request rate by status",
                "Requests per second at the frontend, split into success and error.",
                (
                    Query(
                        f"sum by (status) (rate(dynamo_frontend_requests_total{{{GRAPH}}}[{RATE}]))",
                        "{{status}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Error ratio",
                "Share of frontend requests that ended in an error.",
                (
                    Query(
                        f'sum(rate(dynamo_frontend_requests_total{{{GRAPH},status="error"}}[{RATE}]))'
                        f" / sum(rate(dynamo_frontend_requests_total{{{GRAPH}}}[{RATE}]))",
                        "errors",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "In-flight and queued requests",
                "Requests being served and requests waiting for a worker.",
                (
                    Query(
                        f"sum by (graph) (dynamo_frontend_inflight_requests{{{GRAPH}}})",
                        "in flight {{graph}}",
                    ),
                    Query(f"sum by (graph) (dynamo_frontend_queued_requests{{{GRAPH}}})", "queued {{graph}}"),
                ),
            ),
        ),
    ),
    (
        "Latency",
        (
            Panel(
                "Time to first token",
                "p50/p90/p99 of the time from request arrival to the first output token.",
                quantiles("dynamo_frontend_time_to_first_token_seconds"),
                unit="s",
            ),
            Panel(
                "Inter-token latency",
                "p50/p90/p99 of the gap between consecutive output tokens.",
                quantiles("dynamo_frontend_inter_token_latency_seconds"),
                unit="s",
            ),
            Panel(
                "Request duration",
                "p50/p90/p99 of end-to-end request time.",
                quantiles("dynamo_frontend_request_duration_seconds"),
                unit="s",
            ),
        ),
    ),
    (
        "Throughput and KV cache",
        (
            Panel(
                "Output tokens per second",
                "Tokens generated per second, per graph.",
                (
                    Query(
                        f"sum by (graph) (rate(dynamo_frontend_output_tokens_total{{{GRAPH}}}[{RATE}]))",
                        "{{graph}}",
                    ),
                ),
                unit="short",
                width=12,
            ),
            Panel(
                "KV-cache usage per worker",
                "Fraction of each worker's GPU KV-cache blocks in use (0-1 despite the metric "
                "name; Dynamo 1.6.1 kvstats GPU_CACHE_USAGE_PERCENT).",
                (
                    Query(
                        f"max by (graph, pod) (dynamo_component_gpu_cache_usage_percent{{{GRAPH}}})",
                        "{{graph}} {{pod}}",
                    ),
                ),
                unit="percentunit",
                width=12,
            ),
        ),
    ),
    (
        "GPUs",
        (
            Panel(
                "GPU utilisation per node",
                "Average utilisation of the GPUs in each node (DCGM).",
                (Query("avg by (node) (DCGM_FI_DEV_GPU_UTIL)", "{{node}}"),),
                unit="percent",
            ),
            Panel(
                "GPU memory used per node",
                "Frame-buffer memory in use across each node's GPUs (DCGM, MiB).",
                (Query("sum by (node) (DCGM_FI_DEV_FB_USED)", "{{node}}"),),
                unit="decmbytes",
            ),
            Panel(
                "GPU utilisation of the graph's pods",
                "Per-GPU utilisation for pods of the selected graph (pods are named after their graph).",
                (Query('avg by (pod, gpu) (DCGM_FI_DEV_GPU_UTIL{pod=~"$graph-.*"})', "{{pod}} gpu {{gpu}}"),),
                unit="percent",
            ),
        ),
    ),
)

GRAPH_VARIABLE_QUERY = "label_values(dynamo_frontend_requests_total, graph)"


def dashboard() -> dict:
    return build(
        DASHBOARD_UID,
        "Dynamo inference",
        ROWS,
        (graph_variable(GRAPH_VARIABLE_QUERY),),
        ("dynamo", "dynamo-eks"),
    )
