"""The Dynamo Planner dashboard: what the Planner saw, what it decided, and why.

Upstream publishes no Planner dashboard we could vendor (upstream/README.md). The names
are the `dynamo_planner_*` gauges the 1.6.1 Planner registers
(dynamo/planner/monitoring/planner_metrics.py, recorded in
metric_sources/dynamo-planner.json) and serves on its `metrics` port, which the PodMonitor
`dynamo-planner` scrapes, adding `graph`. Graphs with `planner.enabled` have data.
"""

from __future__ import annotations

from k8s_charts.dashboards.builder import GRAPH, RATE, Panel, Query, Row, build, graph_variable

DASHBOARD_UID = "dynamo-eks-planner"
GRAPH_VARIABLE_QUERY = "label_values(dynamo_planner_num_decode_replicas, graph)"
P = "dynamo_planner_"


def _gauge(metric: str, legend: str) -> Query:
    return Query(f"max by (graph) ({P}{metric}{{{GRAPH}}})", f"{legend} {{{{graph}}}}")


def _decision(metric: str) -> Query:
    # prometheus_client Enum: one series per state, labelled with the metric's own name,
    # 1 for the current state.
    return Query(
        f"max by (graph, {P}{metric}) ({P}{metric}{{{GRAPH}}}) == 1",
        f"{{{{graph}}}} {{{{{P}{metric}}}}}",
    )


ROWS: tuple[Row, ...] = (
    (
        "Replicas: decided vs current",
        (
            Panel(
                "Prefill replicas",
                "Replicas the Planner decided on (predicted_num_prefill_replicas) against the "
                "replicas it counts now (num_prefill_replicas). A lasting gap means scaling is "
                "not taking effect (capacity, quota, image pull).",
                (
                    _gauge("predicted_num_prefill_replicas", "decided"),
                    _gauge("num_prefill_replicas", "current"),
                ),
                width=12,
            ),
            Panel(
                "Decode replicas",
                "Decided (predicted_num_decode_replicas) against current (num_decode_replicas) "
                "decode replicas.",
                (
                    _gauge("predicted_num_decode_replicas", "decided"),
                    _gauge("num_decode_replicas", "current"),
                ),
                width=12,
            ),
            Panel(
                "Load-based scaling decision",
                "Why the load-based scaler did or did not change replicas at its last tick "
                "(scale_up, scale_down, no_change, insufficient_data, scaling_in_progress, ...).",
                (_decision("load_scaling_decision"),),
                width=12,
            ),
            Panel(
                "Throughput-based scaling decision",
                "Why the throughput (SLA) scaler did or did not change replicas at its last tick "
                "(scale, set_lower_bound, no_traffic_data, predict_failed, ...).",
                (_decision("throughput_scaling_decision"),),
                width=12,
            ),
        ),
    ),
    (
        "Latency against the SLA",
        (
            Panel(
                "Time to first token: observed vs target",
                "TTFT the Planner observed over its last interval, the configured SLA target, and "
                "its regression's estimate for the current replicas (ms).",
                (
                    _gauge("observed_ttft_ms", "observed"),
                    _gauge("sla_target_ttft_ms", "target"),
                    _gauge("estimated_ttft_ms", "estimated"),
                ),
                unit="ms",
                width=12,
            ),
            Panel(
                "Inter-token latency: observed vs target",
                "ITL observed, SLA target and estimate (ms).",
                (
                    _gauge("observed_itl_ms", "observed"),
                    _gauge("sla_target_itl_ms", "target"),
                    _gauge("estimated_itl_ms", "estimated"),
                ),
                unit="ms",
                width=12,
            ),
        ),
    ),
    (
        "Load: observed vs predicted",
        (
            Panel(
                "Request rate",
                "Requests per second observed over the last interval and predicted for the next; "
                "with the per-engine capacity under the SLA, this is what sizes the replicas.",
                (
                    _gauge("observed_requests_per_second", "observed"),
                    _gauge("predicted_requests_per_second", "predicted"),
                    _gauge("engine_prefill_capacity_requests_per_second", "prefill engine capacity"),
                    _gauge("engine_decode_capacity_requests_per_second", "decode engine capacity"),
                ),
                unit="reqps",
            ),
            Panel(
                "Input sequence length",
                "Average input tokens per request, observed and predicted.",
                (
                    _gauge("observed_input_sequence_tokens", "observed"),
                    _gauge("predicted_input_sequence_tokens", "predicted"),
                ),
            ),
            Panel(
                "Output sequence length",
                "Average output tokens per request, observed and predicted.",
                (
                    _gauge("observed_output_sequence_tokens", "observed"),
                    _gauge("predicted_output_sequence_tokens", "predicted"),
                ),
            ),
        ),
    ),
    (
        "Engines and cost",
        (
            Panel(
                "Queued prefill tokens per engine",
                "Prefill tokens waiting in each engine, from its forward-pass metrics (the "
                "load-based scaler's input).",
                (
                    Query(
                        f"max by (graph, worker_id) ({P}engine_queued_prefill_tokens{{{GRAPH}}})",
                        "{{graph}} {{worker_id}}",
                    ),
                ),
            ),
            Panel(
                "Decode KV tokens per engine",
                "KV tokens of queued and of scheduled (in-flight) decode requests per engine.",
                (
                    Query(
                        f"max by (graph, worker_id) ({P}engine_queued_decode_kv_tokens{{{GRAPH}}})",
                        "queued {{graph}} {{worker_id}}",
                    ),
                    Query(
                        f"max by (graph, worker_id) ({P}engine_inflight_decode_kv_tokens{{{GRAPH}}})",
                        "in flight {{graph}} {{worker_id}}",
                    ),
                ),
            ),
            Panel(
                "GPU hours consumed",
                "Cumulative GPU hours of the replicas the Planner ran (its own count since it "
                "started), and the hourly rate.",
                (
                    _gauge("gpu_hours", "total"),
                    Query(
                        f"max by (graph) (deriv({P}gpu_hours{{{GRAPH}}}[{RATE}])) * 3600",
                        "GPUs in use {{graph}}",
                    ),
                ),
            ),
            Panel(
                "Planner tick duration",
                "p50/p90/p99 of one Planner tick (predict, propose, reconcile, constrain); ticks "
                "near the deadline are aborted.",
                tuple(
                    Query(
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate({P}tick_duration_seconds_bucket{{{GRAPH}}}[{RATE}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.9, 0.99)
                ),
                unit="s",
                width=24,
            ),
        ),
    ),
)


def dashboard() -> dict:
    return build(
        DASHBOARD_UID,
        "Dynamo Planner",
        ROWS,
        (graph_variable(GRAPH_VARIABLE_QUERY),),
        ("dynamo", "dynamo-eks", "planner"),
    )
