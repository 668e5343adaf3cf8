"""Construct-level tests: each custom construct alone in a bare `Stack`, asserted with
`aws_cdk.assertions` (`Template`, `Match`, `Capture`).

The cluster is imported (`Cluster.from_cluster_attributes` with an imported kubectl
provider), so a template holds only what the construct under test creates, and a plain
`WaitConditionHandle` stands in for the system node group the constructs order themselves
around. The whole-stack tests (tests/test_karpenter_stack.py, tests/test_cluster_stack.py)
check the wiring between constructs; these state what each construct promises on its own.

Karpenter's IAM, queue and rules are held to upstream's getting-started CloudFormation for
v1.14 (tests/data/karpenter/getting-started-cloudformation-v1.14.yaml), statement by statement.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from aws_cdk import App, CfnWaitConditionHandle, Environment, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template

from config import versions
from config.names import KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT, interruption_queue_name
from stacks.eks_addons import EksAddons
from stacks.karpenter import KarpenterController
from tests.conftest import REPO

CLUSTER = "dynamo-dev"
ACCOUNT = "111111111111"
REGION = "us-west-2"
UPSTREAM_CFN = REPO / "tests" / "data" / "karpenter" / "getting-started-cloudformation-v1.14.yaml"
# Upstream's controller policies, by the resource name our ManagedPolicy constructs reuse.
UPSTREAM_POLICIES = (
    "NodeLifecyclePolicy",
    "IAMIntegrationPolicy",
    "EKSIntegrationPolicy",
    "InterruptionPolicy",
    "ZonalShiftPolicy",
    "ResourceDiscoveryPolicy",
)


def bare_stack() -> tuple[Stack, eks.ICluster, CfnWaitConditionHandle]:
    """A stack with an imported cluster (no control plane resources of its own) and a
    stand-in for the system node group."""
    stack = Stack(App(), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack,
        "Kubectl",
        service_token=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:kubectl",
        role=iam.Role.from_role_arn(stack, "KubectlRole", f"arn:aws:iam::{ACCOUNT}:role/kubectl"),
    )
    cluster = eks.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name=CLUSTER, kubectl_provider=provider
    )
    return stack, cluster, CfnWaitConditionHandle(stack, "SystemNodes")


def logical_id(template: Template, kind: str, props: dict | None = None) -> str:
    found = template.find_resources(kind, {"Properties": Match.object_like(props or {})})
    assert len(found) == 1, (kind, props, sorted(found))
    return next(iter(found))


def arn_of(logical: str) -> dict:
    return {"Fn::GetAtt": [logical, "Arn"]}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- Karpenter controller ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def karpenter() -> Template:
    stack, cluster, nodes = bare_stack()
    KarpenterController(stack, "Karpenter", cluster=cluster, cluster_name=CLUSTER, runs_after=[nodes])
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def names(karpenter: Template) -> dict[str, str]:
    """Logical ids of the resources the assertions follow references to."""
    return {
        "queue": logical_id(karpenter, "AWS::SQS::Queue"),
        "node_role": logical_id(karpenter, "AWS::IAM::Role", {"RoleName": f"KarpenterNodeRole-{CLUSTER}"}),
        "controller_role": logical_id(
            karpenter,
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": [Match.object_like({"Principal": {"Service": "pods.eks.amazonaws.com"}})],
                    "Version": Match.any_value(),
                }
            },
        ),
        "release": logical_id(karpenter, "Custom::AWSCDK-EKS-HelmChart", {"Chart": "karpenter"}),
        "crds": logical_id(karpenter, "Custom::AWSCDK-EKS-HelmChart", {"Chart": "karpenter-crd"}),
    }


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation's short-form intrinsics as their text."""


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _CfnLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def upstream() -> dict[str, dict]:
    return yaml.load(UPSTREAM_CFN.read_text(), Loader=_CfnLoader)["Resources"]


def upstream_text(text: str) -> str:
    """Upstream's `${...}` placeholders, made concrete the way our bare stack is."""
    for placeholder, value in {
        "${ClusterName}": CLUSTER,
        "${AWS::Region}": REGION,
        "${AWS::AccountId}": ACCOUNT,
    }.items():
        text = text.replace(placeholder, value)
    return text


def our_text(value: Any, aliases: dict[str, str]) -> Any:
    """A resolved CloudFormation value written the way upstream's `!Sub` strings are:
    `{"Ref": "AWS::Partition"}` -> `${AWS::Partition}`, `Fn::GetAtt` -> `${UpstreamName.Arn}`."""
    if isinstance(value, list):
        return [our_text(item, aliases) for item in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(our_text(part, aliases) for part in parts)
        if "Ref" in value:
            return "${" + value["Ref"] + "}"
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return "${" + aliases.get(logical, logical) + "." + attribute + "}"
        return {key: our_text(item, aliases) for key, item in value.items()}
    return value


def comparable(statement: dict) -> dict:
    """Order-free view of a statement: actions and resources as sets, condition lists sorted."""

    def sort_lists(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: sort_lists(item) for key, item in value.items()}
        if isinstance(value, list):
            return sorted(value)
        return value

    return {
        "Effect": statement["Effect"],
        "Action": set(as_list(statement["Action"])),
        "Resource": set(as_list(statement["Resource"])),
        "Condition": sort_lists(statement.get("Condition", {})),
    }


def test_controller_iam_is_upstream_1_14_statement_by_statement(karpenter, names, upstream):
    """Same policies, same statement ids, and per statement the same actions, resources and
    tag conditions as upstream's getting-started template: a Karpenter upgrade is reviewed
    by diffing that file."""
    aliases = {names["node_role"]: "KarpenterNodeRole", names["queue"]: "KarpenterInterruptionQueue"}
    policies = karpenter.find_resources("AWS::IAM::ManagedPolicy")
    assert len(policies) == len(UPSTREAM_POLICIES)
    for name in UPSTREAM_POLICIES:
        (ours,) = [
            p for logical, p in policies.items() if re.fullmatch(rf"Karpenter{name}[0-9A-F]{{8}}", logical)
        ]
        theirs = json.loads(upstream_text(upstream[name]["Properties"]["PolicyDocument"]))
        our_statements = {
            s["Sid"]: comparable(our_text(s, aliases))
            for s in ours["Properties"]["PolicyDocument"]["Statement"]
        }
        their_statements = {s["Sid"]: comparable(s) for s in theirs["Statement"]}
        assert our_statements.keys() == their_statements.keys(), name
        for sid, statement in their_statements.items():
            assert our_statements[sid] == statement, sid


def test_controller_can_pass_only_the_node_role_and_only_to_ec2(karpenter, names):
    role = {"Ref": names["controller_role"]}
    attached = karpenter.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Roles": Match.array_with([role])}}
    )
    assert len(attached) == len(UPSTREAM_POLICIES)
    # No other way to grant it permissions: no inline policy, no AWS managed policy.
    karpenter.resource_count_is("AWS::IAM::Policy", 0)
    assert (
        "ManagedPolicyArns"
        not in karpenter.find_resources("AWS::IAM::Role")[names["controller_role"]]["Properties"]
    )

    passing = [
        statement
        for policy in attached.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(action in ("iam:PassRole", "iam:*", "*") for action in as_list(statement["Action"]))
    ]
    assert len(passing) == 1
    assert passing[0]["Resource"] == arn_of(names["node_role"])
    assert passing[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}
    }


def test_controller_credentials_come_only_from_pod_identity_for_its_service_account(karpenter, names):
    karpenter.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "pods.eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                    }
                ],
                "Version": "2012-10-17",
            }
        },
    )
    role_arn = Capture()
    karpenter.resource_count_is("AWS::EKS::PodIdentityAssociation", 1)
    karpenter.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {
            "ClusterName": CLUSTER,
            "Namespace": KARPENTER_NAMESPACE,
            "ServiceAccount": KARPENTER_SERVICE_ACCOUNT,
            "RoleArn": role_arn,
        },
    )
    assert role_arn.as_object() == arn_of(names["controller_role"])


def test_node_role_is_upstreams_and_joins_through_an_ec2_linux_access_entry(karpenter, names, upstream):
    node_role = karpenter.find_resources("AWS::IAM::Role")[names["node_role"]]["Properties"]
    (trust,) = node_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    ours = {our_text(arn, {}) for arn in node_role["ManagedPolicyArns"]}
    assert ours == set(upstream["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"])
    karpenter.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": CLUSTER,
            "Type": "EC2_LINUX",
            "PrincipalArn": arn_of(names["node_role"]),
            "AccessPolicies": [],
        },
    )


def test_interruption_queue_is_encrypted_and_tls_only(karpenter, upstream):
    theirs = upstream["KarpenterInterruptionQueue"]["Properties"]
    karpenter.resource_count_is("AWS::SQS::Queue", 1)
    karpenter.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": interruption_queue_name(CLUSTER),
            "SqsManagedSseEnabled": theirs["SqsManagedSseEnabled"],
            "MessageRetentionPeriod": theirs["MessageRetentionPeriod"],
        },
    )
    karpenter.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sqs:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_upstreams_interruption_rules_all_target_the_queue_and_only_they_may_send(karpenter, names, upstream):
    theirs = {
        (
            rule["Properties"]["EventPattern"]["source"][0],
            rule["Properties"]["EventPattern"]["detail-type"][0],
        )
        for rule in upstream.values()
        if rule["Type"] == "AWS::Events::Rule"
    }
    rules = karpenter.find_resources("AWS::Events::Rule")
    ours = {
        (r["Properties"]["EventPattern"]["source"][0], r["Properties"]["EventPattern"]["detail-type"][0])
        for r in rules.values()
    }
    assert ours == theirs and len(rules) == len(theirs)
    for logical, rule in rules.items():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == arn_of(names["queue"]), logical

    # EventBridge may send, but only on behalf of these rules (upstream allows any rule).
    karpenter.resource_count_is("AWS::SQS::QueuePolicy", 1)
    policy = next(iter(karpenter.find_resources("AWS::SQS::QueuePolicy").values()))
    assert policy["Properties"]["Queues"] == [{"Ref": names["queue"]}]
    send_statements = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in as_list(s["Action"])
    ]
    assert all(s["Principal"] == {"Service": "events.amazonaws.com"} for s in send_statements)
    allowed = [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in send_statements]
    assert sorted(map(json.dumps, allowed)) == sorted(json.dumps(arn_of(logical)) for logical in rules)


def test_release_is_the_pinned_oci_chart_and_starts_after_all_it_needs(karpenter, names):
    values = Capture()
    karpenter.has_resource_properties(
        "Custom::AWSCDK-EKS-HelmChart",
        {
            "Chart": "karpenter",
            "Repository": versions.KARPENTER_CHART_REPO,
            "Version": versions.KARPENTER,
            "Namespace": KARPENTER_NAMESPACE,
            "SkipCrds": True,
            "Values": values,
        },
    )
    assert versions.KARPENTER_CHART_REPO.startswith("oci://")
    settings = json.loads(values.as_string())["settings"]
    queue = karpenter.find_resources("AWS::SQS::Queue")[names["queue"]]["Properties"]
    assert settings == {"clusterName": CLUSTER, "interruptionQueue": queue["QueueName"]}

    karpenter.has_resource_properties(
        "Custom::AWSCDK-EKS-HelmChart",
        {
            "Chart": "karpenter-crd",
            "Repository": versions.KARPENTER_CRD_CHART_REPO,
            "Version": versions.KARPENTER,
        },
    )
    needed = [
        names["crds"],
        names["queue"],
        names["controller_role"],
        "SystemNodes",
        logical_id(karpenter, "AWS::EKS::PodIdentityAssociation"),
        logical_id(karpenter, "AWS::EKS::AccessEntry"),
        *karpenter.find_resources("AWS::IAM::ManagedPolicy"),
        *karpenter.find_resources("AWS::Events::Rule"),
    ]
    karpenter.has_resource(
        "Custom::AWSCDK-EKS-HelmChart",
        {"Properties": {"Chart": "karpenter"}, "DependsOn": Match.array_with(sorted(needed))},
    )


# --- EKS add-ons ------------------------------------------------------------------------------


def addons_template(kubernetes_version: str) -> Template:
    stack, cluster, nodes = bare_stack()
    EksAddons(
        stack,
        "Addons",
        cluster=cluster,
        cluster_name=CLUSTER,
        kubernetes_version=kubernetes_version,
        nodes=nodes,
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def addons() -> Template:
    return addons_template(versions.KUBERNETES_DEFAULT)


def addon_ids(template: Template) -> dict[str, str]:
    return {
        r["Properties"]["AddonName"]: logical
        for logical, r in template.find_resources("AWS::EKS::Addon").items()
    }


@pytest.mark.parametrize("kubernetes_version", sorted(versions.EKS_ADDONS))
def test_addons_are_pinned_per_kubernetes_version(kubernetes_version):
    template = addons_template(kubernetes_version)
    pinned = versions.EKS_ADDONS[kubernetes_version]
    template.resource_count_is("AWS::EKS::Addon", len(pinned))
    for name, version in pinned.items():
        # Deleting the stack removes the add-on: nothing it installed is left in the cluster.
        template.has_resource_properties(
            "AWS::EKS::Addon",
            {"ClusterName": CLUSTER, "AddonName": name, "AddonVersion": version, "PreserveOnDelete": False},
        )


def test_networking_addons_come_before_the_nodes_and_the_rest_after(addons):
    ids = addon_ids(addons)
    before = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
    addons.has_resource(
        "AWS::CloudFormation::WaitConditionHandle",
        {"DependsOn": Match.array_with(sorted(ids[name] for name in before))},
    )
    for name in set(ids) - set(before):
        addons.has_resource(
            "AWS::EKS::Addon",
            {"Properties": Match.object_like({"AddonName": name}), "DependsOn": ["SystemNodes"]},
        )


@pytest.mark.parametrize(
    ("addon", "service_account", "policy"),
    [
        ("aws-efs-csi-driver", "efs-csi-controller-sa", "AmazonEFSCSIDriverPolicy"),
        ("aws-ebs-csi-driver", "ebs-csi-controller-sa", "AmazonEBSCSIDriverPolicy"),
    ],
)
def test_csi_drivers_get_their_own_pod_identity_role(addons, addon, service_account, policy):
    role_arn = Capture()
    addons.has_resource_properties(
        "AWS::EKS::Addon",
        {
            "AddonName": addon,
            "PodIdentityAssociations": [{"ServiceAccount": service_account, "RoleArn": role_arn}],
        },
    )
    (role, attribute) = role_arn.as_object()["Fn::GetAtt"]
    assert attribute == "Arn"
    props = addons.find_resources("AWS::IAM::Role")[role]["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert json.dumps(props["ManagedPolicyArns"]).count("arn:") == 1
    assert f"policy/service-role/{policy}" in json.dumps(props["ManagedPolicyArns"])


def test_ebs_volumes_carry_the_cluster_tag_the_teardown_guard_sweeps_by(addons):
    from config.names import VOLUME_CLUSTER_TAG_KEY

    configuration = Capture()
    addons.has_resource_properties(
        "AWS::EKS::Addon", {"AddonName": "aws-ebs-csi-driver", "ConfigurationValues": configuration}
    )
    assert json.loads(configuration.as_string()) == {
        "controller": {"extraVolumeTags": {VOLUME_CLUSTER_TAG_KEY: CLUSTER}}
    }


def test_vpc_cni_enforces_network_policies(addons):
    # The add-on schema's key and string value (stacks/eks_addons.py cites the EKS guide).
    configuration = Capture()
    addons.has_resource_properties(
        "AWS::EKS::Addon", {"AddonName": "vpc-cni", "ConfigurationValues": configuration}
    )
    assert json.loads(configuration.as_string()) == {"enableNetworkPolicy": "true"}
