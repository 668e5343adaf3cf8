"""Upstream Dynamo dashboards (vendored verbatim in upstream/), made to work here.

Each fix is a plain text substitution with its reason; tests/test_metric_names.py proves
that after the fixes every query names a metric Dynamo 1.6.1 exports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

UPSTREAM = Path(__file__).with_name("upstream")
# kube-prometheus-stack provisions its Prometheus datasource with this uid
# (grafana.sidecar.datasources.uid default, see tests/data/upstream values).
PROMETHEUS_DATASOURCE_UID = "prometheus"


@dataclass(frozen=True)
class Fix:
    old: str
    new: str
    why: str


@dataclass(frozen=True)
class UpstreamDashboard:
    file: str
    config_map: str
    fixes: tuple[Fix, ...] = ()

    def model(self) -> dict:
        text = (UPSTREAM / self.file).read_text()
        for fix in self.fixes:
            if fix.old not in text:
                raise ValueError(f"{self.file}: fix no longer applies ({fix.old!r}); review it")
            text = text.replace(fix.old, fix.new)
        model = json.loads(text)
        # Provisioned dashboards are matched by uid; a fixed numeric id from the exporting
        # instance can clash with another dashboard.
        model["id"] = None
        return model


DASHBOARDS = (
    UpstreamDashboard(
        "kvbm.json",
        "grafana-dashboard-dynamo-kvbm",
        (
            Fix(
                "P1809F7CD0C75ACF3",
                PROMETHEUS_DATASOURCE_UID,
                "the datasource uid of the Grafana it was exported from; ours is kube-prometheus-stack's",
            ),
            Fix(
                '"expr": "dynamo_kvbm_',
                '"expr": "kvbm_',
                "KVBM 1.6.1 registers its metrics with the fixed prefix `kvbm_` "
                "(KvbmMetricsRegistry in lib/llm/src/block_manager/metrics_kvbm.rs)",
            ),
        ),
    ),
    UpstreamDashboard("dynamo-operator.json", "grafana-dashboard-dynamo-operator"),
)
