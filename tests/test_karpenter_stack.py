"""Cluster stack, Karpenter part: controller IAM (tag scoping), interruption queue and rules,
Pod Identity, Helm release, device plugins, teardown guard and the deletion order."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk.assertions import Match

from config import versions
from stacks.karpenter import INTERRUPTION_RULES, helm_values
from tests.conftest import REPO
from tests.tools.helm_values import unknown_keys

pytestmark = pytest.mark.xdist_group("default")

CLUSTER = "dynamo-dev"
CHART_VALUES = REPO / "tests" / "data" / "karpenter" / "chart-values-v1.14.1.yaml"


def resources(synth, kind: str | None = None) -> dict[str, dict]:
    all_resources = synth.template("cluster")["Resources"]
    return {k: v for k, v in all_resources.items() if kind is None or v["Type"] == kind}


def one(synth, kind: str, prefix: str) -> tuple[str, dict]:
    found = [(k, v) for k, v in resources(synth, kind).items() if k.startswith(prefix)]
    assert len(found) == 1, (kind, prefix, [k for k, _ in found])
    return found[0]


def helm(synth, chart: str) -> dict:
    charts = [
        r["Properties"]
        for r in resources(synth, "Custom::AWSCDK-EKS-HelmChart").values()
        if r["Properties"]["Chart"] == chart
    ]
    assert len(charts) == 1, chart
    return charts[0]


def test_interruption_queue_is_encrypted_tls_only_short_lived(default_synth):
    template = default_synth.assertions("cluster")
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{CLUSTER}-karpenter-interruption",
            "MessageRetentionPeriod": 300,
            "SqsManagedSseEnabled": True,
        },
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Principal": {"Service": "events.amazonaws.com"},
                                # Only our rules may send, not any EventBridge rule in the account.
                                "Condition": {"ArnEquals": {"aws:SourceArn": Match.any_value()}},
                            }
                        ),
                    ]
                ),
                "Version": "2012-10-17",
            }
        },
    )


@pytest.mark.parametrize("rule", INTERRUPTION_RULES, ids=[r[0] for r in INTERRUPTION_RULES])
def test_all_five_interruption_rules_target_the_queue(default_synth, rule):
    _, source, detail_type = rule
    queue, _ = one(default_synth, "AWS::SQS::Queue", "KarpenterInterruptionQueue")
    default_synth.assertions("cluster").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": [source], "detail-type": [detail_type]},
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [queue, "Arn"]}})],
        },
    )


def test_node_role_joins_through_an_ec2_linux_access_entry(default_synth):
    role, props = one(default_synth, "AWS::IAM::Role", "KarpenterNodeRole")
    assert props["Properties"]["RoleName"] == f"KarpenterNodeRole-{CLUSTER}"
    policies = json.dumps(props["Properties"]["ManagedPolicyArns"])
    for name in (
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonSSMManagedInstanceCore",
    ):
        assert name in policies
    default_synth.assertions("cluster").has_resource_properties(
        "AWS::EKS::AccessEntry",
        {"Type": "EC2_LINUX", "PrincipalArn": {"Fn::GetAtt": [role, "Arn"]}, "AccessPolicies": []},
    )


def test_controller_uses_pod_identity(default_synth):
    role, props = one(default_synth, "AWS::IAM::Role", "KarpenterControllerRole")
    statement = props["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    default_synth.assertions("cluster").has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": "kube-system", "ServiceAccount": "karpenter", "RoleArn": {"Fn::GetAtt": [role, "Arn"]}},
    )


def _controller_statements(synth) -> list[dict]:
    statements = []
    for logical, policy in resources(synth, "AWS::IAM::ManagedPolicy").items():
        if logical.startswith("Karpenter"):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _guard_statements(synth) -> list[dict]:
    _, policy = one(synth, "AWS::IAM::Policy", "TeardownGuardRoleDefaultPolicy")
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# Upstream grants these on "*" without a condition (no resource-level permissions exist).
UPSTREAM_UNCONDITIONED = {"pricing:GetProducts", "iam:ListInstanceProfiles"}
MUTATING = ("Terminate", "Delete", "Remove", "Create", "Tag", "Add", "RunInstances")


@pytest.mark.parametrize("who", ["controller", "guard"])
def test_iam_is_scoped_by_tags(default_synth, who):
    statements = (
        _controller_statements(default_synth) if who == "controller" else _guard_statements(default_synth)
    )
    assert statements
    for statement in statements:
        actions = _as_list(statement["Action"])
        star = "*" in _as_list(statement["Resource"])
        if star and "Condition" not in statement:
            assert set(actions) <= UPSTREAM_UNCONDITIONED, statement
        if statement.get("Sid") == "AllowScopedEC2InstanceAccessActions":
            continue  # launch inputs (AMI, subnet, SG): upstream, creates nothing by itself
        wildcard = any("*" in json.dumps(r) for r in _as_list(statement["Resource"]))
        mutating = [a for a in actions if a.split(":")[1].startswith(MUTATING)]
        if wildcard and mutating and statement["Sid"] != "AllowPassingInstanceRole":
            condition = json.dumps(statement.get("Condition", {}))
            assert CLUSTER in condition or "karpenter.sh/nodepool" in condition, statement


def test_controller_statements_match_upstream_sids(default_synth):
    sids = {s["Sid"] for s in _controller_statements(default_synth)}
    expected = {
        "AllowScopedEC2InstanceAccessActions",
        "AllowScopedEC2LaunchTemplateAccessActions",
        "AllowScopedEC2InstanceActionsWithTags",
        "AllowScopedResourceCreationTagging",
        "AllowScopedResourceTagging",
        "AllowScopedDeletion",
        "AllowPassingInstanceRole",
        "AllowScopedInstanceProfileCreationActions",
        "AllowScopedInstanceProfileTagActions",
        "AllowScopedInstanceProfileActions",
        "AllowAPIServerEndpointDiscovery",
        "AllowInterruptionQueueActions",
        "AllowZonalShiftStatusReadOnly",
        "AllowRegionalReadActions",
        "AllowSSMReadActions",
        "AllowPricingReadActions",
        "AllowUnscopedInstanceProfileListAction",
        "AllowInstanceProfileReadActions",
    }
    assert sids == expected


def test_guard_can_only_delete_this_clusters_resources(default_synth):
    for statement in _guard_statements(default_synth):
        if any(
            a.split(":")[1].startswith(("Terminate", "Delete", "Remove"))
            for a in _as_list(statement["Action"])
        ):
            assert CLUSTER in json.dumps(statement["Condition"]), statement


def test_karpenter_release(default_synth):
    props = helm(default_synth, "karpenter")
    assert props["Repository"] == versions.KARPENTER_CHART_REPO
    assert props["Version"] == versions.KARPENTER == "1.14.1"
    assert props["Namespace"] == "kube-system" and props["Release"] == "karpenter"
    values = json.loads(props["Values"])
    assert values["settings"] == {
        "clusterName": CLUSTER,
        "interruptionQueue": f"{CLUSTER}-karpenter-interruption",
    }
    assert {"name": "AWS_REGION", "value": "us-west-2"} in values["controller"]["env"]
    assert values["nodeSelector"]["dynamo-eks/node-role"] == "system"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in values[
        "tolerations"
    ]
    assert values["serviceAccount"]["name"] == "karpenter"


def test_crds_are_their_own_release_installed_first(default_synth):
    """Helm never upgrades a chart's crds/ after the first install: the CRD chart does."""
    crds = helm(default_synth, "karpenter-crd")
    assert crds["Repository"] == versions.KARPENTER_CRD_CHART_REPO
    assert crds["Version"] == versions.KARPENTER and crds["Namespace"] == "kube-system"
    assert helm(default_synth, "karpenter")["SkipCrds"] is True
    crd_logical, _ = one(default_synth, "Custom::AWSCDK-EKS-HelmChart", "KarpenterCrds")
    _, release = one(default_synth, "Custom::AWSCDK-EKS-HelmChart", "KarpenterRelease")
    assert crd_logical in release["DependsOn"]


# Maps whose keys are the user's (labels), not chart settings.
FREE_FORM = frozenset({"nodeSelector"})


def test_every_helm_value_key_exists_in_the_chart():
    reference = yaml.safe_load(CHART_VALUES.read_text())
    ours = helm_values(cluster_name=CLUSTER, region="us-west-2")
    assert unknown_keys(ours, reference, free_form=FREE_FORM) == []
    assert unknown_keys({"settings": {"clusterNam": "x"}}, reference) == ["settings.clusterNam"]


def test_device_plugins(default_synth):
    nvidia = helm(default_synth, "nvidia-device-plugin")
    assert nvidia["Version"] == versions.NVIDIA_DEVICE_PLUGIN
    assert nvidia["Repository"] == versions.NVIDIA_DEVICE_PLUGIN_CHART_REPO
    values = json.loads(nvidia["Values"])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == "dynamo-eks/gpu-model"
    efa = helm(default_synth, "aws-efa-k8s-device-plugin")
    assert efa["Version"] == versions.EFA_DEVICE_PLUGIN
    assert json.loads(efa["Values"])["nodeSelector"] == {"dynamo-eks/efa": "true"}


def test_teardown_guard_resource(default_synth):
    _, guard = one(default_synth, "Custom::KarpenterTeardownGuard", "TeardownGuard")
    props = guard["Properties"]
    assert props["ClusterName"] == CLUSTER
    assert len(props["SubnetIds"]) == 3
    default_synth.assertions("cluster").has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "index.on_event", "Runtime": "python3.14", "Timeout": 840},
    )


def _depends(synth, logical: str) -> set[str]:
    return set(resources(synth)[logical].get("DependsOn", []))


def test_deletion_order(default_synth):
    """CloudFormation deletes a resource before what it DependsOn: pools go first (while the
    controller can still drain and terminate), then the release, system nodes, the guard,
    and only then IAM, the node role and the cluster (the VPC is in the Network stack)."""
    names = {
        prefix: one(default_synth, kind, prefix)[0]
        for kind, prefix in (
            ("Custom::AWSCDK-EKS-KubernetesResource", "ClusterKarpenterPools"),
            ("Custom::AWSCDK-EKS-HelmChart", "KarpenterRelease"),
            ("Custom::KarpenterTeardownGuard", "TeardownGuard"),
            ("AWS::EKS::PodIdentityAssociation", "KarpenterPodIdentity"),
            ("AWS::EKS::AccessEntry", "KarpenterNodeAccess"),
            ("AWS::IAM::Role", "KarpenterNodeRole"),
            ("AWS::IAM::Role", "KarpenterControllerRole"),
            ("AWS::SQS::Queue", "KarpenterInterruptionQueue"),
            ("AWS::EKS::Nodegroup", "ClusterNodegroupSystemNodes"),
            ("AWS::EKS::Cluster", "Cluster"),
        )
    }
    pools = _depends(default_synth, names["ClusterKarpenterPools"])
    for needed in (
        "KarpenterRelease",
        "KarpenterPodIdentity",
        "KarpenterNodeAccess",
        "KarpenterNodeRole",
        "KarpenterControllerRole",
        "KarpenterInterruptionQueue",
    ):
        assert names[needed] in pools, needed
    controller_policies = {
        k for k in resources(default_synth, "AWS::IAM::ManagedPolicy") if k.startswith("Karpenter")
    }
    assert len(controller_policies) == 6 and controller_policies <= pools
    release = _depends(default_synth, names["KarpenterRelease"])
    assert {
        names["TeardownGuard"],
        names["ClusterNodegroupSystemNodes"],
        names["KarpenterPodIdentity"],
    } <= release
    assert names["TeardownGuard"] in _depends(default_synth, names["ClusterNodegroupSystemNodes"])
    guard = _depends(default_synth, names["TeardownGuard"])
    assert {names["Cluster"], names["KarpenterNodeRole"]} <= guard
    device_plugins = {
        k
        for k, r in resources(default_synth, "Custom::AWSCDK-EKS-HelmChart").items()
        if r["Properties"]["Chart"] in ("nvidia-device-plugin", "aws-efa-k8s-device-plugin")
    }
    assert device_plugins and device_plugins <= pools
