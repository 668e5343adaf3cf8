"""Teardown guard handler against moto: removes exactly this cluster's tagged leftovers."""

from __future__ import annotations

import importlib.util
import time

import boto3
import pytest
from moto import mock_aws

from tests.conftest import REPO

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


def _tags(pairs: dict[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def karpenter_tags(cluster: str) -> dict[str, str]:
    return {
        f"kubernetes.io/cluster/{cluster}": "owned",
        "eks:eks-cluster-name": cluster,
        "karpenter.sh/nodepool": "gpu-g6",
    }


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
                ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(tags)}],
            )["Instances"][0]["InstanceId"]

        def template(name: str, tags: dict[str, str]) -> str:
            return ec2.create_launch_template(
                LaunchTemplateName=name, LaunchTemplateData={"ImageId": image},
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": _tags(tags)}],
            )["LaunchTemplate"]["LaunchTemplateId"]

        def eni(subnet_id: str, tags: dict[str, str]) -> str:
            return ec2.create_network_interface(
                SubnetId=subnet_id,
                TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags(tags)}],
            )["NetworkInterface"]["NetworkInterfaceId"]

        def volume(tags: dict[str, str]) -> str:
            return ec2.create_volume(
                AvailabilityZone=f"{REGION}a", Size=50, VolumeType="gp3",
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
                "instances": [instance(karpenter_tags(CLUSTER)) for _ in range(3)],
                # Only the EKS tag (older Karpenter instances lack the kubernetes.io tag).
                "eks_tag_instance": instance(
                    {"eks:eks-cluster-name": CLUSTER, "karpenter.sh/nodepool": "cpu"}
                ),
                "templates": [
                    template(f"karpenter.k8s.aws/{i}", {"karpenter.k8s.aws/cluster": CLUSTER})
                    for i in range(2)
                ],
                "enis": [
                    eni(subnet, {f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
                    eni(subnet, {"cluster.k8s.amazonaws.com/name": CLUSTER}),
                ],
                "profile": profile(
                    f"{CLUSTER}_123", NODE_ROLE, {f"kubernetes.io/cluster/{CLUSTER}": "owned"}
                ),
                "volumes": [volume({VOLUME_TAG: CLUSTER, "CSIVolumeName": f"pvc-{i}"}) for i in range(2)],
            },
            "keep": {
                "instances": [
                    instance(karpenter_tags(OTHER)),
                    # Tagged for our cluster but not launched by Karpenter (e.g. system nodes).
                    instance({f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
                    instance({"team": "research"}),
                ],
                "templates": [
                    template("other-cluster", {"karpenter.k8s.aws/cluster": OTHER}),
                    template("untagged", {"team": "x"}),
                ],
                "enis": [
                    eni(subnet, {f"kubernetes.io/cluster/{OTHER}": "owned"}),
                    eni(subnet, {"team": "research"}),
                    # Ours by tag, but outside the cluster's subnets.
                    eni(other_subnet, {f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
                ],
                "profiles": [
                    profile(f"{OTHER}_9", "KarpenterNodeRole-someone-else",
                            {f"kubernetes.io/cluster/{OTHER}": "owned"}),
                    # Holds our node role but is not tagged as Karpenter's.
                    profile("hand-made", NODE_ROLE, {}),
                ],
                "volumes": [volume({VOLUME_TAG: OTHER}), volume({"team": "research"})],
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


def test_removes_exactly_this_clusters_tagged_leftovers(world):
    ec2, iam, subnet, res = world
    summary = _run(ec2, iam, subnet)
    ours, keep = res["ours"], res["keep"]

    assert summary == {
        "instances": 4, "launch_templates": 2, "instance_profiles": 1, "network_interfaces": 2,
        "volumes": 2,
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
    assert set(res["ours"]["volumes"]) <= volumes


def test_attached_volume_is_left_after_a_bounded_wait(world):
    ec2, iam, subnet, res = world
    attached = ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=50,
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tags({VOLUME_TAG: CLUSTER})}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=attached, InstanceId=res["keep"]["instances"][2], Device="/dev/sdf")
    summary = _run(ec2, iam, subnet, seconds=-1)
    assert summary["volumes"] == 2
    assert attached in {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}


def test_second_run_is_a_no_op(world):
    ec2, iam, subnet, _ = world
    _run(ec2, iam, subnet)
    assert _run(ec2, iam, subnet) == {
        "instances": 0, "launch_templates": 0, "instance_profiles": 0, "network_interfaces": 0,
        "volumes": 0,
    }


def test_in_use_enis_are_left_alone(world):
    ec2, iam, subnet, res = world
    instance = res["keep"]["instances"][2]
    attached = ec2.create_network_interface(
        SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": _tags({f"kubernetes.io/cluster/{CLUSTER}": "owned"})}],
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
                    chunk = ids[start:start + fake.page_size]
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


def test_delete_event_sweeps(world, monkeypatch):
    ec2, iam, subnet, res = world
    monkeypatch.setattr(handler, "POLL_SECONDS", 0)
    event = {
        "RequestType": "Delete",
        "PhysicalResourceId": "guard",
        "ResourceProperties": {"ClusterName": CLUSTER, "SubnetIds": [subnet],
                               "NodeRoleName": NODE_ROLE, "VolumeTagKey": VOLUME_TAG},
    }
    result = handler.on_event(event, None)
    assert result["PhysicalResourceId"] == "guard"
    assert result["Data"]["instances"] == "4"
    assert result["Data"]["volumes"] == "2"
