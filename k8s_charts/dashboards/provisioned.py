"""Our dashboards beyond the overview (dynamo_dashboard.py), each provisioned as a ConfigMap
by k8s_charts/platform_charts.py monitoring_chart, like the overview and upstream's."""

from __future__ import annotations

from dataclasses import dataclass

from config.schema import DeploymentConfig
from k8s_charts.dashboards import cost_dashboard, disagg_dashboard, planner_dashboard, sglang_dashboard


@dataclass(frozen=True)
class OurDashboard:
    config_map: str
    key: str
    model: dict


def our_dashboards(cfg: DeploymentConfig) -> list[OurDashboard]:
    return [
        OurDashboard(
            "grafana-dashboard-dynamo-planner", "dynamo-planner.json", planner_dashboard.dashboard()
        ),
        OurDashboard("grafana-dashboard-dynamo-disagg", "dynamo-disagg.json", disagg_dashboard.dashboard()),
        OurDashboard("grafana-dashboard-dynamo-sglang", "dynamo-sglang.json", sglang_dashboard.dashboard()),
        OurDashboard("grafana-dashboard-dynamo-cost", "dynamo-cost.json", cost_dashboard.dashboard(cfg)),
    ]
