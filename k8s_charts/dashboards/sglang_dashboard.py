"""The SGLang engine dashboard (engine-side view of SGLang workers, HiCache included).

Upstream's `sglang.json` and `sglang-hicache.json` query names SGLang 0.5.21 does not
register (upstream/README.md), so this one is ours, with the names the pinned SGLang 0.5.21
wheel registers (metric_sources/sglang-0.5.21.json, tools/prometheus_client_names.py).
Dynamo 1.6.1's SGLang worker serves them on its system port (`sglang:` prefix filter,
dynamo/sglang/publisher.py setup_prometheus_registry) only when SGLang runs with
`--enable-metrics`; the PodMonitor `dynamo-worker` adds `graph`.
"""

from __future__ import annotations

from k8s_charts.dashboards.builder import GRAPH, RATE, Panel, Query, Row, build, graph_variable, quantiles

DASHBOARD_UID = "dynamo-eks-sglang"
GRAPH_VARIABLE_QUERY = "label_values(sglang:num_running_reqs, graph)"
S = "sglang:"


def _per_pod(metric: str, legend: str = "", scale: str = "") -> Query:
    return Query(
        f"max by (graph, pod) ({S}{metric}{{{GRAPH}}}){scale}",
        f"{legend}{{{{graph}}}} {{{{pod}}}}",
    )


def _rate(metric: str, legend: str, selector: str = GRAPH, by: str = "graph") -> Query:
    return Query(f"sum by ({by}) (rate({S}{metric}{{{selector}}}[{RATE}]))", legend)


ROWS: tuple[Row, ...] = (
    (
        "Latency (engine)",
        (
            Panel(
                "Time to first token",
                "p50/p90/p99 of SGLang's own TTFT (from the tokenizer manager).",
                quantiles(f"{S}time_to_first_token_seconds"),
                unit="s",
            ),
            Panel(
                "Inter-token latency",
                "p50/p90/p99 of the gap between output tokens inside the engine.",
                quantiles(f"{S}inter_token_latency_seconds"),
                unit="s",
            ),
            Panel(
                "Queue time",
                "p50/p90/p99 of the time a request waits in the scheduler's queue before it runs.",
                quantiles(f"{S}queue_time_seconds"),
                unit="s",
            ),
        ),
    ),
    (
        "Throughput and scheduling",
        (
            Panel(
                "Generation throughput",
                "Tokens per second each worker generates (the scheduler's own estimate).",
                (_per_pod("gen_throughput"),),
            ),
            Panel(
                "Running and queued requests",
                "Requests in the running batch and waiting in the queue, per worker.",
                (_per_pod("num_running_reqs", "running "), _per_pod("num_queue_reqs", "queued ")),
            ),
            Panel(
                "Requests and tokens",
                "Finished requests per second, and prompt and generated tokens per second.",
                (
                    _rate("num_requests_total", "requests/s {{graph}}"),
                    _rate("prompt_tokens_total", "prompt tokens/s {{graph}}"),
                    _rate("generation_tokens_total", "generated tokens/s {{graph}}"),
                ),
            ),
        ),
    ),
    (
        "KV cache",
        (
            Panel(
                "KV-cache token usage",
                "Fraction of each worker's GPU KV pool in use (excludes evictable cached tokens).",
                (_per_pod("token_usage"),),
                unit="percentunit",
            ),
            Panel(
                "KV pool: used, evictable, available",
                "Tokens of the GPU KV pool held by running requests, cached but evictable, and free.",
                (
                    _per_pod("kv_used_tokens", "used "),
                    _per_pod("kv_evictable_tokens", "evictable "),
                    _per_pod("kv_available_tokens", "available "),
                ),
            ),
            Panel(
                "Prefix-cache hit rate and retractions",
                "Share of prompt tokens served from the prefix cache, and requests retracted "
                "(pre-empted for lack of KV room) per second.",
                (
                    _per_pod("cache_hit_rate", "hit rate "),
                    _rate("num_retracted_requests_total", "retracted/s {{graph}}"),
                ),
            ),
        ),
    ),
    (
        "HiCache (hierarchical KV cache, graphs with kv_offload)",
        (
            Panel(
                "Host KV-cache usage",
                "Fraction of the host-memory KV tier in use per worker (--hicache-size).",
                (
                    Query(
                        f"max by (graph, pod) ({S}hicache_host_used_tokens{{{GRAPH}}})"
                        f" / clamp_min(max by (graph, pod) ({S}hicache_host_total_tokens{{{GRAPH}}}), 1)",
                        "{{graph}} {{pod}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Cached prompt tokens by tier",
                "Prompt tokens per second served from the GPU (device) and host tiers.",
                (_rate("cached_tokens_total", "{{graph}} {{cache_source}}", by="graph, cache_source"),),
            ),
            Panel(
                "Eviction and load-back",
                "Tokens per second evicted from the GPU pool and loaded back from the host tier.",
                (
                    _rate("evicted_tokens_total", "evicted {{graph}}"),
                    _rate("load_back_tokens_total", "loaded back {{graph}}"),
                    _rate("hicache_backup_tokens_total", "backed up to host {{graph}}"),
                ),
            ),
            Panel(
                "Eviction latency",
                "p50/p90/p99 of one eviction from the GPU pool.",
                quantiles(f"{S}eviction_duration_seconds"),
                unit="s",
                width=12,
            ),
            Panel(
                "Load-back latency",
                "p50/p90/p99 of one load of KV from the host tier back to the GPU.",
                quantiles(f"{S}load_back_duration_seconds"),
                unit="s",
                width=12,
            ),
        ),
    ),
)


def dashboard() -> dict:
    return build(
        DASHBOARD_UID,
        "SGLang engine",
        ROWS,
        (graph_variable(GRAPH_VARIABLE_QUERY),),
        ("dynamo", "dynamo-eks", "sglang"),
    )
