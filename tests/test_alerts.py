"""Alerts: every expression names only exported metrics, the rule is schema-valid and picked up
by our Prometheus, latency targets come from each graph, Alertmanager delivers to the webhook
from Secrets Manager (never a URL in a template), and every alert has a README runbook line."""

from __future__ import annotations

import json
import re

import cdk8s
import pytest

from config.names import ALERT_WEBHOOK_SECRET, MONITORING_NAMESPACE, alert_webhook_secret_name
from config.platform import MonitoringConfig
from k8s_charts.alerts import COMMON_ALERTS, alerts, graph_alerts
from k8s_charts.dashboards.exported_metrics import metric_names, unknown_metrics
from k8s_charts.platform_charts import build, review_inputs
from k8s_charts.platform_helm_values import ALERT_WEBHOOK_URL_FILE, kube_prometheus_stack_values
from plan import load_config
from tests.tools.k8s_schema import validate_all
from tests.tools.synth import REPO

DEFAULT = REPO / "config" / "default.yaml"


@pytest.fixture(scope="module")
def cfg():
    return load_config(DEFAULT)


def with_monitoring(cfg, **changes):
    monitoring = cfg.platform.monitoring.model_copy(update=changes)
    return cfg.model_copy(update={"platform": cfg.platform.model_copy(update={"monitoring": monitoring})})


def render(cfg) -> list[dict]:
    return [o for chart in build(cdk8s.App(), cfg, review_inputs(cfg)) for o in chart.to_json()]


def rule(objects: list[dict]) -> dict:
    (found,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    return found


@pytest.mark.parametrize("alert", COMMON_ALERTS, ids=lambda a: a.name)
def test_alert_expressions_name_only_exported_metrics(alert):
    assert metric_names(alert.expr), alert.name
    assert unknown_metrics(alert.expr) == set(), alert.name


def test_graph_alerts_name_only_exported_metrics(cfg):
    for alert in graph_alerts(cfg):
        assert metric_names(alert.expr) and unknown_metrics(alert.expr) == set(), alert.name


def test_the_alert_set_covers_the_issue():
    names = {a.name for a in COMMON_ALERTS}
    assert names == {
        "DynamoErrorRatioHigh",
        "DynamoQueueGrowing",
        "DynamoKVCacheSaturated",
        "GPUXidError",
        "GPUThermalThrottling",
        "ModelPrefetchJobFailed",
        "GPUPodPending",
        "KarpenterLaunchFailures",
    }
    pending = next(a for a in COMMON_ALERTS if a.name == "GPUPodPending")
    assert pending.for_ == "10m" and "nvidia_com_gpu" in pending.expr


def test_latency_targets_are_per_graph(cfg):
    graph = cfg.graphs[0]
    slow = graph.model_copy(
        update={"planner": graph.planner.model_copy(update={"ttft_ms": 2000.0, "itl_ms": 80.0})}
    )
    fast = graph.model_copy(update={"name": "fast"})
    exprs = {a.expr for a in graph_alerts(cfg.model_copy(update={"graphs": [slow, fast]}))}
    assert any(f'graph="{graph.name}"' in e and e.endswith("> 2") for e in exprs)
    assert any(f'graph="{graph.name}"' in e and e.endswith("> 0.08") for e in exprs)
    assert any('graph="fast"' in e and e.endswith(f"> {graph.planner.ttft_ms / 1000:g}") for e in exprs)
    assert all(e.startswith("histogram_quantile(0.9,") for e in exprs)


def test_rule_is_valid_and_selected_by_our_prometheus(cfg):
    objects = render(cfg)
    prometheus_rule = rule(objects)
    assert validate_all([prometheus_rule]) == []
    spec = kube_prometheus_stack_values(cfg.platform.monitoring, retain_data=False)["prometheus"][
        "prometheusSpec"
    ]
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert spec["ruleSelector"]["matchLabels"].items() <= prometheus_rule["metadata"]["labels"].items()
    assert prometheus_rule["metadata"]["namespace"] == MONITORING_NAMESPACE
    rules = prometheus_rule["spec"]["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [a.name for a in alerts(cfg)]
    for r in rules:
        assert r["labels"]["severity"] in {"warning", "critical"} and r["annotations"]["runbook"]


def test_schema_catches_a_bad_rule(cfg):
    bad = json.loads(json.dumps(rule(render(cfg))))
    bad["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"  # not a duration
    assert validate_all([bad]) != []


def test_alertmanager_is_on_and_silent_without_a_webhook():
    values = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["alertmanager"]
    assert values["enabled"] is True
    assert values["config"]["route"]["receiver"] == "null"
    assert values["alertmanagerSpec"]["secrets"] == []


def test_webhook_url_comes_from_secrets_manager_through_a_mounted_secret(cfg):
    on = with_monitoring(cfg, alert_webhook=True)
    values = kube_prometheus_stack_values(on.platform.monitoring, retain_data=False)["alertmanager"]
    assert values["config"]["route"]["receiver"] == "webhook"
    (webhook,) = [r for r in values["config"]["receivers"] if r["name"] == "webhook"]
    assert webhook["webhook_configs"] == [{"url_file": ALERT_WEBHOOK_URL_FILE, "send_resolved": True}]
    assert values["alertmanagerSpec"]["secrets"] == [ALERT_WEBHOOK_SECRET]
    assert ALERT_WEBHOOK_URL_FILE.startswith(f"/etc/alertmanager/secrets/{ALERT_WEBHOOK_SECRET}/")
    synced = [
        o
        for o in render(on)
        if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == ALERT_WEBHOOK_SECRET
    ]
    (external_secret,) = synced
    assert external_secret["metadata"]["namespace"] == MONITORING_NAMESPACE
    assert external_secret["spec"]["data"][0]["remoteRef"]["key"] == alert_webhook_secret_name(
        cfg.cluster.name
    )
    assert validate_all(synced) == []
    assert not re.search(r"https?://", json.dumps(values["config"]))


def test_webhook_needs_monitoring():
    with pytest.raises(ValueError, match="alert_webhook: true needs enabled: true"):
        MonitoringConfig(enabled=False, dcgm_exporter=False, alert_webhook=True)


def test_every_alert_has_a_runbook_line_in_the_readme(cfg):
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Alerts", 1)[1].split("\n### ", 1)[0]
    for alert in alerts(cfg):
        assert re.search(rf"^\| `{alert.name}` \|.+\|.+\|$", section, flags=re.MULTILINE), alert.name


def test_stack_creates_the_webhook_secret_empty_and_lets_external_secrets_read_it(tmp_path):
    from tests.tools.synth import synth

    text = DEFAULT.read_text().replace("alert_webhook: false", "alert_webhook: true")
    assert "alert_webhook: true" in text
    config = tmp_path / "alerts.yaml"
    config.write_text(text)
    template = synth(config).template("platform")  # cdk-nag runs in synth
    secrets = {
        r["Properties"]["Name"]: (k, r)
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::SecretsManager::Secret"
    }
    cfg = load_config(config)
    logical_id, secret = secrets[alert_webhook_secret_name(cfg.cluster.name)]
    assert "SecretString" not in secret["Properties"] and "GenerateSecretString" not in secret["Properties"]
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    assert any(logical_id in json.dumps(p["Properties"]["PolicyDocument"]) for p in policies)
