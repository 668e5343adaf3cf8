"""Record the Prometheus metric names Dynamo's runtime exports, from the pinned wheel.

Run with the project's Dynamo venv (the pinned ai-dynamo-runtime):

    .venv-dynamo/bin/python -m tools.dynamo_metric_names > k8s_charts/dashboards/metric_sources/dynamo.json

`dynamo.prometheus_names` is generated from the runtime's Rust constants
(lib/runtime/src/metrics/prometheus_names.rs); each class holds name suffixes, and the
prefix they are registered under is the runtime's own `name_prefix` constant. Only the
classes whose prefix is certain are recorded (PREFIXES); the dashboards and alerts may
query only what is recorded here (tests/test_metric_names.py), and
tests/test_dynamo_metric_names_record.py regenerates this record and fails when it differs.
"""

from __future__ import annotations

from importlib import metadata

from tools.records import print_record

# class in dynamo.prometheus_names -> attribute of its `name_prefix` class, or a literal
# prefix with where it comes from.
PREFIXES: dict[str, str] = {
    "frontend_service": "FRONTEND",
    "frontend_perf": "FRONTEND",
    "work_handler": "COMPONENT",
    "kvstats": "COMPONENT",
    # "Router request metrics (component-scoped aggregate histograms + counters)".
    "router": "COMPONENT",
    "request_plane": "REQUEST_PLANE",
    "tokio_perf": "TOKIO",
    "kvindexer": "KVINDEXER",
    "transport.tcp": "TRANSPORT",
    "transport.nats": "TRANSPORT",
}
# KVBM registers on its own registry with the fixed prefix `kvbm`
# (lib/llm/src/block_manager/metrics_kvbm.rs, KvbmMetricsRegistry::new), served on
# DYN_KVBM_METRICS_PORT; not under a name_prefix constant.
LITERAL_PREFIXES = {"kvbm": "kvbm"}
# Constants in those classes that are not metric names (label names, label values, env).
NOT_METRICS = {"METRICS_PREFIX_ENV", "STAGE_PREPROCESS", "STAGE_ROUTE", "STAGE_DISPATCH"}


def _constants(cls: type) -> dict[str, str]:
    return {
        k: v
        for k, v in vars(cls).items()
        if k.isupper() and isinstance(v, str) and k not in NOT_METRICS and not k.endswith("_LABEL")
    }


def _cls(module: object, dotted: str) -> type:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    assert isinstance(obj, type)
    return obj


def record() -> dict:
    from dynamo import prometheus_names as pn

    prefixes = {name: getattr(pn.name_prefix, attr) for name, attr in PREFIXES.items()}
    prefixes.update(LITERAL_PREFIXES)
    metrics: dict[str, str] = {}
    for dotted, prefix in sorted(prefixes.items()):
        for value in _constants(_cls(pn, dotted)).values():
            metrics[f"{prefix}_{value}"] = dotted
    return {
        "source": "ai-dynamo-runtime dynamo.prometheus_names (generated from "
        "lib/runtime/src/metrics/prometheus_names.rs) with tools/dynamo_metric_names.py PREFIXES",
        "ai_dynamo_runtime": metadata.version("ai-dynamo-runtime"),
        "prefixes": dict(sorted(prefixes.items())),
        "metrics": dict(sorted(metrics.items())),
    }


def main() -> int:
    return print_record(record())


if __name__ == "__main__":
    raise SystemExit(main())
