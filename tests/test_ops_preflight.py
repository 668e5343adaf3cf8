"""`ops preflight`: every check against moto, or a botocore Stubber where moto lacks the API
(Service Quotas, EKS describe_cluster_versions and describe_addon_versions)."""

from __future__ import annotations

import argparse
import datetime

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from plan import load_config
from config.versions import EKS_ADDONS
from ops import preflight
from ops.preflight import Clients, vcpu_demand
from tests.conftest import DEFAULT_CONFIG

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's account
SECRET = "dynamo-dev/hf-token"
G_QUOTA, P_QUOTA = "L-DB2E81BA", "L-417A185B"
G_SPOT_QUOTA = "L-3819A6DF"


@pytest.fixture(scope="module")
def _moto(tmp_path_factory):
    # One moto backend per module: creating the EC2 backend per test costs seconds.
    folder = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_CONFIG_FILE", str(folder / "no-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-credentials"))
        with mock_aws():
            yield


@pytest.fixture(autouse=True)
def aws(_moto):
    """Each test starts from a fresh account: no bootstrap, no HF token secret."""
    yield
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.delete_parameters(Names=["/cdk-bootstrap/hnb659fds/version"])
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for secret in secrets.list_secrets()["SecretList"]:
        secrets.delete_secret(SecretId=secret["Name"], ForceDeleteWithoutRecovery=True)


def bootstrap(version: str = "29") -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value=version, Type="String"
    )


def hf_token(value: str | None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    if value is None:
        client.create_secret(Name=SECRET)
    else:
        client.create_secret(Name=SECRET, SecretString=value)


def stubbed(clients: Clients, service: str) -> Stubber:
    client = boto3.client(service, region_name=REGION)
    clients.cache[(service, REGION)] = client
    stubber = Stubber(client)
    stubber.activate()
    return stubber


def quotas(clients: Clients, g: float, p: float, g_spot: float = 10_000) -> Stubber:
    """The default config asks, in order: G/VT on-demand, G/VT spot (gpu-g6 and gpu-g6e may
    run spot), P on-demand (gpu-p5 is on-demand only)."""
    stubber = stubbed(clients, "service-quotas")
    for code, value in ((G_QUOTA, g), (G_SPOT_QUOTA, g_spot), (P_QUOTA, p)):
        stubber.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    return stubber


def eks(clients: Clients, status: str | None, version: str = "1.36",
        offered: dict[str, list[str]] | None = None) -> Stubber:
    """describe_cluster_versions, then describe_addon_versions per pinned add-on; `offered`
    replaces the builds EKS lists for some add-ons (default: exactly the pinned one)."""
    stubber = stubbed(clients, "eks")
    found = [] if status is None else [{
        "clusterVersion": version,
        "versionStatus": status,
        "endOfStandardSupportDate": datetime.datetime(2028, 3, 1),
    }]
    stubber.add_response(
        "describe_cluster_versions", {"clusterVersions": found},
        {"clusterVersions": [version], "includeAll": True},
    )
    for name, build in EKS_ADDONS[version].items():
        builds = (offered or {}).get(name, [build])
        stubber.add_response(
            "describe_addon_versions",
            {"addons": [{"addonName": name, "addonVersions": [{"addonVersion": b} for b in builds]}]},
            {"addonName": name, "kubernetesVersion": version},
        )
    return stubber


def run_checks(cfg=None, *, g=10_000, p=10_000, g_spot=10_000, eks_status="STANDARD_SUPPORT",
               clients=None, offered=None):
    cfg = cfg or load_config(DEFAULT_CONFIG)
    clients = clients or Clients(boto3.Session(region_name=REGION))
    quotas(clients, g, p, g_spot)
    eks(clients, eks_status, offered=offered)
    return preflight.preflight(cfg, str(DEFAULT_CONFIG), clients)


def line(lines, check):
    found = [item for item in lines if item.check == check]
    assert len(found) == 1, [item.check for item in lines]
    return found[0]


def test_ready_account_passes_everything():
    bootstrap()
    hf_token("hf_abc")
    lines = run_checks()
    assert {item.status for item in lines} == {"PASS"}, preflight.format_table(lines)
    assert line(lines, "credentials").detail.startswith(f"account {ACCOUNT} as arn:aws:")
    assert line(lines, "bootstrap").detail == f"{ACCOUNT}/{REGION} bootstrap version 29"
    assert line(lines, "kubernetes").detail == "1.36 in standard support until 2028-03-01"
    assert line(lines, "add-ons").detail == (
        f"all {len(EKS_ADDONS['1.36'])} pinned builds are offered for Kubernetes 1.36"
    )
    assert line(lines, "hf token").detail == f"secret {SECRET} has a value"
    for pool in ("gpu-g6", "gpu-g6e", "gpu-p5"):
        assert line(lines, f"offerings {pool}").status == "PASS"


def test_missing_credentials_fail_first(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    lines = preflight.preflight(load_config(DEFAULT_CONFIG), str(DEFAULT_CONFIG),
                                Clients(boto3.Session(region_name=REGION)))
    assert [(item.status, item.check) for item in lines] == [("FAIL", "credentials")]
    assert "aws sso login" in lines[0].fix


def test_credentials_for_another_account_fail(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["account"] = "999999999999"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(data))
    lines = preflight.preflight(load_config(path), str(path), Clients(boto3.Session(region_name=REGION)))
    assert lines[0].status == "FAIL"
    assert f"credentials are for account {ACCOUNT} but the config deploys to 999999999999" in (
        lines[0].detail
    )


def test_other_default_region_warns():
    bootstrap()
    hf_token("hf_abc")
    lines = run_checks(clients=Clients(boto3.Session(region_name="eu-west-1")))
    region = line(lines, "region")
    assert (region.status, region.fix) == ("WARN", f"export AWS_REGION={REGION}")


def test_unbootstrapped_environment_fails_with_the_bootstrap_command():
    lines = run_checks()
    item = line(lines, "bootstrap")
    assert item.status == "FAIL"
    assert item.fix == f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}"


def test_ancient_bootstrap_fails():
    bootstrap("4")
    assert line(run_checks(), "bootstrap").status == "FAIL"


def test_vcpu_demand_from_graph_plans_and_pool_limits():
    demand = vcpu_demand(load_config(DEFAULT_CONFIG))
    g, p = demand["G and VT"], demand["P"]
    # Default graph: prefill + decode of an 8B model, one g6e node each (cheapest fit).
    assert g.graphs > 0 and g.graphs % 2 == 0
    assert g.pool_names == ["gpu-g6", "gpu-g6e"]
    # gpu-p5: 32-GPU limit = 4 x p5.48xlarge (8 GPUs, 192 vCPUs), under the 1000-vCPU limit.
    assert (p.graphs, p.pools, p.pool_names) == (0, 768, ["gpu-p5"])
    # Each G pool is capped by karpenter_cpu_limits (1000).
    assert g.pools == 2000
    # Both G pools may also run spot; gpu-p5 is on-demand only.
    assert (g.spot_pools, g.spot_pool_names) == (2000, ["gpu-g6", "gpu-g6e"])
    assert (p.spot_pools, p.spot_pool_names) == (0, [])


def test_short_spot_quota_only_warns():
    bootstrap()
    hf_token("hf_abc")
    lines = run_checks(g_spot=256)
    spot = line(lines, "quota G and VT spot")
    assert spot.status == "WARN"
    assert spot.detail == ("256 vCPUs < 2000 that pools gpu-g6, gpu-g6e may launch as spot; "
                           "Karpenter falls back to on-demand")
    assert f"({G_SPOT_QUOTA}) in {REGION} to at least 2000 vCPUs" in spot.fix
    assert not [item for item in lines if item.status == "FAIL"]


def test_quota_below_graph_needs_fails_and_below_pool_limits_warns():
    bootstrap()
    need = vcpu_demand(load_config(DEFAULT_CONFIG))["G and VT"].graphs
    lines = run_checks(g=need - 1, p=0)
    g, p = line(lines, "quota G and VT"), line(lines, "quota P")
    assert g.status == "FAIL"
    assert g.detail == f"{need - 1} vCPUs < {need} the graphs need on-demand"
    assert f"({G_QUOTA}) in {REGION} to at least {need} vCPUs" in g.fix
    assert p.status == "WARN"
    assert p.detail == "0 vCPUs < 768 that pools gpu-p5 may launch (graphs need 0)"


def test_quota_never_changed_falls_back_to_the_aws_default():
    clients = Clients(boto3.Session(region_name=REGION))
    stubber = stubbed(clients, "service-quotas")
    for code, value in ((G_QUOTA, 64.0), (G_SPOT_QUOTA, 2000.0), (P_QUOTA, 768.0)):
        stubber.add_client_error("get_service_quota", "NoSuchResourceException",
                                 expected_params={"ServiceCode": "ec2", "QuotaCode": code})
        stubber.add_response("get_aws_default_service_quota",
                             {"Quota": {"QuotaCode": code, "Value": value}},
                             {"ServiceCode": "ec2", "QuotaCode": code})
    eks(clients, "STANDARD_SUPPORT")
    lines = preflight.preflight(load_config(DEFAULT_CONFIG), str(DEFAULT_CONFIG), clients)
    assert line(lines, "quota G and VT").detail.startswith("64 vCPUs < 2000 that pools")
    assert line(lines, "quota P").status == "PASS"
    stubber.assert_no_pending_responses()


def offerings(clients: Clients, offered: dict[str, list[str]]) -> None:
    """Stub every describe_instance_type_offerings call with the same answer."""
    stubber = stubbed(clients, "ec2")
    rows = [{"InstanceType": name, "LocationType": "availability-zone", "Location": zone}
            for name, zones in offered.items() for zone in zones]
    for _ in range(3):  # one call per GPU pool
        stubber.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": rows})


def test_pool_with_no_offered_type_fails_and_partial_offering_warns():
    clients = Clients(boto3.Session(region_name=REGION))
    offerings(clients, {"g6.xlarge": ["us-west-2a"], "g6e.xlarge": ["us-west-2b"]})
    lines = run_checks(clients=clients)
    assert line(lines, "offerings gpu-p5").status == "FAIL"
    assert "none of p5.48xlarge is offered in us-west-2a, us-west-2b, us-west-2c" in (
        line(lines, "offerings gpu-p5").detail
    )
    g6 = line(lines, "offerings gpu-g6")
    assert g6.status == "WARN" and "g6.2xlarge" in g6.detail and "g6.xlarge," not in g6.detail


@pytest.mark.parametrize("status, expected", [
    ("EXTENDED_SUPPORT", "WARN"), ("UNSUPPORTED", "FAIL"), (None, "FAIL"),
])
def test_kubernetes_version_support(status, expected):
    bootstrap()
    item = line(run_checks(eks_status=status), "kubernetes")
    assert item.status == expected


def test_addon_build_not_offered_fails_with_the_newest_builds():
    bootstrap()
    lines = run_checks(offered={"coredns": ["v9.9.9-eksbuild.2", "v9.9.8-eksbuild.1"]})
    item = line(lines, "add-on coredns")
    assert item.status == "FAIL"
    assert item.detail == (
        f"{EKS_ADDONS['1.36']['coredns']} is not offered for Kubernetes 1.36 in {REGION} "
        "(newest: v9.9.9-eksbuild.2, v9.9.8-eksbuild.1)"
    )
    assert item.fix == "set EKS_ADDONS['1.36']['coredns'] in config/versions.py to an offered build"
    assert not [item for item in lines if item.check == "add-ons"]


@pytest.mark.parametrize("value, expected, words", [
    (None, "FAIL", "has no value"),
    ("  ", "FAIL", "has no value"),
    ('{"HF_TOKEN": "hf_abc"}', "FAIL", "holds JSON"),
    ("hf_abc", "PASS", "has a value"),
])
def test_hf_token_secret_needs_a_plain_value(value, expected, words):
    hf_token(value)
    item = line(run_checks(), "hf token")
    assert item.status == expected and words in item.detail
    if expected == "FAIL":
        assert item.fix.startswith(f"aws secretsmanager put-secret-value --region {REGION} "
                                   f"--secret-id {SECRET}")


def test_hf_token_before_deploy_is_a_warning():
    item = line(run_checks(), "hf token")
    assert item.status == "WARN" and "does not exist yet" in item.detail


def test_run_prints_the_table_and_exits_1_on_fail(capsys, monkeypatch):
    monkeypatch.setattr(preflight, "Clients", _prestubbed_clients)
    code = preflight.run(argparse.Namespace(config=str(DEFAULT_CONFIG), profile=None))
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  bootstrap" in out
    assert f"fix: npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in out
    assert out.rstrip().splitlines()[-1].startswith("preflight: ")


def _prestubbed_clients(session):
    clients = Clients(session)
    quotas(clients, 10_000, 10_000)
    eks(clients, "STANDARD_SUPPORT")
    return clients
