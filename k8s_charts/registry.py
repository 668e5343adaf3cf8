"""Every chart the app deploys, renderable on its own for review (`make manifests`) and tests.

A chart builder is `build(app: cdk8s.App, cfg: DeploymentConfig, inputs) -> list[cdk8s.Chart]`.
Stacks call the same builders with real inputs (CloudFormation tokens); review rendering calls
them with `review_inputs(cfg)`, whose values are readable stand-ins for what CloudFormation
will fill in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cdk8s

from config.schema import DeploymentConfig


@dataclass(frozen=True)
class ChartSource:
    name: str  # file name under dist/manifests/<environment>/
    build: Callable[[cdk8s.App, DeploymentConfig, Any], list[cdk8s.Chart]]
    review_inputs: Callable[[DeploymentConfig], Any]


def chart_sources() -> list[ChartSource]:
    """Imported lazily so a chart's heavy imports load only when charts are rendered."""
    from k8s_charts import graphs, karpenter_pools, observability_charts, platform_charts

    sources: list[ChartSource] = [
        ChartSource("karpenter-pools", karpenter_pools.build, karpenter_pools.review_inputs),
        ChartSource("platform", platform_charts.build, platform_charts.review_inputs),
        ChartSource("graphs", graphs.build, graphs.review_inputs),
        ChartSource("observability", observability_charts.build, observability_charts.review_inputs),
    ]
    return sources


def render(cfg: DeploymentConfig) -> dict[str, list[dict]]:
    """Chart name -> Kubernetes objects, as they would be applied (review inputs)."""
    rendered: dict[str, list[dict]] = {}
    for source in chart_sources():
        app = cdk8s.App()
        objects: list[dict] = []
        for chart in source.build(app, cfg, source.review_inputs(cfg)):
            objects.extend(chart.to_json())
        rendered[source.name] = objects
    return rendered
