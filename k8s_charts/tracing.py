"""The environment that makes a Dynamo 1.6.1 process export its request spans to Tempo.

Dynamo's runtime (Rust, in ai-dynamo-runtime's `dynamo/_core.abi3.so`) sets up OpenTelemetry
itself; upstream's "Distributed Tracing with Tempo" guide
(https://github.com/ai-dynamo/dynamo/blob/main/docs/observability/tracing.md) names what it
needs: JSONL logging (the tracing layer lives in that formatter) plus OTEL_EXPORT_ENABLED, the
OTLP gRPC traces endpoint and a service name per component. Every name below is checked against the names compiled into the pinned runtime
(tools/dynamo_tracing_env.py, tests/test_dynamo_tracing_env.py), and the whole set is run on
the real 1.6.1 frontend against a stand-in OTLP receiver (tests/test_dynamo_tracing_export.py).

OTEL_EXPORT_ENABLED turns on OTLP export of Dynamo's logs as well as its traces ("OpenTelemetry
OTLP export enabled (traces and logs)"), and no 1.6.1 setting separates the two. Tempo takes
traces only, so every log batch it is sent fails and Dynamo prints an opentelemetry_sdk ERROR
line (about one a second per busy pod, measured on the 1.6.1 frontend). The log batch
processor's timer is therefore set to an hour (OTEL_BLRP_SCHEDULE_DELAY, milliseconds): a
batch then leaves only when 512 records (the SDK's default OTEL_BLRP_MAX_EXPORT_BATCH_SIZE)
are queued, one rejected export per 512 log lines instead of one per second. Those batches go
to Tempo too, so the error says what happened (`Unimplemented`) rather than pointing at
nothing on localhost:4317. Logs reach CloudWatch from stdout (platform.logs), not over OTLP.
"""

from __future__ import annotations

from cdk8s_plus_36 import k8s

from config.graphs import GraphConfig
from config.names import tempo_otlp_grpc_url
from config.schema import DeploymentConfig

TRACING_ENV_NAMES = (
    "DYN_LOGGING_JSONL",
    "OTEL_EXPORT_ENABLED",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_BLRP_SCHEDULE_DELAY",
    "OTEL_SERVICE_NAME",
)
# Where spans (and the unavoidable log batches) go: the two endpoint variables above.
ENDPOINT_ENV_NAMES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
LOG_BATCH_DELAY_MS = 3_600_000


def tracing_env_values(graph: GraphConfig, component: str) -> dict[str, str]:
    """Name -> value for one component's container. The service name carries the graph, so
    Tempo's service list separates graphs and roles (`<graph>-frontend`, `<graph>-prefill`)."""
    values = {
        "DYN_LOGGING_JSONL": "true",
        "OTEL_EXPORT_ENABLED": "true",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": tempo_otlp_grpc_url(),
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": tempo_otlp_grpc_url(),
        "OTEL_BLRP_SCHEDULE_DELAY": str(LOG_BATCH_DELAY_MS),
        "OTEL_SERVICE_NAME": f"{graph.name}-{component}",
    }
    assert tuple(values) == TRACING_ENV_NAMES
    return values


def tracing_env(cfg: DeploymentConfig, graph: GraphConfig, component: str) -> list[k8s.EnvVar]:
    """Nothing unless platform.tracing is on: with it off, Dynamo keeps its text logs."""
    if not cfg.platform.tracing.enabled:
        return []
    return [
        k8s.EnvVar(name=name, value=value) for name, value in tracing_env_values(graph, component).items()
    ]
