"""Every IAM policy the project writes, in every config's synthesized templates, is audited by
parliament (AWS's action, condition-key and resource-ARN catalogue): zero findings but the
justified exceptions below, each of which must still apply (a stale exception fails).

What is collected and how intrinsics become placeholder ARNs: tests/tools/iam_policies.py.
Each statement is linted on its own, so a finding is pinned to its policy and Sid.
"""

from __future__ import annotations

import functools
import json

import pytest
from parliament import analyze_policy_string

from tests.tools.configs import all_configs, config_id
from tests.tools.iam_policies import PolicyDocument, construct_id, project_policies
from tests.tools.synth import synth

CONFIGS = all_configs()
KARPENTER = "stacks/karpenter.py re-expresses upstream Karpenter v1.14's getting-started CloudFormation"

# (policy's logical id without CDK's hash, statement Sid, parliament issue) -> why it stands.
EXCEPTIONS: dict[tuple[str, str | int, str], str] = {
    ("KarpenterNodeLifecyclePolicy", "AllowScopedEC2InstanceAccessActions", "RESOURCE_MISMATCH"): (
        f"{KARPENTER}: RunInstances/CreateFleet touch several resource types, granted across "
        "statements with different conditions (images, subnets, security groups here; tagged "
        "instances and launch templates in the next two). IAM evaluates each resource of a "
        "request against every statement; parliament wants each statement to cover them all."
    ),
    ("KarpenterNodeLifecyclePolicy", "AllowScopedEC2LaunchTemplateAccessActions", "RESOURCE_MISMATCH"): (
        f"{KARPENTER}: the launch-template part of RunInstances/CreateFleet, conditioned on the "
        "cluster's tags; the other resource types are granted by the neighbouring statements."
    ),
    ("KarpenterNodeLifecyclePolicy", "AllowScopedEC2InstanceActionsWithTags", "RESOURCE_MISMATCH"): (
        f"{KARPENTER}: the resources RunInstances/CreateFleet create, conditioned on request "
        "tags; the resources they only use are granted by the neighbouring statements."
    ),
    ("KarpenterZonalShiftPolicy", "AllowZonalShiftStatusReadOnly", "RESOURCE_STAR"): (
        f'{KARPENTER}: Resource "*" as upstream has it, limited to this cluster by the '
        "arc-zonal-shift:ResourceIdentifier condition (the cluster's ARN)."
    ),
    ("KarpenterResourceDiscoveryPolicy", "AllowSSMReadActions", "RESOURCE_MISMATCH"): (
        f"{KARPENTER}: AWS's public parameters (/aws/service/*, EKS AMI ids) have no account in "
        "their ARN (arn:aws:ssm:<region>::parameter/aws/service/...); parliament's pattern "
        "wants one."
    ),
    ("ImageBuildProjectRoleDefaultPolicy", "PullDockerHubThroughCache", "RESOURCE_MISMATCH"): (
        "parliament 1.6.4's catalogue has no resource type for ecr:BatchImportUpstreamImage (it "
        "predates pull-through cache); AWS's Service Authorization Reference for ECR lists it "
        "with repository* (list_amazonelasticcontainerregistry.html), so the repositories "
        "under the build's own pull-through cache prefix are the right resource."
    ),
    ("TeardownGuardRoleDefaultPolicy", "ReadInstanceProfiles", "RESOURCE_MISMATCH"): (
        "parliament 1.6.4's catalogue lists iam:ListInstanceProfiles twice, once with no resource "
        'type ("*") and once with instance-profile*; the instance-profile ARN we grant matches '
        "the latter (checked by test_list_instance_profiles_catalogue_still_ambiguous)."
    ),
}


@functools.cache
def policies(config) -> tuple[PolicyDocument, ...]:
    return tuple(project_policies(synth(config).templates))


def statements(policy: PolicyDocument) -> list[dict]:
    found = policy.document["Statement"]
    return found if isinstance(found, list) else [found]


def lint(statement: dict) -> list:
    document = {"Version": "2012-10-17", "Statement": [statement]}
    return analyze_policy_string(json.dumps(document), include_community_auditors=False).findings


@functools.cache
def findings(config) -> tuple[tuple[tuple[str, str | int, str], str], ...]:
    """((policy, Sid or index, issue), detail) of every finding of the config."""
    out = []
    for policy in policies(config):
        for index, statement in enumerate(statements(policy)):
            for finding in lint(statement):
                key = (construct_id(policy.logical_id), statement.get("Sid", index), finding.issue)
                out.append((key, f"{policy.stack}/{policy.name}: {finding.detail}"))
    return tuple(out)


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_project_iam_policies_have_no_unexplained_findings(config):
    assert policies(config), "no IAM policies collected"
    unexplained = [f"{key}: {detail}" for key, detail in findings(config) if key not in EXCEPTIONS]
    assert unexplained == []


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_every_intrinsic_is_resolved(config):
    for policy in policies(config):
        text = json.dumps(policy.document)
        assert '"Ref"' not in text and "Fn::" not in text and "${" not in text, policy.name


def test_every_exception_still_applies_and_has_a_reason():
    found = {key for config in CONFIGS for key, _ in findings(config)}
    stale = sorted(set(EXCEPTIONS) - found, key=str)
    assert stale == [], f"exceptions that no longer match a finding (remove them): {stale}"
    for key, reason in EXCEPTIONS.items():
        assert len(reason) >= 60 and reason.rstrip().endswith((".", ")")), key


def test_the_audit_covers_the_project_policies():
    names = {construct_id(p.logical_id) for config in CONFIGS for p in policies(config)}
    assert {
        "ImageBuildProjectRoleDefaultPolicy",
        "KarpenterNodeLifecyclePolicy",
        "TeardownGuardRoleDefaultPolicy",
        "SecretsExternalSecretsRoleDefaultPolicy",
        "VpcFlowLogIAMRoleDefaultPolicy",
        # platform.logs (on in the production example): Fluent Bit's Pod Identity role.
        "ContainerLogsFluentBitRoleDefaultPolicy",
    } <= names
    # CDK's own machinery is left out.
    assert not {n for n in names if "Provider" in n or n.startswith("Pipeline")}


def test_list_instance_profiles_catalogue_still_ambiguous():
    from parliament import iam_definition

    entries = [
        priv
        for service in iam_definition
        if service["prefix"] == "iam"
        for priv in service["privileges"]
        if priv["privilege"] == "ListInstanceProfiles"
    ]
    types = sorted(r["resource_type"] for entry in entries for r in entry["resource_types"])
    assert types == ["", "instance-profile*"]


@pytest.mark.parametrize(
    ("statement", "issue"),
    [
        ({"Effect": "Allow", "Action": "ec2:RunInstancez", "Resource": "*"}, "UNKNOWN_ACTION"),
        (
            {
                "Effect": "Allow",
                "Action": "sqs:ReceiveMessage",
                "Resource": "arn:aws:sqs:us-west-2:123456789012:q",
                "Condition": {"StringEquals": {"s3:prefix": "x"}},
            },
            "UNKNOWN_CONDITION_FOR_ACTION",
        ),
        (
            {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "arn:aws:s3:::bucket"},
            "RESOURCE_MISMATCH",
        ),
    ],
)
def test_the_linter_catches_planted_mistakes(statement, issue):
    assert issue in {f.issue for f in lint(statement)}


def test_fluent_bit_may_only_write_streams_of_its_log_group():
    """The container-log role (stacks/observability.py ContainerLogs): two write actions on the
    stack's log group, nothing account-wide; a wildcard resource would be a finding."""
    production = next(c for c in CONFIGS if config_id(c) == "production")
    (policy,) = [p for p in policies(production) if construct_id(p.logical_id).startswith("ContainerLogs")]
    (statement,) = statements(policy)
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    # The placeholder ARN names the group by its logical id (tests/tools/iam_policies.py).
    assert statement["Resource"].startswith(
        "arn:aws:logs:us-west-2:123456789012:log-group:containerlogsgroup"
    )
    assert lint(statement) == []
    assert "RESOURCE_STAR" in {f.issue for f in lint({**statement, "Resource": "*"})}
