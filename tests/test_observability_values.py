"""The optional log and trace pipelines: Helm values checked against each chart's values.yaml
vendored at the pinned version, the names and ports other programs read, the config switches,
and what the Platform stack makes of them."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from config import ConfigError, versions
from config.names import (
    EBS_STORAGE_CLASS,
    FLUENT_BIT_NAMESPACE,
    FLUENT_BIT_SERVICE_ACCOUNT,
    TEMPO_HTTP_PORT,
    TEMPO_OTLP_GRPC_PORT,
    container_log_group_name,
)
from config.platform import LogsConfig, PlatformConfig, TracingConfig
from k8s_charts.observability_charts import (
    GRAFANA_DATASOURCE_LABEL,
    TEMPO_DATASOURCE_TYPE,
    tempo_datasource,
)
from k8s_charts.platform_helm_values import (
    FLUENT_BIT_TOLERATIONS,
    TEMPO_TEMPLATE_KEYS,
    fluent_bit_values,
    tempo_values,
)
from k8s_charts.registry import render
from plan import load_config
from tests.conftest import DEFAULT_CONFIG
from tests.tools.helm_values import nested, unknown_keys, without
from tests.tools.synth import REPO

UPSTREAM = REPO / "tests" / "data" / "upstream"
PRODUCTION = REPO / "config" / "examples" / "production.yaml"


def upstream(name: str):
    return yaml.safe_load((UPSTREAM / name).read_text(encoding="utf-8"))


# File names carry the pinned version: bumping a pin without re-vendoring fails here.
TEMPO_UPSTREAM = upstream(f"tempo-{versions.TEMPO}-values.yaml")
TEMPO_STATEFULSET = (UPSTREAM / f"tempo-{versions.TEMPO}-statefulset.yaml").read_text(encoding="utf-8")
FLUENT_BIT_UPSTREAM = upstream(f"aws-for-fluent-bit-{versions.AWS_FOR_FLUENT_BIT}-values.yaml")
KPS_UPSTREAM = upstream(f"kube-prometheus-stack-{versions.KUBE_PROMETHEUS_STACK}-values.yaml")
GRAFANA_TEMPO_PLUGIN = json.loads((UPSTREAM / "grafana-tempo-plugin-facts.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("retain_data", [False, True])
def test_every_tempo_key_exists_upstream(retain_data):
    values = tempo_values(TracingConfig(enabled=True), retain_data=retain_data)
    assert unknown_keys(without(values, TEMPO_TEMPLATE_KEYS), TEMPO_UPSTREAM) == []


def test_tempo_template_keys_are_read_by_the_template_only():
    for path, line in TEMPO_TEMPLATE_KEYS.items():
        assert unknown_keys(nested(path), TEMPO_UPSTREAM) != [], f"{path} is in values.yaml now"
        assert line in TEMPO_STATEFULSET, f"the StatefulSet template no longer reads {path}"


def test_every_fluent_bit_key_exists_upstream():
    values = fluent_bit_values(region="us-east-1", log_group_name="/aws/eks/x/containers")
    assert unknown_keys(values, FLUENT_BIT_UPSTREAM) == []


def test_a_misspelt_key_is_caught():
    planted = {"persistance": {"enabled": True}, "cloudWatchLogs": {"logGroup": "x"}}
    assert unknown_keys(planted, TEMPO_UPSTREAM) == ["persistance", "cloudWatchLogs"]
    assert unknown_keys(planted, FLUENT_BIT_UPSTREAM) == ["persistance", "cloudWatchLogs.logGroup"]


def test_ports_are_the_charts_own():
    receivers = TEMPO_UPSTREAM["tempo"]["receivers"]
    assert receivers["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1] == str(TEMPO_OTLP_GRPC_PORT)
    assert TEMPO_UPSTREAM["tempo"]["server"]["http_listen_port"] == TEMPO_HTTP_PORT


def test_tempo_volume_follows_the_removal_policy_and_config():
    tracing = TracingConfig(enabled=True, retention_hours=48, storage_gib=30)
    dev = tempo_values(tracing, retain_data=False)
    assert dev["tempo"]["retention"] == "48h" and dev["tempo"]["reportingEnabled"] is False
    assert dev["persistence"] == {
        "enabled": True,
        "storageClassName": EBS_STORAGE_CLASS,
        "size": "30Gi",
        "enableStatefulSetAutoDeletePVC": True,
    }
    assert tempo_values(tracing, retain_data=True)["persistence"]["enableStatefulSetAutoDeletePVC"] is False
    assert "whenDeleted: Delete" in TEMPO_STATEFULSET  # what the switch turns on


def test_fluent_bit_writes_only_to_the_stacks_group_from_every_node():
    values = fluent_bit_values(region="us-west-2", log_group_name="/aws/eks/c/containers")
    assert values["cloudWatchLogs"] == {
        "enabled": True,
        "region": "us-west-2",
        "logGroupName": "/aws/eks/c/containers",
        "autoCreateGroup": False,
    }
    assert values["serviceAccount"] == {"create": True, "name": FLUENT_BIT_SERVICE_ACCOUNT}
    assert values["tolerations"] == FLUENT_BIT_TOLERATIONS == [{"operator": "Exists"}]
    # The chart's default volumes include Docker's directory; ours is only the log tree, and
    # the chart's read-offset database lives in it.
    assert [v["hostPath"]["path"] for v in values["volumes"]] == ["/var/log"]
    assert FLUENT_BIT_UPSTREAM["input"]["db"].startswith("/var/log/")
    assert FLUENT_BIT_UPSTREAM["input"]["path"].startswith("/var/log/")


def test_grafana_provisions_the_tempo_datasource():
    sidecar = KPS_UPSTREAM["grafana"]["sidecar"]["datasources"]
    assert (sidecar["label"], sidecar["labelValue"]) == GRAFANA_DATASOURCE_LABEL
    assert GRAFANA_TEMPO_PLUGIN["id"] == TEMPO_DATASOURCE_TYPE
    (source,) = tempo_datasource()["datasources"]
    assert source["url"].endswith(f":{TEMPO_HTTP_PORT}") and source["type"] == TEMPO_DATASOURCE_TYPE


# -- config ------------------------------------------------------------------------------------


def load_with(tmp_path, platform: dict):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["platform"] = {**copy.deepcopy(data["platform"]), **platform}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def test_off_by_default_and_in_dev():
    assert PlatformConfig().logs == LogsConfig(enabled=False)
    assert not PlatformConfig().tracing.enabled
    cfg = load_config(DEFAULT_CONFIG)
    assert not cfg.platform.logs.enabled and not cfg.platform.tracing.enabled


def test_on_in_the_production_example():
    cfg = load_config(PRODUCTION)
    assert cfg.platform.logs.enabled and cfg.platform.tracing.enabled


@pytest.mark.parametrize(
    "platform,field,hint",
    [
        (
            {"monitoring": {"enabled": False, "dcgm_exporter": False}, "tracing": {"enabled": True}},
            "platform",
            "tracing.enabled: true needs monitoring.enabled: true",
        ),
        ({"logs": {"enabled": True, "retention_days": 0}}, "platform.logs.retention_days", "1"),
        ({"tracing": {"retention_hours": 1000}}, "platform.tracing.retention_hours", "720"),
        ({"tracing": {"storage": 10}}, "platform.tracing.storage", "storage_gib"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_field(tmp_path, platform, field, hint):
    with pytest.raises(ConfigError) as err:
        load_with(tmp_path, platform)
    (line,) = err.value.lines
    assert field in line and hint in line, line


# -- manifests and the Platform stack ----------------------------------------------------------


def test_manifests_show_the_datasource_only_with_tracing(tmp_path):
    assert render(load_config(DEFAULT_CONFIG))["observability"] == []
    (config_map,) = render(load_config(PRODUCTION))["observability"]
    assert config_map["metadata"]["labels"] == {GRAFANA_DATASOURCE_LABEL[0]: GRAFANA_DATASOURCE_LABEL[1]}
    assert yaml.safe_load(config_map["data"]["tempo.yaml"]) == tempo_datasource()


@pytest.fixture(scope="module")
def production_platform():
    from tests.tools.synth import synth

    return synth(PRODUCTION).template("platform")["Resources"]


def of_type(resources: dict, kind: str) -> dict:
    return {k: r for k, r in resources.items() if r["Type"] == kind}


@pytest.mark.xdist_group("default")
def test_container_log_group_is_owned_and_kept_in_production(production_platform):
    groups = [
        r
        for r in of_type(production_platform, "AWS::Logs::LogGroup").values()
        if r["Properties"].get("LogGroupName") == container_log_group_name("dynamo-prod")
    ]
    (group,) = groups
    assert group["Properties"]["RetentionInDays"] == 90
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"


@pytest.mark.xdist_group("default")
def test_fluent_bit_role_writes_only_to_that_group(production_platform):
    (group_id,) = [
        k
        for k, r in of_type(production_platform, "AWS::Logs::LogGroup").items()
        if r["Properties"].get("LogGroupName") == container_log_group_name("dynamo-prod")
    ]
    (policy,) = [
        r
        for k, r in of_type(production_platform, "AWS::IAM::Policy").items()
        if k.startswith("ContainerLogs")
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}
    (association,) = [
        r
        for r in of_type(production_platform, "AWS::EKS::PodIdentityAssociation").values()
        if r["Properties"]["Namespace"] == FLUENT_BIT_NAMESPACE
    ]
    assert association["Properties"]["ServiceAccount"] == FLUENT_BIT_SERVICE_ACCOUNT


@pytest.mark.xdist_group("default")
def test_releases_are_pinned_and_wait_for_what_they_use(production_platform):
    releases = {
        r["Properties"]["Release"]: (k, r)
        for k, r in of_type(production_platform, "Custom::AWSCDK-EKS-HelmChart").items()
    }
    _, tempo = releases["tempo"]
    assert tempo["Properties"]["Version"] == versions.TEMPO
    assert tempo["Properties"]["Repository"] == versions.GRAFANA_COMMUNITY_CHART_REPO
    storage = [k for k in production_platform if k.startswith("PrometheusStorage")]
    assert storage and set(storage) <= set(tempo["DependsOn"])
    _, fluent_bit = releases["aws-for-fluent-bit"]
    assert fluent_bit["Properties"]["Version"] == versions.AWS_FOR_FLUENT_BIT
    assert fluent_bit["Properties"]["Namespace"] == FLUENT_BIT_NAMESPACE
    association = [k for k in production_platform if k.startswith("ContainerLogsPodIdentity")]
    assert association and set(association) <= set(fluent_bit["DependsOn"])


@pytest.mark.xdist_group("default")
def test_the_tail_command_is_a_stack_output():
    from tests.tools.synth import synth

    outputs = synth(PRODUCTION).template("platform")["Outputs"]
    command = outputs["ContainerLogsTailCommand"]["Value"]
    assert command.startswith(f"aws logs tail {container_log_group_name('dynamo-prod')} --region us-east-1")
    assert "ContainerLogsTailCommand" not in synth(DEFAULT_CONFIG).template("platform").get("Outputs", {})
