"""The disaggregated-serving dashboard: prefill against decode, and the KV transfer between.

Upstream's `disagg-dashboard.json` queries names Dynamo 1.6.1 no longer exports
(upstream/README.md), so this one is ours. Worker-side series carry `component_type` (the
operator's pod label our PodMonitors copy: `prefill`, `decode`, or `worker` when
aggregated); the frontend's per-worker gauges and router queue carry `worker_type`
(`prefill`/`decode`, Dynamo's metrics reference). The SGLang rows need SGLang's
`--enable-metrics` (sglang_dashboard.py); vLLM's and TensorRT-LLM's own KV-transfer (NIXL)
metrics are not in any pinned name list here, so they are not queried.
"""

from __future__ import annotations

from k8s_charts.dashboards.builder import GRAPH, RATE, Panel, Query, Row, build, graph_variable, quantiles

DASHBOARD_UID = "dynamo-eks-disagg"
GRAPH_VARIABLE_QUERY = "label_values(dynamo_component_requests_total, graph)"
ROLES = f'{GRAPH},component_type=~"prefill|decode"'


def _by_role(expr: str, legend: str = "{{component_type}}") -> Query:
    return Query(f"sum by (component_type) ({expr})", legend)


ROWS: tuple[Row, ...] = (
    (
        "Prefill vs decode workers",
        (
            Panel(
                "Requests per second by role",
                "Requests each role's workers receive (Dynamo work handler). In a disaggregated "
                "graph every request visits a prefill worker and a decode worker.",
                (_by_role(f"rate(dynamo_component_requests_total{{{ROLES}}}[{RATE}])"),),
                unit="reqps",
            ),
            Panel(
                "In-flight requests by role",
                "Requests being processed now by the prefill and by the decode workers.",
                (_by_role(f"dynamo_component_inflight_requests{{{ROLES}}}"),),
            ),
            Panel(
                "Errors by role",
                "Work-handler errors per second on prefill and decode workers.",
                (_by_role(f"rate(dynamo_component_errors_total{{{ROLES}}}[{RATE}])"),),
            ),
            Panel(
                "Worker request duration by role",
                "p50/p90/p99 of the time a prefill or decode worker spends on a request.",
                quantiles("dynamo_component_request_duration_seconds", ROLES, by="component_type"),
                unit="s",
                width=12,
            ),
            Panel(
                "Work queue depth by role",
                "Requests waiting in the workers' bounded work queue for a dispatcher.",
                (_by_role(f"dynamo_component_queue_depth{{{ROLES}}}"),),
                width=12,
            ),
        ),
    ),
    (
        "Router view (frontend)",
        (
            Panel(
                "Router queue by worker type",
                "Requests pending in the frontend router's scheduler queue, for prefill and for "
                "decode workers: which side is the bottleneck.",
                (
                    Query(
                        f"sum by (worker_type) (dynamo_frontend_router_queue_pending_requests{{{GRAPH}}})",
                        "{{worker_type}}",
                    ),
                ),
            ),
            Panel(
                "Active prefill tokens per worker",
                "Prefill tokens the router counts as queued or running on each worker.",
                (
                    Query(
                        f"max by (worker_type, worker_id) (dynamo_frontend_worker_active_prefill_tokens{{{GRAPH}}})",
                        "{{worker_type}} {{worker_id}}",
                    ),
                ),
            ),
            Panel(
                "Active decode KV blocks per worker",
                "KV-cache blocks the router counts as held by decoding requests on each worker.",
                (
                    Query(
                        f"max by (worker_type, worker_id) (dynamo_frontend_worker_active_decode_blocks{{{GRAPH}}})",
                        "{{worker_type}} {{worker_id}}",
                    ),
                ),
            ),
        ),
    ),
    (
        "KV transfer",
        (
            Panel(
                "Estimated KV transfer latency",
                "p50/p90/p99 of the frontend's upper-bound estimate of the time from prefill "
                "completion to the first decode token (the KV hand-off), per request.",
                quantiles("dynamo_frontend_kv_transfer_estimated_latency_seconds"),
                unit="s",
                width=12,
            ),
            Panel(
                "SGLang KV transfer latency",
                "p50/p90/p99 of one prefill-to-decode KV transfer as SGLang measures it (ms).",
                quantiles("sglang:kv_transfer_latency_ms"),
                unit="ms",
                width=12,
            ),
            Panel(
                "SGLang KV transfer speed",
                "p50/p90/p99 of the transfer speed of KV between prefill and decode (GB/s).",
                quantiles("sglang:kv_transfer_speed_gb_s"),
            ),
            Panel(
                "SGLang disaggregation queues",
                "Requests waiting on the prefill side (bootstrap, in flight to decode) and on the "
                "decode side (waiting for KV room, waiting for the transfer).",
                tuple(
                    Query(f"sum by (graph) (sglang:{metric}{{{GRAPH}}})", f"{legend} {{{{graph}}}}")
                    for metric, legend in (
                        ("num_prefill_bootstrap_queue_reqs", "prefill bootstrap"),
                        ("num_prefill_inflight_queue_reqs", "prefill in flight"),
                        ("num_decode_prealloc_queue_reqs", "decode prealloc"),
                        ("num_decode_transfer_queue_reqs", "decode transfer"),
                    )
                ),
            ),
            Panel(
                "SGLang transfer failures and retries",
                "Requests per second whose KV transfer or bootstrap failed, and prefill retries.",
                tuple(
                    Query(
                        f"sum by (graph) (rate(sglang:{metric}{{{GRAPH}}}[{RATE}]))",
                        f"{legend} {{{{graph}}}}",
                    )
                    for metric, legend in (
                        ("num_transfer_failed_reqs_total", "transfer failed"),
                        ("num_bootstrap_failed_reqs_total", "bootstrap failed"),
                        ("num_prefill_retries_total", "prefill retries"),
                    )
                ),
            ),
        ),
    ),
)


def dashboard() -> dict:
    return build(
        DASHBOARD_UID,
        "Dynamo disaggregated serving",
        ROWS,
        (graph_variable(GRAPH_VARIABLE_QUERY),),
        ("dynamo", "dynamo-eks", "disagg"),
    )
