"""Platform: Dynamo operator, model cache, secrets sync and monitoring (the `platform:` section)."""

from __future__ import annotations

from pydantic import Field, model_validator

from config.base import StrictModel


class MonitoringConfig(StrictModel):
    """kube-prometheus-stack, DCGM exporter, Dynamo PodMonitors and the Grafana dashboard."""

    enabled: bool = Field(
        True, description="Install Prometheus, Grafana (with the Dynamo dashboard) and monitors."
    )
    prometheus_retention_days: int = Field(7, ge=1, le=90, description="Days of metrics Prometheus keeps.")
    prometheus_storage_gib: int = Field(
        50,
        ge=10,
        le=2000,
        description="Size of Prometheus' encrypted gp3 volume (EBS CSI); it survives pod moves.",
    )
    prometheus_retention_size_gib: int = Field(
        40,
        ge=1,
        le=1600,
        description="Upper bound of Prometheus data on its volume; oldest data goes first. "
        "At most 80% of prometheus_storage_gib (the rest is WAL and compaction room).",
    )
    scrape_interval_seconds: int = Field(
        15, ge=5, le=120, description="How often Prometheus scrapes Dynamo and GPU metrics."
    )
    dcgm_exporter: bool = Field(
        True, description="GPU metrics (utilisation, memory, power) from every GPU node."
    )
    alert_webhook: bool = Field(
        False,
        description="Send alerts to an HTTP endpoint that accepts Alertmanager's webhook payload; "
        "you store its URL in the Secrets Manager secret <cluster>/alertmanager-webhook. Off: "
        "alerts are only shown in Alertmanager and Prometheus.",
    )

    @model_validator(mode="after")
    def _retention_fits_the_volume(self) -> MonitoringConfig:
        room = self.prometheus_storage_gib * 4 // 5
        if self.prometheus_retention_size_gib > room:
            raise ValueError(
                f"prometheus_retention_size_gib: {self.prometheus_retention_size_gib} does not fit "
                f"a {self.prometheus_storage_gib} GiB volume (at most {room}); lower it or raise "
                "prometheus_storage_gib"
            )
        return self

    @model_validator(mode="after")
    def _webhook_needs_prometheus(self) -> MonitoringConfig:
        if self.alert_webhook and not self.enabled:
            raise ValueError(
                "alert_webhook: true needs enabled: true (no Alertmanager would send alerts); "
                "set alert_webhook: false or enable monitoring"
            )
        return self

    @model_validator(mode="after")
    def _dcgm_needs_prometheus(self) -> MonitoringConfig:
        if self.dcgm_exporter and not self.enabled:
            raise ValueError(
                "dcgm_exporter: true needs enabled: true (nothing would scrape the GPU "
                "metrics); set dcgm_exporter: false or enable monitoring"
            )
        return self


class ModelCacheConfig(StrictModel):
    """EFS-backed ReadWriteMany cache that every graph mounts for model weights."""

    size_gib: int = Field(
        1000,
        ge=10,
        le=100_000,
        description="Nominal size of the model-cache PVC (EFS is elastic; this is not a quota).",
    )
    prefetch_backoff_limit: int = Field(
        3, ge=0, le=10, description="Retries of a graph's model prefetch Job before it fails."
    )
    prefetch_timeout_minutes: int = Field(
        120, ge=10, le=1440, description="Deadline of a model prefetch Job, all retries included."
    )


class LogsConfig(StrictModel):
    """Fluent Bit on every node, shipping every container's log to one CloudWatch log group."""

    enabled: bool = Field(
        False,
        description="Ship every container's stdout/stderr to the CloudWatch log group "
        "/aws/eks/<cluster>/containers (aws-for-fluent-bit DaemonSet in kube-system). Off: "
        "logs stay on the nodes and go with them (kubectl logs only).",
    )
    retention_days: int = Field(
        30,
        ge=1,
        le=3653,
        description="Days CloudWatch keeps container logs (rounded up to a period CloudWatch "
        "offers); the group goes or stays with the stack per removal_policy.",
    )


class TracingConfig(StrictModel):
    """Grafana Tempo receiving Dynamo's OpenTelemetry traces, shown in Grafana."""

    enabled: bool = Field(
        False,
        description="Install Tempo (single binary) in the monitoring namespace, add it to Grafana "
        "as a datasource, and have every Dynamo pod export its request spans to it over OTLP.",
    )
    retention_hours: int = Field(
        72, ge=1, le=720, description="Hours Tempo keeps traces before its compactor deletes them."
    )
    storage_gib: int = Field(
        20,
        ge=5,
        le=1000,
        description="Size of Tempo's encrypted gp3 volume (EBS CSI) for trace blocks and its WAL.",
    )


class PlatformConfig(StrictModel):
    monitoring: MonitoringConfig = Field(MonitoringConfig(), description="Metrics and dashboards.")
    model_cache: ModelCacheConfig = Field(ModelCacheConfig(), description="Shared model cache.")
    logs: LogsConfig = Field(LogsConfig(), description="Container logs to CloudWatch Logs.")
    tracing: TracingConfig = Field(TracingConfig(), description="Dynamo request traces in Tempo.")

    @model_validator(mode="after")
    def _tracing_needs_grafana(self) -> PlatformConfig:
        if self.tracing.enabled and not self.monitoring.enabled:
            raise ValueError(
                "tracing.enabled: true needs monitoring.enabled: true (traces are read in its "
                "Grafana and Tempo's volume uses its gp3-encrypted StorageClass); enable "
                "monitoring or set tracing.enabled: false"
            )
        return self
