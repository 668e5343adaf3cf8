"""`ops preflight`: every check against moto, or a botocore Stubber where moto lacks the API
(Service Quotas, EKS describe_cluster_versions and describe_addon_versions, EC2 capacity
reservations). The AWS-owned SSM parameters behind the AMI aliases cannot be written through
the API (moto, like AWS, refuses /aws/ names), so tests place them in moto's backend."""

from __future__ import annotations

import argparse
import contextlib
import datetime

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from config import versions
from config.catalog import instances
from config.versions import EKS_ADDONS
from ops import preflight
from ops.preflight import Clients, vcpu_demand
from plan import load_config
from tests.conftest import DEFAULT_CONFIG

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's account
SECRET = "dynamo-dev/hf-token"
G_QUOTA, P_QUOTA = "L-DB2E81BA", "L-417A185B"
G_SPOT_QUOTA = "L-3819A6DF"
STD_QUOTA, STD_SPOT_QUOTA = "L-1216C47A", "L-34B43A08"
P_SPOT_QUOTA, P5_SPOT_QUOTA = "L-7212CCBC", "L-C4BD4855"
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
K8S = "1.36"
VERSION = versions.AMI_ALIAS_AL2023.split("@")[1]
# Karpenter 1.14.1's AL2023 parameter names for the pinned alias (pkg/providers/amifamily/al2023.go).
AL2023_NVIDIA = (
    f"/aws/service/eks/optimized-ami/{K8S}/amazon-linux-2023/x86_64/nvidia/"
    f"amazon-eks-node-al2023-x86_64-nvidia-{K8S}-{VERSION}/image_id"
)
AL2023_STANDARD = (
    f"/aws/service/eks/optimized-ami/{K8S}/amazon-linux-2023/x86_64/standard/"
    f"amazon-eks-node-al2023-x86_64-standard-{K8S}-{VERSION}/image_id"
)


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


def publish_amis(*names: str) -> None:
    """AWS publishes these; nobody can put_parameter an /aws/ name, so write moto's backend."""
    from moto.ssm.models import Parameter, ssm_backends

    parameters = ssm_backends[ACCOUNT][REGION]._parameters
    for name in names:
        parameters.pop(name, None)
        parameters[name].append(
            Parameter(
                account_id=ACCOUNT,
                name=name,
                value="ami-0123456789abcdef0",
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.datetime(2026, 10, 23).timestamp(),
                version=1,
                data_type="aws:ec2:image",
            )
        )


def unpublish_amis(*names: str) -> None:
    from moto.ssm.models import ssm_backends

    for name in names:
        ssm_backends[ACCOUNT][REGION]._parameters.pop(name, None)


def spot_role() -> None:
    boto3.client("iam", region_name=REGION).create_role(
        RoleName=SPOT_ROLE,
        Path="/aws-service-role/spot.amazonaws.com/",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )


@pytest.fixture(autouse=True)
def aws(_moto):
    """Each test starts from a fresh account: no bootstrap, no HF token secret; the Spot
    service-linked role exists and the pinned AMI alias is published."""
    spot_role()
    publish_amis(AL2023_NVIDIA, AL2023_STANDARD)
    yield
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.delete_parameters(Names=["/cdk-bootstrap/hnb659fds/version"])
    iam = boto3.client("iam", region_name=REGION)
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName=SPOT_ROLE)
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


def quotas(
    clients: Clients,
    g: float,
    p: float,
    g_spot: float = 10_000,
    std: float = 10_000,
    std_spot: float = 10_000,
) -> Stubber:
    """The default config asks, in order: Standard on-demand (system nodes, cpu pool) and spot
    (the cpu pool may run spot), G/VT on-demand, G/VT spot (gpu-g6 and gpu-g6e may run spot),
    P on-demand (gpu-p5 is on-demand only)."""
    stubber = stubbed(clients, "service-quotas")
    for code, value in (
        (STD_QUOTA, std),
        (STD_SPOT_QUOTA, std_spot),
        (G_QUOTA, g),
        (G_SPOT_QUOTA, g_spot),
        (P_QUOTA, p),
    ):
        stubber.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    return stubber


def eks(
    clients: Clients, status: str | None, version: str = "1.36", offered: dict[str, list[str]] | None = None
) -> Stubber:
    """describe_cluster_versions, then describe_addon_versions per pinned add-on; `offered`
    replaces the builds EKS lists for some add-ons (default: exactly the pinned one)."""
    stubber = stubbed(clients, "eks")
    found = (
        []
        if status is None
        else [
            {
                "clusterVersion": version,
                "versionStatus": status,
                "endOfStandardSupportDate": datetime.datetime(2028, 3, 1),
            }
        ]
    )
    stubber.add_response(
        "describe_cluster_versions",
        {"clusterVersions": found},
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


def run_checks(
    cfg=None,
    *,
    g=10_000,
    p=10_000,
    g_spot=10_000,
    std=10_000,
    std_spot=10_000,
    eks_status="STANDARD_SUPPORT",
    clients=None,
    offered=None,
):
    cfg = cfg or load_config(DEFAULT_CONFIG)
    clients = clients or Clients(boto3.Session(region_name=REGION))
    quotas(clients, g, p, g_spot, std, std_spot)
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
    lines = preflight.preflight(
        load_config(DEFAULT_CONFIG), str(DEFAULT_CONFIG), Clients(boto3.Session(region_name=REGION))
    )
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
    demand = {quota.label: need for quota, need in vcpu_demand(load_config(DEFAULT_CONFIG)).items()}
    assert list(demand) == ["Standard", "Standard spot", "G and VT", "G and VT spot", "P"]
    g, p, std = demand["G and VT"], demand["P"], demand["Standard"]
    # Default graph: prefill + decode of an 8B model, one g6e node each (cheapest fit).
    assert g.graphs > 0 and g.graphs % 2 == 0
    assert g.pool_names == ["gpu-g6", "gpu-g6e"]
    # gpu-p5: 32-GPU limit = 4 x p5.48xlarge (8 GPUs, 192 vCPUs), under the 1000-vCPU limit.
    assert (p.graphs, p.pools, p.pool_names) == (0, 768, ["gpu-p5"])
    # Each G pool is capped by karpenter_cpu_limits (1000).
    assert g.pools == 2000
    # Both G pools may also run spot; gpu-p5 is on-demand only, so no P spot quota is read.
    assert (demand["G and VT spot"].pools, demand["G and VT spot"].pool_names) == (
        2000,
        ["gpu-g6", "gpu-g6e"],
    )
    # Standard: the cpu pool (1000) plus the system node group, 4 x m7i.large (2 vCPUs).
    assert (std.pools, std.pool_names, std.system, std.graphs) == (1000, ["cpu"], 8, 0)
    assert std.system_detail == "max_size 4 x 2 vCPUs of m7i.large"
    assert (std.required, std.most) == (8, 1008)
    assert demand["Standard spot"].pools == 1000


def test_every_catalog_family_has_its_quota_codes():
    """The one quota table covers every family the config may name."""
    for family in (*instances.gpu_families(), *instances.CPU_FAMILIES):
        assert preflight.quotas_for(family) is not None, family
    for row in instances.INSTANCE_TYPES.values():
        on_demand, spot = preflight.quotas_for(row.name)
        if row.family.startswith("g"):
            assert (on_demand.code, spot.code) == (G_QUOTA, G_SPOT_QUOTA), row.name
        elif row.family in ("p5", "p5e", "p5en"):
            assert (on_demand.code, spot.code) == (P_QUOTA, P5_SPOT_QUOTA), row.name
        else:
            assert row.family in ("p4d", "p4de"), row.name
            assert (on_demand.code, spot.code) == (P_QUOTA, P_SPOT_QUOTA), row.name
    for family in instances.CPU_FAMILIES:
        on_demand, spot = preflight.quotas_for(family)
        assert (on_demand.code, spot.code) == (STD_QUOTA, STD_SPOT_QUOTA), family
    # Other quota classes never fall into a row by a shared first letter.
    for other in (
        "inf2.xlarge",
        "dl1.24xlarge",
        "trn1.32xlarge",
        "hpc7g.16xlarge",
        "x2idn.metal",
        "f1.2xlarge",
        "p6-b200.48xlarge",
    ):
        assert preflight.quotas_for(other) is None, other
    assert preflight.quotas_for("vt1.3xlarge")[0].code == G_QUOTA


@pytest.mark.parametrize(
    "name, vcpus",
    [
        ("m7i.large", 2),
        ("m6i.xlarge", 4),
        ("c7i.48xlarge", 192),
        ("t3.medium", 1),
        ("m7i.metal-24xl", None),
    ],
)
def test_size_vcpus(name, vcpus):
    assert preflight.size_vcpus(name) == vcpus


def _with_pools(tmp_path, pools, **karpenter):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data.setdefault("karpenter", {}).update(karpenter)
    data["karpenter"]["base_nodepools"] = pools
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path), path


def test_p5_spot_pool_reads_the_p5_spot_quota_not_the_p4_one(tmp_path):
    cfg, _ = _with_pools(
        tmp_path,
        [
            {"name": "cpu", "instance_families": ["c7i"], "capacity_types": ["on-demand"]},
            {"name": "gpu-g6e", "instance_families": ["g6e"], "capacity_types": ["on-demand"]},
            {
                "name": "gpu-p5",
                "instance_types": ["p5.48xlarge"],
                "efa": True,
                "capacity_types": ["spot", "on-demand"],
            },
            {"name": "gpu-p4", "instance_types": ["p4d.24xlarge"], "efa": True, "capacity_types": ["spot"]},
        ],
    )
    demand = {quota.label: (quota.code, need) for quota, need in vcpu_demand(cfg).items()}
    assert list(demand) == ["Standard", "G and VT", "P", "P spot", "P5 spot"]
    assert demand["P5 spot"][0] == P5_SPOT_QUOTA
    assert demand["P5 spot"][1].pool_names == ["gpu-p5"]
    assert demand["P spot"][0] == P_SPOT_QUOTA
    assert demand["P spot"][1].pool_names == ["gpu-p4"]
    # On-Demand P5 counts under the one P quota; the spot-only p4 pool adds nothing there.
    assert demand["P"][0] == P_QUOTA and demand["P"][1].pool_names == ["gpu-p5"]

    clients = Clients(boto3.Session(region_name=REGION))
    stubber = stubbed(clients, "service-quotas")
    for code, value in (
        (STD_QUOTA, 10_000),
        (G_QUOTA, 10_000),
        (P_QUOTA, 10_000),
        (P_SPOT_QUOTA, 10_000),
        (P5_SPOT_QUOTA, 96),
    ):
        stubber.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    lines: list[preflight.Line] = []
    preflight.check_quotas(cfg, clients, lines)
    stubber.assert_no_pending_responses()
    item = line(lines, "quota P5 spot")
    assert item.status == "WARN"
    assert "'All P5 Spot Instance Requests' (L-C4BD4855)" in item.fix


def test_standard_quota_below_the_system_node_group_fails():
    bootstrap()
    lines = run_checks(std=5)
    item = line(lines, "quota Standard")
    assert item.status == "FAIL"
    assert item.detail == ("5 vCPUs < 8 the system node group needs (max_size 4 x 2 vCPUs of m7i.large)")
    assert item.fix == (
        "request an increase of 'Running On-Demand Standard (A, C, D, H, I, M, R, "
        f"T, Z) instances' ({STD_QUOTA}) in {REGION} to at least 8 vCPUs "
        "(Service Quotas console)"
    )


def test_standard_quota_below_the_cpu_pool_warns():
    bootstrap()
    item = line(run_checks(std=64), "quota Standard")
    assert item.status == "WARN"
    assert item.detail == (
        "64 vCPUs < 1008 that pools cpu and the system node group may launch (graphs need 0, system nodes 8)"
    )


def test_short_spot_quota_only_warns():
    bootstrap()
    hf_token("hf_abc")
    lines = run_checks(g_spot=256)
    spot = line(lines, "quota G and VT spot")
    assert spot.status == "WARN"
    assert spot.detail == (
        "256 vCPUs < 2000 that pools gpu-g6, gpu-g6e may launch as spot; Karpenter falls back to on-demand"
    )
    assert f"({G_SPOT_QUOTA}) in {REGION} to at least 2000 vCPUs" in spot.fix
    assert not [item for item in lines if item.status == "FAIL"]


def test_quota_below_graph_needs_fails_and_below_pool_limits_warns():
    bootstrap()
    need = vcpu_demand(load_config(DEFAULT_CONFIG))[preflight.G_VT].graphs
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
    for code, value in (
        (STD_QUOTA, 5000.0),
        (STD_SPOT_QUOTA, 5000.0),
        (G_QUOTA, 64.0),
        (G_SPOT_QUOTA, 2000.0),
        (P_QUOTA, 768.0),
    ):
        stubber.add_client_error(
            "get_service_quota",
            "NoSuchResourceException",
            expected_params={"ServiceCode": "ec2", "QuotaCode": code},
        )
        stubber.add_response(
            "get_aws_default_service_quota",
            {"Quota": {"QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    eks(clients, "STANDARD_SUPPORT")
    lines = preflight.preflight(load_config(DEFAULT_CONFIG), str(DEFAULT_CONFIG), clients)
    assert line(lines, "quota G and VT").detail.startswith("64 vCPUs < 2000 that pools")
    assert line(lines, "quota P").status == "PASS"
    stubber.assert_no_pending_responses()


def offerings(clients: Clients, offered: dict[str, list[str]]) -> None:
    """Stub every describe_instance_type_offerings call with the same answer."""
    stubber = stubbed(clients, "ec2")
    rows = [
        {"InstanceType": name, "LocationType": "availability-zone", "Location": zone}
        for name, zones in offered.items()
        for zone in zones
    ]
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


@pytest.mark.parametrize(
    "status, expected",
    [
        ("EXTENDED_SUPPORT", "WARN"),
        ("UNSUPPORTED", "FAIL"),
        (None, "FAIL"),
    ],
)
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


@pytest.mark.parametrize(
    "value, expected, words",
    [
        (None, "FAIL", "has no value"),
        ("  ", "FAIL", "has no value"),
        ('{"HF_TOKEN": "hf_abc"}', "FAIL", "holds JSON"),
        ("hf_abc", "PASS", "has a value"),
    ],
)
def test_hf_token_secret_needs_a_plain_value(value, expected, words):
    hf_token(value)
    item = line(run_checks(), "hf token")
    assert item.status == expected and words in item.detail
    if expected == "FAIL":
        assert item.fix.startswith(
            f"aws secretsmanager put-secret-value --region {REGION} --secret-id {SECRET}"
        )


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


# -- EC2 Spot service-linked role ---------------------------------------------------------


def test_missing_spot_role_fails_with_the_command_that_creates_it():
    boto3.client("iam", region_name=REGION).delete_role(RoleName=SPOT_ROLE)
    item = line(run_checks(), "spot role")
    assert item.status == "FAIL"
    assert item.detail.startswith(f"{SPOT_ROLE} does not exist; pools cpu, gpu-g6, gpu-g6e allow spot")
    assert item.fix == "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"


def test_spot_role_present_passes_and_unreadable_warns():
    assert line(run_checks(), "spot role").status == "PASS"
    clients = Clients(boto3.Session(region_name=REGION))
    stubber = stubbed(clients, "iam")
    stubber.add_client_error("get_role", "AccessDenied", expected_params={"RoleName": SPOT_ROLE})
    lines: list[preflight.Line] = []
    preflight.check_spot_role(load_config(DEFAULT_CONFIG), clients, lines)
    assert [(i.status, i.fix) for i in lines] == [("WARN", "allow iam:GetRole")]


def test_no_spot_pool_no_spot_role_check(tmp_path):
    cfg, _ = _with_pools(
        tmp_path,
        [
            {"name": "cpu", "instance_families": ["c7i"]},
            {"name": "gpu-g6e", "instance_families": ["g6e"]},
        ],
    )
    clients = Clients(boto3.Session(region_name=REGION))
    stubbed(clients, "iam")  # no responses queued: any call would fail the test
    lines: list[preflight.Line] = []
    preflight.check_spot_role(cfg, clients, lines)
    assert lines == []


# -- AMI alias parameters (Karpenter 1.14.1 pkg/providers/amifamily) ----------------------


def test_ami_parameter_names_follow_karpenter_1_14_1():
    assert preflight.ami_parameters("al2023@v20261023", "1.36", gpu=True, cpu=True) == [
        "/aws/service/eks/optimized-ami/1.36/amazon-linux-2023/x86_64/standard/"
        "amazon-eks-node-al2023-x86_64-standard-1.36-v20261023/image_id",
        "/aws/service/eks/optimized-ami/1.36/amazon-linux-2023/x86_64/nvidia/"
        "amazon-eks-node-al2023-x86_64-nvidia-1.36-v20261023/image_id",
    ]
    assert preflight.ami_parameters("al2023@latest", "1.35", gpu=True, cpu=False) == [
        "/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
    ]
    # Bottlerocket: the "v" of the release is not part of the SSM path.
    assert preflight.ami_parameters("bottlerocket@v1.67.0", "1.36", gpu=True, cpu=True) == [
        "/aws/service/bottlerocket/aws-k8s-1.36/x86_64/1.67.0/image_id",
        "/aws/service/bottlerocket/aws-k8s-1.36-nvidia/x86_64/1.67.0/image_id",
    ]
    assert preflight.ami_parameters("bottlerocket@latest", "1.36", gpu=False, cpu=True) == [
        "/aws/service/bottlerocket/aws-k8s-1.36/x86_64/latest/image_id",
    ]


def test_pinned_alias_published_passes():
    item = line(run_checks(), "ami alias")
    assert (item.status, item.detail) == (
        "PASS",
        f"{versions.AMI_ALIAS_AL2023} is published for Kubernetes 1.36 (2 variants)",
    )


def test_alias_missing_for_the_kubernetes_version_fails_with_the_pin_to_bump():
    unpublish_amis(AL2023_NVIDIA)
    item = line(run_checks(), "ami alias")
    assert item.status == "FAIL"
    assert AL2023_NVIDIA in item.detail and AL2023_STANDARD not in item.detail
    assert item.fix == (
        "set AMI_ALIAS_AL2023 in config/versions.py to a release published for Kubernetes 1.36"
    )


def test_bottlerocket_alias_reads_its_own_parameters(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data.setdefault("karpenter", {})["use_bottlerocket"] = True
    path = tmp_path / "br.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    release = versions.AMI_ALIAS_BOTTLEROCKET.split("@")[1].lstrip("v")
    names = [
        f"/aws/service/bottlerocket/aws-k8s-1.36/x86_64/{release}/image_id",
        f"/aws/service/bottlerocket/aws-k8s-1.36-nvidia/x86_64/{release}/image_id",
    ]
    lines: list[preflight.Line] = []
    clients = Clients(boto3.Session(region_name=REGION))
    preflight.check_ami_aliases(cfg, clients, lines)
    assert lines[0].status == "FAIL" and "AMI_ALIAS_BOTTLEROCKET" in lines[0].fix
    publish_amis(*names)
    try:
        lines = []
        preflight.check_ami_aliases(cfg, clients, lines)
        assert lines[0].status == "PASS"
    finally:
        unpublish_amis(*names)


# -- capacity reservations (duck-typed: pool.capacity_reservations[].id / .tags) ----------

CR = "cr-0123456789abcdef0"


def _reservation_cfg(pool_kwargs: dict, terms: list):
    from types import SimpleNamespace

    cfg = load_config(DEFAULT_CONFIG)
    pool = cfg.karpenter.pools()[-1].model_copy(update=pool_kwargs)  # gpu-p5
    proxy = SimpleNamespace(
        name=pool.name,
        zones=pool.zones,
        is_gpu=pool.is_gpu,
        launchable=pool.launchable,
        instance_types=pool.instance_types,
        instance_families=pool.instance_families,
        capacity_reservations=terms,
    )
    karpenter = SimpleNamespace(pools=lambda: [proxy])
    return SimpleNamespace(karpenter=karpenter, network=cfg.network, region=REGION)


def _term(id=None, tags=None, reservation_type=None):
    from types import SimpleNamespace

    return SimpleNamespace(id=id, tags=tags or {}, reservation_type=reservation_type)


def _reservation(**overrides):
    item = {
        "CapacityReservationId": CR,
        "InstanceType": "p5.48xlarge",
        "AvailabilityZone": "us-west-2a",
        "State": "active",
        "ReservationType": "default",
        "TotalInstanceCount": 4,
        "AvailableInstanceCount": 4,
    }
    item.update(overrides)
    return item


def _check_reservations(cfg, response=None, error=None, params=None):
    clients = Clients(boto3.Session(region_name=REGION))
    stubber = stubbed(clients, "ec2")
    if error:
        stubber.add_client_error("describe_capacity_reservations", error, expected_params=params)
    else:
        stubber.add_response("describe_capacity_reservations", {"CapacityReservations": response}, params)
    lines: list[preflight.Line] = []
    preflight.check_capacity_reservations(cfg, clients, lines)
    stubber.assert_no_pending_responses()
    return lines


def test_active_reservation_by_id_passes():
    lines = _check_reservations(
        _reservation_cfg({}, [_term(id=CR)]), [_reservation()], params={"CapacityReservationIds": [CR]}
    )
    assert [(i.status, i.check, i.detail) for i in lines] == [
        ("PASS", "reservation gpu-p5", f"{CR} active: p5.48xlarge in us-west-2a, 4 of 4 available")
    ]


def test_unknown_reservation_id_fails():
    lines = _check_reservations(
        _reservation_cfg({}, [_term(id=CR)]),
        error="InvalidCapacityReservationId.NotFound",
        params={"CapacityReservationIds": [CR]},
    )
    assert lines[0].status == "FAIL" and f"{CR} not found in {REGION}" in lines[0].detail


def test_tags_matching_nothing_fail():
    lines = _check_reservations(
        _reservation_cfg({}, [_term(tags={"team": "llm"})]),
        [],
        params={"Filters": [{"Name": "tag:team", "Values": ["llm"]}]},
    )
    assert lines[0].status == "FAIL"
    assert lines[0].detail == f"no capacity reservation matches team=llm in {REGION}"


def test_scheduled_capacity_block_warns_with_its_start():
    block = _reservation(
        State="scheduled", ReservationType="capacity-block", StartDate=datetime.datetime(2026, 12, 10, 11, 30)
    )
    lines = _check_reservations(
        _reservation_cfg({}, [_term(id=CR, reservation_type="capacity-block")]), [block]
    )
    assert lines[0].status == "WARN"
    assert lines[0].detail == (
        f"Capacity Block {CR} (p5.48xlarge in us-west-2a) starts "
        "2026-12-10 11:30 UTC; no nodes from it before then"
    )


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"State": "expired"}, f"{CR} (p5.48xlarge in us-west-2a) is expired"),
        ({"State": "scheduled"}, "is scheduled"),  # only Capacity Blocks may be scheduled
        ({"InstanceType": "p5e.48xlarge"}, "holds p5e.48xlarge, which pool gpu-p5 does not launch"),
        ({"AvailabilityZone": "us-west-2d"}, "is in us-west-2d, outside the pool's zones"),
        ({"ReservationType": "capacity-block"}, "is a capacity-block reservation, the pool says default"),
    ],
)
def test_unusable_reservations_fail(overrides, words):
    lines = _check_reservations(
        _reservation_cfg({}, [_term(id=CR, reservation_type="default")]), [_reservation(**overrides)]
    )
    assert lines[0].status == "FAIL" and words in lines[0].detail, lines[0].detail


def test_reservation_outside_a_zone_restricted_pool_fails():
    lines = _check_reservations(_reservation_cfg({"zones": ["us-west-2b"]}, [_term(id=CR)]), [_reservation()])
    assert lines[0].status == "FAIL" and "outside the pool's zones (us-west-2b)" in lines[0].detail


def test_pools_without_reservations_make_no_ec2_call():
    clients = Clients(boto3.Session(region_name=REGION))
    stubbed(clients, "ec2")
    lines: list[preflight.Line] = []
    preflight.check_capacity_reservations(load_config(DEFAULT_CONFIG), clients, lines)
    assert lines == []
