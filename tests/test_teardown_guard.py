"""Teardown guard handler against moto: removes exactly this cluster's tagged leftovers.

The leftovers carry the tags Karpenter really applies: tests/data/karpenter/
resource-tags-v<KARPENTER>.json, read from Karpenter's source by tools/karpenter_tags.py.
The handler's tag constants and the guard's IAM conditions are held to that record, so a
Karpenter bump that changes a tag fails here.
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
    ":instance/*": "instance",
    ":launch-template/*": "launch-template",
    ":network-interface/*": "network-interface",
    ":volume/*": "volume",
    ":instance-profile/*": "instance-profile",
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


def iam_condition_tags(template: dict) -> dict[str, dict[str, str | None]]:
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
            kinds = {kind for suffix, kind in ARN_KINDS.items() if suffix in arns}
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
