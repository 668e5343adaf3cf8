"""Teardown guard handler against moto: removes exactly this cluster's tagged leftovers.

The leftovers carry the tags Karpenter really applies: tests/data/karpenter/
resource-tags-v<KARPENTER>.json, read from Karpenter's source by tools/karpenter_tags.py.
The handler's tag constants and the guard's IAM conditions are held to that record, so a
Karpenter bump that changes a tag fails here. Load balancers, target groups and security
groups of LoadBalancer Services carry the tags and names cloud-provider-aws's service
controller applies (tests/data/upstream/cloud-provider-aws-v1.36.1.json, read from its source
by tools/cloud_provider_aws.py), and the handler and the IAM conditions are held to that.
"""

from __future__ import annotations

import importlib.util
import json
import time

import boto3
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2_cdk
from aws_cdk import aws_iam as iam_cdk
from aws_cdk.assertions import Template
from moto import mock_aws

from config import versions
from config.names import VOLUME_CLUSTER_TAG_KEY
from stacks.teardown_guard import TeardownGuard
from tests.conftest import REPO
from tools import cloud_provider_aws
from tools.karpenter_tags import load_record, mismatches, record_path

pytestmark = pytest.mark.xdist_group("teardown-guard")

CLUSTER = "dynamo-dev"
OTHER = "someone-else"
REGION = "us-west-2"
NODE_ROLE = f"KarpenterNodeRole-{CLUSTER}"
VOLUME_TAG = "dynamo-eks/cluster"


def _load_handler():
    path = REPO / "stacks" / "teardown_guard_handler" / "index.py"
    spec = importlib.util.spec_from_file_location("teardown_guard_index", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handler = _load_handler()
RECORD = load_record(versions.KARPENTER)


def _tags(pairs: dict[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def karpenter_tags(kind: str, cluster: str = CLUSTER, nodepool: str = "gpu-g6") -> dict[str, str]:
    """The tags Karpenter puts on a resource of this kind (from the record), filled in."""
    values = {
        "{cluster}": cluster,
        "{nodepool}": nodepool,
        "{ec2nodeclass}": "gpu",
        "{nodeclaim}": f"{nodepool}-x7k2p",
        "{node-name}": "ip-10-0-3-17.us-west-2.compute.internal",
        "{region}": REGION,
    }

    def fill(text: str) -> str:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        assert "{" not in text, text
        return text

    return {fill(k): fill(v) for k, v in RECORD["resources"][kind]["tags"].items()}


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"]
        other_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

        def instance(tags: dict[str, str]) -> str:
            return ec2.run_instances(
                ImageId=image,
                MinCount=1,
                MaxCount=1,
                SubnetId=subnet,
                TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(tags)}],
            )["Instances"][0]["InstanceId"]

        def template(name: str, tags: dict[str, str]) -> str:
            return ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData={"ImageId": image},
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": _tags(tags)}],
            )["LaunchTemplate"]["LaunchTemplateId"]

        def eni(subnet_id: str, tags: dict[str, str]) -> str:
            return ec2.create_network_interface(
                SubnetId=subnet_id,
                TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags(tags)}],
            )["NetworkInterface"]["NetworkInterfaceId"]

        def volume(tags: dict[str, str]) -> str:
            return ec2.create_volume(
                AvailabilityZone=f"{REGION}a",
                Size=50,
                VolumeType="gp3",
                TagSpecifications=[{"ResourceType": "volume", "Tags": _tags(tags)}],
            )["VolumeId"]

        iam.create_role(RoleName=NODE_ROLE, AssumeRolePolicyDocument="{}")
        iam.create_role(RoleName="KarpenterNodeRole-someone-else", AssumeRolePolicyDocument="{}")

        def profile(name: str, role: str, tags: dict[str, str]) -> str:
            iam.create_instance_profile(InstanceProfileName=name, Tags=_tags(tags))
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
            return name

        resources = {
            "ours": {
                "instances": [instance(karpenter_tags("instance")) for _ in range(3)],
                # Launched but not yet named/tagged by the tagging controller, and only the EKS
                # cluster tag of the two: still Karpenter's (nodepool) and ours.
                "eks_tag_instance": instance(
                    {"eks:eks-cluster-name": CLUSTER, "karpenter.sh/nodepool": "cpu"}
                ),
                "templates": [
                    template(f"karpenter.k8s.aws/{i}", karpenter_tags("launch-template", nodepool=f"p{i}"))
                    for i in range(2)
                ],
                "enis": [
                    eni(subnet, karpenter_tags("network-interface")),
                    eni(subnet, {handler.VPC_CNI_CLUSTER_TAG_KEY: CLUSTER}),
                ],
                "profile": profile(f"{CLUSTER}_123", NODE_ROLE, karpenter_tags("instance-profile")),
                "volumes": [
                    *(volume({VOLUME_TAG: CLUSTER, "CSIVolumeName": f"pvc-{i}"}) for i in range(2)),
                    # A node volume with deleteOnTermination: false, tagged by CreateFleet.
                    volume(karpenter_tags("volume")),
                ],
            },
            "keep": {
                "instances": [
                    instance(karpenter_tags("instance", OTHER)),
                    # Tagged for our cluster but not launched by Karpenter (e.g. system nodes).
                    instance({f"kubernetes.io/cluster/{CLUSTER}": "owned", "eks:eks-cluster-name": CLUSTER}),
                    instance({"team": "research"}),
                ],
                "templates": [
                    template("other-cluster", karpenter_tags("launch-template", OTHER)),
                    # An EKS managed node group's template of OUR cluster: no EC2NodeClass tag.
                    template(
                        "eks-system-nodes",
                        {
                            "eks:cluster-name": CLUSTER,
                            "eks:nodegroup-name": "system",
                            "eks:eks-cluster-name": CLUSTER,
                            f"kubernetes.io/cluster/{CLUSTER}": "owned",
                        },
                    ),
                    template("untagged", {"team": "x"}),
                ],
                "enis": [
                    eni(subnet, karpenter_tags("network-interface", OTHER)),
                    eni(subnet, {handler.VPC_CNI_CLUSTER_TAG_KEY: OTHER}),
                    eni(subnet, {"team": "research"}),
                    # Ours by tag, but outside the cluster's subnets.
                    eni(other_subnet, karpenter_tags("network-interface")),
                ],
                "profiles": [
                    profile(
                        f"{OTHER}_9",
                        "KarpenterNodeRole-someone-else",
                        karpenter_tags("instance-profile", OTHER),
                    ),
                    # Holds our node role but is not tagged as Karpenter's.
                    profile("hand-made", NODE_ROLE, {}),
                ],
                "volumes": [
                    volume({VOLUME_TAG: OTHER}),
                    volume(karpenter_tags("volume", OTHER)),
                    # Our cluster's name, but not a Karpenter node volume.
                    volume({"eks:eks-cluster-name": CLUSTER}),
                    volume({"team": "research"}),
                ],
            },
        }
        yield ec2, iam, subnet, resources


def _live(ec2, ids: list[str]) -> set[str]:
    found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {
        i["InstanceId"]
        for r in found
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }


def _run(ec2, iam, subnet, volume_tag_key=VOLUME_TAG, seconds=30):
    return handler.sweep(
        cluster_name=CLUSTER,
        subnet_ids=[subnet],
        node_role_name=NODE_ROLE,
        volume_tag_key=volume_tag_key,
        deadline=time.monotonic() + seconds,
        ec2=ec2,
        iam=iam,
        sleep=lambda _seconds: None,
    )


def _delete_event(subnet: str, volume_tag_key: str = VOLUME_TAG) -> dict:
    return {
        "RequestType": "Delete",
        "PhysicalResourceId": "guard",
        "ResourceProperties": {
            "ClusterName": CLUSTER,
            "SubnetIds": [subnet],
            "NodeRoleName": NODE_ROLE,
            "VolumeTagKey": volume_tag_key,
        },
    }


def test_delete_removes_exactly_this_clusters_karpenter_leftovers(world, monkeypatch):
    ec2, iam, subnet, res = world
    monkeypatch.setattr(handler, "POLL_SECONDS", 0)
    summary = handler.on_event(_delete_event(subnet), None)["Data"]
    ours, keep = res["ours"], res["keep"]

    assert summary == {
        "instances": "4",
        "launch_templates": "2",
        "instance_profiles": "1",
        "network_interfaces": "2",
        "volumes": "3",
        "load_balancers": "0",
        "classic_load_balancers": "0",
        "target_groups": "0",
        "security_groups": "0",
    }
    assert _live(ec2, ours["instances"] + [ours["eks_tag_instance"]]) == set()
    assert _live(ec2, keep["instances"]) == set(keep["instances"])

    templates = {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    assert templates.isdisjoint(ours["templates"])
    assert set(keep["templates"]) <= templates

    enis = {e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert enis.isdisjoint(ours["enis"])
    assert set(keep["enis"]) <= enis

    profiles = {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]}
    assert ours["profile"] not in profiles
    assert set(keep["profiles"]) <= profiles

    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert volumes.isdisjoint(ours["volumes"])
    assert set(keep["volumes"]) <= volumes


def test_retained_data_keeps_its_volumes(world):
    ec2, iam, subnet, res = world
    assert _run(ec2, iam, subnet, volume_tag_key="")["volumes"] == 0
    volumes = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    assert len(res["ours"]["volumes"]) == 3
    assert set(res["ours"]["volumes"]) <= volumes


def test_attached_volume_is_left_after_a_bounded_wait(world):
    ec2, iam, subnet, res = world
    attached = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=50,
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tags({VOLUME_TAG: CLUSTER})}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=attached, InstanceId=res["keep"]["instances"][2], Device="/dev/sdf")
    summary = _run(ec2, iam, subnet, seconds=-1)
    assert summary["volumes"] == 3
    assert attached in {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}


def test_second_run_is_a_no_op(world):
    ec2, iam, subnet, _ = world
    _run(ec2, iam, subnet)
    assert _run(ec2, iam, subnet) == {
        "instances": 0,
        "launch_templates": 0,
        "instance_profiles": 0,
        "network_interfaces": 0,
        "volumes": 0,
        "load_balancers": 0,
        "classic_load_balancers": 0,
        "target_groups": 0,
        "security_groups": 0,
    }


def test_in_use_enis_are_left_alone(world):
    ec2, iam, subnet, res = world
    instance = res["keep"]["instances"][2]
    attached = ec2.create_network_interface(
        SubnetId=subnet,
        TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": _tags(karpenter_tags("network-interface"))}
        ],
    )["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=attached, InstanceId=instance, DeviceIndex=1)
    _run(ec2, iam, subnet)
    enis = {e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert attached in enis


class _PagedEc2:
    """Fake EC2 client serving describe_instances in pages, as a large account would."""

    def __init__(self, ids: list[str], page_size: int) -> None:
        self.live = set(ids)
        self.page_size = page_size
        self.terminate_calls: list[int] = []

    def get_paginator(self, name):
        assert name == "describe_instances"
        fake = self

        class Pager:
            def paginate(self, **_kwargs):
                ids = sorted(fake.live)
                for start in range(0, len(ids), fake.page_size):
                    chunk = ids[start : start + fake.page_size]
                    yield {"Reservations": [{"Instances": [{"InstanceId": i} for i in chunk]}]}

        return Pager()

    def terminate_instances(self, InstanceIds):
        self.terminate_calls.append(len(InstanceIds))
        self.live -= set(InstanceIds)


def test_follows_every_page_and_terminates_in_batches():
    ids = [f"i-{n:017x}" for n in range(1200)]
    ec2 = _PagedEc2(ids, page_size=100)
    assert handler.terminate_instances(ec2, CLUSTER, time.monotonic() + 5, lambda _s: None) == 1200
    assert ec2.live == set()
    assert max(ec2.terminate_calls) <= 500 and sum(ec2.terminate_calls) == 1200


def test_bounded_wait_reports_stuck_instances(world, monkeypatch):
    ec2, iam, subnet, res = world
    stuck = res["ours"]["instances"][0]
    monkeypatch.setattr(handler, "cluster_instances", lambda _ec2, _name: [stuck])
    monkeypatch.setattr(ec2, "terminate_instances", lambda **_kwargs: {})
    with pytest.raises(RuntimeError, match=f"still shutting down: {stuck}"):
        handler.terminate_instances(ec2, CLUSTER, time.monotonic() - 1, lambda _s: None)


def test_create_and_update_do_nothing(world):
    ec2, iam, subnet, res = world
    event = {
        "RequestType": "Create",
        "ResourceProperties": {"ClusterName": CLUSTER, "SubnetIds": [subnet], "NodeRoleName": NODE_ROLE},
    }
    assert handler.on_event(event, None) == {"PhysicalResourceId": f"teardown-guard-{CLUSTER}"}
    assert _live(ec2, res["ours"]["instances"]) == set(res["ours"]["instances"])


def test_delete_event_keeps_its_physical_id(world, monkeypatch):
    _, _, subnet, _ = world
    monkeypatch.setattr(handler, "POLL_SECONDS", 0)
    assert handler.on_event(_delete_event(subnet), None)["PhysicalResourceId"] == "guard"


# --------------------------------------------------------------------------- tags vs Karpenter

# Tags the guard relies on that are not Karpenter's: the VPC CNI's ENI tag and our EBS CSI
# volume tag (config/names.py).
NOT_KARPENTER = {
    "network-interface": {handler.VPC_CNI_CLUSTER_TAG_KEY: "{cluster}"},
    "volume": {VOLUME_CLUSTER_TAG_KEY: "{cluster}"},
}
ARN_KINDS = {
    ":instance/*": ("instance",),
    ":launch-template/*": ("launch-template",),
    ":network-interface/*": ("network-interface",),
    ":volume/*": ("volume",),
    ":instance-profile/*": ("instance-profile",),
}
# The service controller's resources (one DeleteLoadBalancer ARN pattern serves both kinds).
SERVICE_ARN_KINDS = {
    ":loadbalancer/*": ("load-balancer", "classic-load-balancer"),
    ":targetgroup/*": ("target-group",),
    ":security-group/*": ("security-group",),
}


def _guard_template(delete_volumes: bool) -> dict:
    stack = Stack(App(), "Bare", env=Environment(account="111111111111", region=REGION))
    TeardownGuard(
        stack,
        "Guard",
        cluster_name=CLUSTER,
        subnets=[ec2_cdk.Subnet.from_subnet_id(stack, "Subnet", "subnet-0123456789abcdef0")],
        node_role=iam_cdk.Role(stack, "NodeRole", assumed_by=iam_cdk.ServicePrincipal("ec2.amazonaws.com")),
        delete_volumes=delete_volumes,
    )
    return Template.from_stack(stack).to_json()


def iam_condition_tags(
    template: dict, arn_kinds: dict[str, tuple[str, ...]] = ARN_KINDS
) -> dict[str, dict[str, str | None]]:
    """Per resource kind, the tags the guard's IAM conditions require (placeholders as in the
    record: the cluster name becomes {cluster}, StringLike "*" becomes None)."""
    used: dict[str, dict[str, str | None]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "GuardRole" not in json.dumps(
            resource["Properties"]["Roles"]
        ):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            arns = json.dumps(statement["Resource"])
            kinds = {kind for suffix, found in arn_kinds.items() if suffix in arns for kind in found}
            for operator, pairs in statement.get("Condition", {}).items():
                for key, value in pairs.items():
                    if not key.startswith("aws:ResourceTag/"):
                        continue
                    tag_key = key.removeprefix("aws:ResourceTag/").replace(CLUSTER, "{cluster}")
                    tag_value = (
                        None
                        if (operator, value) == ("StringLike", "*")
                        else value.replace(CLUSTER, "{cluster}")
                    )
                    for kind in kinds:
                        used.setdefault(kind, {})[tag_key] = tag_value
    return used


def _karpenter_only(used: dict[str, dict[str, str | None]]) -> dict[str, dict[str, str | None]]:
    return {
        kind: {k: v for k, v in tags.items() if k not in NOT_KARPENTER.get(kind, {})}
        for kind, tags in used.items()
    }


def test_record_is_for_the_pinned_karpenter():
    assert record_path(versions.KARPENTER).exists(), "run tools/karpenter_tags.py for the new pin"
    assert RECORD["source"]["repository"] == "https://github.com/aws/karpenter-provider-aws"
    assert RECORD["source"]["tag"] == f"v{versions.KARPENTER}"
    assert len(RECORD["source"]["commit"]) == 40
    templates = RECORD["resources"]["launch-template"]
    assert {"eks:eks-cluster-name", "karpenter.k8s.aws/ec2nodeclass"} <= set(templates["tag_keys"])
    assert "eks:eks-cluster-name" in templates["cluster_templated"]


def test_handler_tags_are_karpenters():
    assert mismatches(handler.KARPENTER_TAGS, RECORD) == []


@pytest.mark.parametrize("delete_volumes", [True, False])
def test_iam_conditions_use_the_handlers_tags(delete_volumes):
    used = iam_condition_tags(_guard_template(delete_volumes))
    expected = {k: v for k, v in handler.KARPENTER_TAGS.items() if delete_volumes or k != "volume"}
    assert _karpenter_only(used) == expected
    assert mismatches(_karpenter_only(used), RECORD) == []
    for kind, extra in NOT_KARPENTER.items():
        if kind in used:
            assert {k: used[kind][k] for k in extra} == extra


def test_a_stale_tag_is_reported():
    """Planted defect: the tag Karpenter dropped in v1.1 must not pass the comparison."""
    stale = {"launch-template": {"karpenter.k8s.aws/cluster": "{cluster}"}}
    (problem,) = mismatches(stale, RECORD)
    assert "launch-template" in problem and "'karpenter.k8s.aws/cluster'" in problem
    assert "eks:eks-cluster-name" in problem  # names what Karpenter applies instead

    planted = iam_condition_tags(_guard_template(True))
    planted["launch-template"]["karpenter.k8s.aws/cluster"] = "{cluster}"
    assert any("karpenter.k8s.aws/cluster" in p for p in mismatches(_karpenter_only(planted), RECORD))
    wrong_value = {"instance": {"kubernetes.io/cluster/{cluster}": "shared"}}
    assert mismatches(wrong_value, RECORD) == [
        "instance: tag 'kubernetes.io/cluster/{cluster}' expected value 'shared', Karpenter sets 'owned'"
    ]


# --------------------------------------------------------------------------- load balancers

# The cloud-provider-aws release of our default Kubernetes minor (as tests/test_frontend_exposure.py).
SERVICE_RECORD_REF = "v1.36.1"
SERVICE_RECORD = cloud_provider_aws.load_record(SERVICE_RECORD_REF)
SERVICE = "dynamo/llama-frontend-lb"


def service_tags(kind: str, cluster: str = CLUSTER, service: str = SERVICE) -> dict[str, str]:
    """The tags the service controller puts on a resource of this kind (from the record)."""
    namespace, name = service.split("/")
    values = {"{cluster}": cluster, "{namespace}": namespace, "{name}": name}

    def fill(text: str) -> str:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        assert "{" not in text, text
        return text

    return {fill(k): fill(v) for k, v in SERVICE_RECORD["tags"]["resources"][kind].items()}


def sg_name(kind: str, rest: str) -> str:
    return SERVICE_RECORD["tags"]["security_group_name_prefixes"][kind] + rest


@pytest.fixture
def services(world):
    """What the service controller made for this cluster's Services and another cluster's,
    plus look-alikes it did not make, in the moto account of `world`."""
    ec2, _, subnet, _ = world
    elbv2 = boto3.client("elbv2", region_name=REGION)
    elb = boto3.client("elb", region_name=REGION)
    vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]

    def security_group(name: str, tags: dict[str, str], vpc_id: str = vpc) -> str:
        return ec2.create_security_group(
            GroupName=name,
            Description=f"Security group for Kubernetes ELB {name}",
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(tags)}],
        )["GroupId"]

    def nlb(name: str, tags: dict[str, str], groups: list[str] | None = None) -> tuple[str, str]:
        arn = elbv2.create_load_balancer(
            Name=name,
            Subnets=[subnet],
            Type="network",
            Scheme="internal",
            Tags=_tags(tags),
            **({"SecurityGroups": groups} if groups else {}),
        )["LoadBalancers"][0]["LoadBalancerArn"]
        group = elbv2.create_target_group(
            Name=f"k8s-{name[:20]}",
            Protocol="TCP",
            Port=30080,
            VpcId=vpc,
            TargetType="instance",
            Tags=_tags(tags),
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(
            LoadBalancerArn=arn,
            Protocol="TCP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
        )
        return arn, group

    def clb(name: str, tags: dict[str, str], group: str) -> str:
        elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            Subnets=[subnet],
            SecurityGroups=[group],
            Scheme="internal",
            Tags=_tags(tags),
        )
        return name

    # The EKS cluster security group: EKS tags it kubernetes.io/cluster/<cluster>=owned too.
    cluster_sg = security_group(
        f"eks-cluster-sg-{CLUSTER}-1234567890", {f"kubernetes.io/cluster/{CLUSTER}": "owned"}
    )
    ours_nlb_sg = security_group(
        sg_name("load-balancer", "dynamo-llama-fr-0123456789"), service_tags("security-group")
    )
    ours_clb_sg = security_group(
        sg_name("classic-load-balancer", "a1b2c3d4e5f6"), service_tags("security-group")
    )
    # The controller opens the nodes' (here: the cluster's) group to the Classic ELB's group.
    for source in (ours_clb_sg, cluster_sg):
        ec2.authorize_security_group_ingress(
            GroupId=cluster_sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 30080,
                    "ToPort": 30080,
                    "UserIdGroupPairs": [{"GroupId": source}],
                }
            ],
        )
    ours_nlb, ours_tg = nlb("a0123456789abcdef0123456789abcde", service_tags("load-balancer"), [ours_nlb_sg])
    ours_clb = clb("a1b2c3d4e5f6", service_tags("classic-load-balancer"), ours_clb_sg)

    other_sg = security_group(
        sg_name("classic-load-balancer", "f0e1d2c3"), service_tags("security-group", OTHER)
    )
    other_nlb, other_tg = nlb("b0123456789abcdef0123456789abcde", service_tags("load-balancer", OTHER))
    other_clb = clb("f0e1d2c3", service_tags("classic-load-balancer", OTHER), other_sg)
    untagged_nlb, untagged_tg = nlb("hand-made", {"team": "research"})
    # Our cluster tag but not a Service's (no service-name tag): not the controller's.
    unnamed_nlb, unnamed_tg = nlb("cluster-tag-only", {f"kubernetes.io/cluster/{CLUSTER}": "owned"})
    resources = {
        "ours": {
            "load_balancers": [ours_nlb],
            "classic_load_balancers": [ours_clb],
            "target_groups": [ours_tg],
            "security_groups": [ours_nlb_sg, ours_clb_sg],
        },
        "keep": {
            "load_balancers": [other_nlb, untagged_nlb, unnamed_nlb],
            "classic_load_balancers": [other_clb],
            "target_groups": [other_tg, untagged_tg, unnamed_tg],
            "security_groups": [
                cluster_sg,
                other_sg,
                # Ours by tag and name, but outside the cluster's VPC.
                security_group(
                    sg_name("classic-load-balancer", "x"), service_tags("security-group"), other_vpc
                ),
                # The controller's name in our VPC, but not tagged for our cluster.
                security_group(sg_name("classic-load-balancer", "y"), {"team": "research"}),
            ],
        },
        "cluster_sg": cluster_sg,
    }
    yield elbv2, elb, resources


def _lb_state(ec2, elbv2, elb) -> dict[str, set[str]]:
    return {
        "load_balancers": {lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]},
        "classic_load_balancers": {
            lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]
        },
        "target_groups": {tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]},
        "security_groups": {sg["GroupId"] for sg in ec2.describe_security_groups()["SecurityGroups"]},
    }


def test_delete_removes_exactly_this_clusters_load_balancers(world, services, monkeypatch):
    ec2, _, subnet, _ = world
    elbv2, elb, res = services
    monkeypatch.setattr(handler, "POLL_SECONDS", 0)
    before = _lb_state(ec2, elbv2, elb)
    summary = handler.on_event(_delete_event(subnet), None)["Data"]

    assert {k: summary[k] for k in res["ours"]} == {k: str(len(v)) for k, v in res["ours"].items()}
    after = _lb_state(ec2, elbv2, elb)
    for kind, ours in res["ours"].items():
        assert set(ours) <= before[kind]
        assert after[kind] == before[kind] - set(ours), kind
        assert set(res["keep"][kind]) <= after[kind], kind
    # The EKS cluster security group survives; only its rule naming our ELB's group is gone.
    (cluster_sg,) = ec2.describe_security_groups(GroupIds=[res["cluster_sg"]])["SecurityGroups"]
    sources = [pair["GroupId"] for perm in cluster_sg["IpPermissions"] for pair in perm["UserIdGroupPairs"]]
    assert sources == [res["cluster_sg"]]


def test_second_run_finds_no_load_balancers(world, services):
    ec2, iam, subnet, _ = world
    elbv2, elb, _ = services
    first = _run(ec2, iam, subnet)
    assert first["load_balancers"] == 1 and first["security_groups"] == 2
    after_first = _lb_state(ec2, elbv2, elb)
    assert _run(ec2, iam, subnet) == {
        "instances": 0,
        "launch_templates": 0,
        "instance_profiles": 0,
        "network_interfaces": 0,
        "volumes": 0,
        "load_balancers": 0,
        "classic_load_balancers": 0,
        "target_groups": 0,
        "security_groups": 0,
    }
    assert _lb_state(ec2, elbv2, elb) == after_first


def _load_balancer_eni(ec2, subnet: str, group: str) -> str:
    """What a deleted Classic ELB leaves for a few minutes: an ENI in its security group."""
    return ec2.create_network_interface(SubnetId=subnet, Groups=[group])["NetworkInterface"][
        "NetworkInterfaceId"
    ]


def test_security_groups_wait_for_load_balancer_enis(world, services):
    ec2, _, subnet, _ = world
    _, _, res = services
    groups = res["ours"]["security_groups"]
    eni = _load_balancer_eni(ec2, subnet, groups[1])
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the ENI is released while the guard waits
        sleeps.append(seconds)
        ec2.delete_network_interface(NetworkInterfaceId=eni)

    deleted = handler.delete_service_security_groups(ec2, CLUSTER, [subnet], time.monotonic() + 30, sleep)
    assert deleted == 2 and len(sleeps) == 1
    remaining = {sg["GroupId"] for sg in ec2.describe_security_groups()["SecurityGroups"]}
    assert remaining.isdisjoint(groups)


def test_security_group_still_in_use_fails_after_a_bounded_wait(world, services):
    ec2, _, subnet, _ = world
    _, _, res = services
    nlb_group, clb_group = res["ours"]["security_groups"]
    eni = _load_balancer_eni(ec2, subnet, clb_group)
    with pytest.raises(RuntimeError, match=f"still in use: {clb_group} \\(network interfaces: {eni}\\)"):
        handler.delete_service_security_groups(ec2, CLUSTER, [subnet], time.monotonic() - 1, lambda _s: None)
    remaining = {sg["GroupId"] for sg in ec2.describe_security_groups()["SecurityGroups"]}
    assert clb_group in remaining and nlb_group not in remaining
    assert res["cluster_sg"] in remaining
    # Once the ENI is gone, the retry (CloudFormation's or the user's) finishes the job.
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    assert (
        handler.delete_service_security_groups(ec2, CLUSTER, [subnet], time.monotonic(), lambda _s: None) == 1
    )


def test_describe_tags_is_batched_by_twenty(world):
    ec2, _, subnet, _ = world
    elbv2 = boto3.client("elbv2", region_name=REGION)
    arns = [
        elbv2.create_load_balancer(
            Name=f"lb-{i}", Subnets=[subnet], Type="network", Tags=_tags(service_tags("load-balancer"))
        )["LoadBalancers"][0]["LoadBalancerArn"]
        for i in range(45)
    ]
    calls: list[int] = []
    original = elbv2.describe_tags

    def describe_tags(**kwargs):
        calls.append(len(kwargs["ResourceArns"]))
        return original(**kwargs)

    elbv2.describe_tags = describe_tags  # type: ignore[method-assign]
    assert handler.service_load_balancers(elbv2, CLUSTER) == sorted(arns)
    assert calls == [20, 20, 5]


def test_service_record_is_for_the_default_kubernetes_minor():
    assert SERVICE_RECORD["ref"] == SERVICE_RECORD_REF
    assert SERVICE_RECORD_REF.startswith(f"v{versions.KUBERNETES_DEFAULT}.")
    assert cloud_provider_aws.record_path(SERVICE_RECORD_REF).exists()
    assert len(SERVICE_RECORD["commit"]) == 40
    assert SERVICE_RECORD["generated_by"] == "tools/cloud_provider_aws.py"


def test_handler_constants_are_the_service_controllers():
    tags = SERVICE_RECORD["tags"]
    assert tags["cluster_tag_prefix"] == handler.SERVICE_CLUSTER_TAG_PREFIX
    assert tags["owned_value"] == handler.SERVICE_OWNED_VALUE
    assert tags["service_name_tag_key"] == handler.SERVICE_NAME_TAG_KEY
    assert tags["security_group_name_prefixes"] == handler.SERVICE_SG_NAME_PREFIXES
    assert set(handler.SERVICE_CONTROLLER_TAGS) == set(tags["resources"])
    assert cloud_provider_aws.mismatches(handler.SERVICE_CONTROLLER_TAGS, SERVICE_RECORD) == []


def test_iam_conditions_use_the_service_controllers_tags():
    used = iam_condition_tags(_guard_template(True), SERVICE_ARN_KINDS)
    assert used == handler.SERVICE_CONTROLLER_TAGS
    assert cloud_provider_aws.mismatches(used, SERVICE_RECORD) == []


def test_a_stale_service_tag_is_reported():
    """Planted defects: the legacy cluster tag, a shared lifecycle, and a resource kind the
    controller does not make must not pass the comparison, in the handler or the IAM."""
    stale = {"load-balancer": {"KubernetesCluster": "{cluster}"}}
    (problem,) = cloud_provider_aws.mismatches(stale, SERVICE_RECORD)
    assert "'KubernetesCluster' is not applied" in problem and "kubernetes.io/service-name" in problem
    shared = {"security-group": {"kubernetes.io/cluster/{cluster}": "shared"}}
    assert cloud_provider_aws.mismatches(shared, SERVICE_RECORD) == [
        "security-group: tag 'kubernetes.io/cluster/{cluster}' expected value 'shared', "
        "cloud-provider-aws sets 'owned'"
    ]
    # The service-name tag is not on security groups: requiring it would keep them all.
    named_groups = {"security-group": {"kubernetes.io/service-name": None}}
    assert cloud_provider_aws.mismatches(named_groups, SERVICE_RECORD)
    assert cloud_provider_aws.mismatches({"listener": {}}, SERVICE_RECORD)

    planted = iam_condition_tags(_guard_template(True), SERVICE_ARN_KINDS)
    planted["target-group"]["KubernetesCluster"] = "{cluster}"
    assert any("KubernetesCluster" in p for p in cloud_provider_aws.mismatches(planted, SERVICE_RECORD))


def test_the_service_tags_are_read_from_the_provider_source():
    """The tool reads the facts from Go source, and a source that no longer shows them stops it."""
    aws_go = """
const TagNameKubernetesService = "kubernetes.io/service-name"
func (c *Cloud) ensureSecurityGroup(ctx context.Context, name string) (string, error) {
\ttags := c.tagging.buildTags(ResourceLifecycleOwned, additionalTags)
\tcreateRequest.TagSpecifications = []ec2types.TagSpecification{
\t\t{
\t\t\tResourceType: ec2types.ResourceTypeSecurityGroup,
\t\t\tTags:         awsTags,
\t\t},
\t}
}
func (c *Cloud) createSecurityGroup(ctx context.Context, sgName string) (string, error) {
\tsecurityGroupID, err := c.ensureSecurityGroup(ctx, sgName, sgDescription, additionalTags)
}
func (c *Cloud) buildELBSecurityGroupList(ctx context.Context) ([]string, bool, error) {
\t\t\tsgName := "k8s-elb-" + loadBalancerName
\t\t\tsecurityGroupID, err := c.createSecurityGroup(ctx, sgName, sgDescription, nil)
}
func (c *Cloud) GetSecurityGroupNameForNLB(clusterName string, svc *v1.Service) string {
\treturn fmt.Sprintf("k8s-%.8s-%.8s-%.10s", sanitizedNamespace, sanitizedName, uuid)
}
"""
    tags_go = """
const TagNameKubernetesClusterPrefix = "kubernetes.io/cluster/"
const (
\tResourceLifecycleOwned = "owned"
)
func (t *awsTagging) clusterTagKey() string {
\treturn TagNameKubernetesClusterPrefix + t.ClusterID
}
func (t *awsTagging) buildTags(lifecycle ResourceLifecycle, additionalTags map[string]string) map[string]string {
\ttags[t.clusterTagKey()] = string(lifecycle)
}
"""
    service_tagged = """
\ttags[TagNameKubernetesService] = namespacedName.String()
\ttags = c.tagging.buildTags(ResourceLifecycleOwned, tags)
"""
    lb_go = f"""
func (c *Cloud) ensureLoadBalancerv2(ctx context.Context) (*elbv2types.LoadBalancer, error) {{
{service_tagged}
\tcreateRequest := &elbv2.CreateLoadBalancerInput{{
\t}}
\tfor k, v := range tags {{
\t\tcreateRequest.Tags = append(createRequest.Tags, elbv2types.Tag{{}})
\t}}
\t_, err := c.createListenerV2(ctx, arn, mappings[i], namespacedName, instanceIDs, vpcID, tags)
}}
func (c *Cloud) createListenerV2(ctx context.Context) (listener *elbv2types.Listener, err error) {{
\ttarget, err := c.ensureTargetGroup(ctx,
\t\tnil,
\t\ttags,
\t)
}}
func (c *Cloud) ensureTargetGroup(ctx context.Context) (*elbv2types.TargetGroup, error) {{
\tfor k, v := range tags {{
\t}}
\tinput.Tags = targetGroupTags
\tresult, err := c.elbv2.CreateTargetGroup(ctx, input)
}}
func (c *Cloud) ensureLoadBalancer(ctx context.Context) (*elbtypes.LoadBalancerDescription, error) {{
{service_tagged}
\tfor k, v := range tags {{
\t\tcreateRequest.Tags = append(createRequest.Tags, elbtypes.Tag{{}})
\t}}
\t_, err := c.elb.CreateLoadBalancer(ctx, createRequest)
}}
"""
    extracted = cloud_provider_aws.extract_tags(aws_go, tags_go, lb_go)
    recorded = {k: v for k, v in SERVICE_RECORD["tags"].items() if k != "evidence"}
    assert {k: v for k, v in extracted.items() if k != "evidence"} == recorded
    # The legacy tag instead of the prefix, or the security group no longer tagged: stop.
    with pytest.raises(SystemExit, match="clusterTagKey"):
        cloud_provider_aws.extract_tags(
            aws_go,
            tags_go.replace("TagNameKubernetesClusterPrefix + t", "TagNameKubernetesClusterLegacy + t"),
            lb_go,
        )
    with pytest.raises(SystemExit, match="security-group"):
        cloud_provider_aws.extract_tags(
            aws_go.replace("ResourceLifecycleOwned", "ResourceLifecycleShared"), tags_go, lb_go
        )
    with pytest.raises(SystemExit, match="ServiceAnnotation"):
        cloud_provider_aws.extract("package aws\n")


def test_a_load_balancer_gone_between_listing_and_tags_is_skipped(world, services):
    _, elb, res = services
    (ours,) = res["ours"]["classic_load_balancers"]
    tags = handler._tags_of(elb, [ours, "deleted-meanwhile"], "LoadBalancerNames", "LoadBalancerName")
    assert list(tags) == [ours]
    assert handler.service_tagged("classic-load-balancer", tags[ours], CLUSTER)
    assert not handler.service_tagged("classic-load-balancer", tags[ours], OTHER)
