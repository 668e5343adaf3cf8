"""Cluster stack: EKS control plane, access, system nodes and add-ons."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from config import versions
from config.names import VOLUME_CLUSTER_TAG_KEY
from tests.tools.synth import REPO, synth

pytestmark = pytest.mark.xdist_group("default")


def test_control_plane(default_synth):
    template = default_synth.assertions("cluster")
    template.has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "Name": "dynamo-dev",
            "Version": "1.36",
            "AccessConfig": Match.object_like({"AuthenticationMode": "API"}),
            "EncryptionConfig": [{"Provider": {"KeyArn": Match.any_value()}, "Resources": ["secrets"]}],
            "Logging": {
                "ClusterLogging": {
                    "EnabledTypes": Match.array_equals(
                        [
                            {"Type": t}
                            for t in ("api", "audit", "authenticator", "controllerManager", "scheduler")
                        ]
                    )
                }
            },
            "ResourcesVpcConfig": Match.object_like(
                {
                    "EndpointPrivateAccess": True,
                    "EndpointPublicAccess": True,
                    "PublicAccessCidrs": ["0.0.0.0/0"],
                }
            ),
            "KubernetesNetworkConfig": Match.object_like({"ServiceIpv4Cidr": "172.20.0.0/16"}),
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_no_auto_mode(default_synth):
    cluster = next(
        r for r in default_synth.template("cluster")["Resources"].values() if r["Type"] == "AWS::EKS::Cluster"
    )
    compute = cluster["Properties"].get("ComputeConfig", {})
    assert not compute.get("Enabled", False)


def test_system_node_group_is_tainted_on_demand_al2023_with_imdsv2(default_synth):
    template = default_synth.assertions("cluster")
    template.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "AmiType": "AL2023_x86_64_STANDARD",
            "CapacityType": "ON_DEMAND",
            "Taints": [{"Effect": "NO_SCHEDULE", "Key": "CriticalAddonsOnly", "Value": "true"}],
            "ScalingConfig": {"MinSize": 2, "DesiredSize": 2, "MaxSize": 4},
        },
    )
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": Match.object_like(
                        {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}
                    ),
                    "BlockDeviceMappings": [
                        Match.object_like(
                            {"Ebs": Match.object_like({"Encrypted": True, "VolumeType": "gp3"})}
                        )
                    ],
                }
            )
        },
    )


@pytest.mark.parametrize("addon", sorted(versions.EKS_ADDONS["1.36"]))
def test_addons_pinned(default_synth, addon):
    default_synth.assertions("cluster").has_resource_properties(
        "AWS::EKS::Addon",
        {"AddonName": addon, "AddonVersion": versions.EKS_ADDONS["1.36"][addon]},
    )


def test_efs_csi_uses_pod_identity(default_synth):
    template = default_synth.assertions("cluster")
    template.has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": "aws-efs-csi-driver",
            "PodIdentityAssociations": [
                {"ServiceAccount": "efs-csi-controller-sa", "RoleArn": Match.any_value()}
            ],
        },
    )


def test_ebs_csi_uses_pod_identity_and_tags_every_volume_for_the_guard(default_synth):
    resources = default_synth.template("cluster")["Resources"].values()
    (addon,) = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::EKS::Addon" and r["Properties"]["AddonName"] == "aws-ebs-csi-driver"
    ]
    (association,) = addon["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "ebs-csi-controller-sa"
    assert json.loads(addon["ConfigurationValues"]) == {
        "controller": {"extraVolumeTags": {VOLUME_CLUSTER_TAG_KEY: "dynamo-dev"}}
    }
    (guard,) = [r["Properties"] for r in resources if r["Type"] == "Custom::KarpenterTeardownGuard"]
    assert guard["VolumeTagKey"] == VOLUME_CLUSTER_TAG_KEY


def test_retained_environment_guard_never_deletes_volumes():
    template = synth(REPO / "config" / "examples" / "production.yaml").template("cluster")
    (guard,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::KarpenterTeardownGuard"]
    assert guard["Properties"]["VolumeTagKey"] == ""
    assert "ec2:DeleteVolume" not in json.dumps(template)


def test_networking_addons_come_before_nodes(default_synth):
    resources = default_synth.template("cluster")["Resources"]
    nodegroup = next(r for r in resources.values() if r["Type"] == "AWS::EKS::Nodegroup")
    names = {
        logical: r["Properties"]["AddonName"]
        for logical, r in resources.items()
        if r["Type"] == "AWS::EKS::Addon"
    }
    before = {names[d] for d in nodegroup.get("DependsOn", []) if d in names}
    assert before == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"}


def test_outputs(default_synth):
    outputs = default_synth.template("cluster")["Outputs"]
    commands = [o["Value"] for o in outputs.values() if "update-kubeconfig" in str(o["Value"])]
    assert commands == ["aws eks update-kubeconfig --region us-west-2 --name dynamo-dev"]


# ----------------------------------------------------------------- log groups the stack owns


def _log_groups(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}


def _lambda_log_groups(template: dict) -> dict[str, str]:
    """Lambda logical id -> logical id of the log group its LoggingConfig names."""
    return {
        logical: r["Properties"].get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }


def test_control_plane_log_group_is_owned_and_created_before_the_cluster(default_synth):
    template = default_synth.assertions("cluster")
    template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "Properties": {"LogGroupName": "/aws/eks/dynamo-dev/cluster", "RetentionInDays": 30},
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
        },
    )
    (group,) = [
        k
        for k, r in _log_groups(default_synth.template("cluster")).items()
        if r["Properties"].get("LogGroupName") == "/aws/eks/dynamo-dev/cluster"
    ]
    template.has_resource("AWS::EKS::Cluster", {"DependsOn": Match.array_with([group])})


def test_every_cluster_lambda_logs_to_a_log_group_of_the_stack(default_synth):
    """kubectl handler, its provider framework, the guard and its provider framework: each
    writes to its own group (created first: the Ref), 30 days, deleted under `destroy`."""
    template = default_synth.template("cluster")
    groups = _log_groups(template)
    targets = _lambda_log_groups(template)
    assert len(targets) == 4 and all(targets.values()), targets
    assert len(set(targets.values())) == 4
    for group in targets.values():
        assert groups[group]["Properties"]["RetentionInDays"] == 30
        assert groups[group]["DeletionPolicy"] == "Delete", group
    # Control plane + four Lambdas, nothing else, and nothing retained under `destroy`.
    assert len(groups) == 5
    assert {r["DeletionPolicy"] for r in groups.values()} == {"Delete"}


def test_retained_environment_keeps_its_cluster_logs_for_the_configured_time():
    template = synth(REPO / "config" / "examples" / "production.yaml").template("cluster")
    groups = _log_groups(template)
    assert len(groups) == 5
    assert {r["DeletionPolicy"] for r in groups.values()} == {"Retain"}
    assert {r["Properties"]["RetentionInDays"] for r in groups.values()} == {365}
    names = {r["Properties"].get("LogGroupName") for r in groups.values()}
    assert "/aws/eks/dynamo-prod/cluster" in names


def test_guard_log_groups_are_not_retained_under_destroy(default_synth):
    template = default_synth.template("cluster")
    groups = _log_groups(template)
    guard = {k: v for k, v in _lambda_log_groups(template).items() if k.startswith("TeardownGuard")}
    assert len(guard) == 2
    assert {groups[g]["DeletionPolicy"] for g in guard.values()} == {"Delete"}


# ------------------------------------------------- custom resources cannot hold a stack an hour


def test_every_kubernetes_custom_resource_and_the_guard_have_a_service_timeout(default_synth):
    """ServiceTimeout (seconds) just above the 15-minute Lambdas behind them; CloudFormation's
    default is 3600 s."""
    from stacks.custom_resource_timeout import EKS_CUSTOM_RESOURCE_TYPES

    bounded = {"Custom::KarpenterTeardownGuard", *EKS_CUSTOM_RESOURCE_TYPES}
    seen: dict[str, int] = {}
    for name, template in default_synth.templates.items():
        for logical, resource in template["Resources"].items():
            if resource["Type"] in bounded:
                assert resource["Properties"].get("ServiceTimeout") == "1200", (name, logical)
                seen[resource["Type"]] = seen.get(resource["Type"], 0) + 1
    assert seen["Custom::AWSCDK-EKS-KubernetesResource"] >= 5
    assert seen["Custom::AWSCDK-EKS-HelmChart"] >= 5
    assert seen["Custom::KarpenterTeardownGuard"] == 1
