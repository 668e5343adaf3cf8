"""What our dashboards are made of (rows of time-series panels of PromQL queries) and the
Grafana dashboard JSON model built from them. Every query is checked against the metric
names the pinned exporters export (exported_metrics.py, tests/test_metric_names.py)."""

from __future__ import annotations

from dataclasses import dataclass

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
GRAPH = 'graph=~"$graph"'
PANEL_HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 8


@dataclass(frozen=True)
class Text:
    """A Markdown panel: facts from the config (no query)."""

    title: str
    markdown: str
    width: int = 24
    height: int = PANEL_HEIGHT


@dataclass(frozen=True)
class Table:
    """The latest value of each series of one query, a row per series: the labels in
    `columns` (in that order, retitled) and the value, titled `value_title`."""

    title: str
    description: str
    query: Query
    columns: tuple[tuple[str, str], ...]  # (label, column title)
    value_title: str
    unit: str = "short"
    width: int = 24
    height: int = PANEL_HEIGHT


Row = tuple[str, tuple[Panel | Text | Table, ...]]


def quantiles(metric: str, selector: str = GRAPH, by: str = "") -> tuple[Query, ...]:
    """p50/p90/p99 of a histogram (`metric` without `_bucket`), optionally split by labels."""
    group = f"{by}, le" if by else "le"
    prefix = "".join(f"{{{{{label.strip()}}}}} " for label in by.split(",")) if by else ""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"{prefix}p{int(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    )


def graph_variable(query: str) -> dict:
    return {
        "name": "graph",
        "label": "Graph",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "graph"},
        "definition": query,
        "includeAll": True,
        "allValue": ".*",
        "multi": False,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
    }


def _table(item: Table, panel_id: int, x: int, y: int) -> dict:
    shown = [label for label, _ in item.columns] + ["Value"]
    return {
        "type": "table",
        "id": panel_id,
        "title": item.title,
        "description": item.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": item.height, "w": item.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": item.unit}, "overrides": []},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": item.query.expr,
                "legendFormat": item.query.legend,
                "format": "table",
                "instant": True,
            }
        ],
        # Without it Grafana shows the query time and the series name in every row.
        "transformations": [
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "__name__": True},
                    "indexByName": {name: i for i, name in enumerate(shown)},
                    "renameByName": {**dict(item.columns), "Value": item.value_title},
                },
            }
        ],
    }


def _panel(item: Panel | Text | Table, panel_id: int, x: int, y: int) -> dict:
    if isinstance(item, Table):
        return _table(item, panel_id, x, y)
    if isinstance(item, Text):
        return {
            "type": "text",
            "id": panel_id,
            "title": item.title,
            "gridPos": {"h": item.height, "w": item.width, "x": x, "y": y},
            "options": {"mode": "markdown", "content": item.markdown},
        }
    return {
        "type": "timeseries",
        "id": panel_id,
        "title": item.title,
        "description": item.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": item.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": item.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": q.expr,
                "legendFormat": q.legend,
            }
            for i, q in enumerate(item.queries)
        ],
    }


def build(
    uid: str, title: str, rows: tuple[Row, ...], variables: tuple[dict, ...], tags: tuple[str, ...]
) -> dict:
    panels: list[dict] = []
    y = 0
    panel_id = 1
    for row_title, row_panels in rows:
        panels.append(
            {
                "type": "row",
                "title": row_title,
                "id": panel_id,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        x = 0
        height = 0
        for item in row_panels:
            item_height = item.height if isinstance(item, (Text, Table)) else PANEL_HEIGHT
            if x + item.width > 24:
                x, y, height = 0, y + height, 0
            panels.append(_panel(item, panel_id, x, y))
            panel_id += 1
            x += item.width
            height = max(height, item_height)
        y += height
    return {
        "uid": uid,
        "title": title,
        "tags": list(tags),
        "editable": False,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                *variables,
            ]
        },
        "panels": panels,
    }
