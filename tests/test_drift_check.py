"""Scheduled drift check: the pipeline stack's schedule, Lambda and least-privilege role, and
the handler driven by botocore's Stubber (no AWS)."""

from __future__ import annotations

import importlib.util
import json

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from config import ConfigError
from tests.tools.synth import REPO

pytestmark = pytest.mark.xdist_group("pipeline")

EXAMPLE = REPO / "config" / "examples" / "pipeline.yaml"


def _load_handler():
    path = REPO / "stacks" / "drift_check_handler" / "index.py"
    spec = importlib.util.spec_from_file_location("drift_check_index", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handler = _load_handler()


def _client(service: str):
    client = boto3.client(service, region_name="us-west-2", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


# -- template ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template():
    from tests.tools.synth import synth

    return synth(EXAMPLE).templates["dynamo-pipeline"]


def test_one_schedule_per_environment_with_its_stacks_and_lookup_role(template):
    rules = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert len(rules) == 3
    inputs = {}
    for rule in rules:
        assert rule["ScheduleExpression"] == "cron(0 6 * * ? *)"
        assert rule["State"] == "ENABLED"
        (target,) = rule["Targets"]
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}
        text = "".join(p if isinstance(p, str) else "<ref>" for p in target["Input"]["Fn::Join"][1])
        event = json.loads(text.replace('"arn:<ref>:', '"arn:aws:'))
        inputs[event["environment"]] = event
    assert set(inputs) == {"dev", "prod", "dynamo-images"}
    # The tooling account's Images stack is checked too, through its own lookup role.
    assert inputs["dynamo-images"]["stacks"] == ["dynamo-images"]
    assert inputs["dynamo-images"]["role_arn"] == (
        "arn:aws:iam::111111111111:role/cdk-hnb659fds-lookup-role-111111111111-us-west-2"
    )
    for env, account in (("dev", "222222222222"), ("prod", "333333333333")):
        event = inputs[env]
        assert event["account"] == account and event["region"] == "us-west-2"
        assert (
            event["role_arn"] == f"arn:aws:iam::{account}:role/cdk-hnb659fds-lookup-role-{account}-us-west-2"
        )
        assert event["stacks"] == [f"{env}-network", f"{env}-cluster", f"{env}-registry", f"{env}-platform"]
        assert event["topic_arn"] == "<ref>"


def test_role_may_assume_only_the_lookup_roles_and_publish_only_to_the_topic(template):
    resources = template["Resources"]
    (function,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and "drift check" in r["Properties"].get("Description", "")
    ]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    (policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "AssumeEnvironmentLookupRoles",
        "WriteOwnLogs",
        "PublishDrift",
        "EncryptForTopic",
    }
    assume = statements["AssumeEnvironmentLookupRoles"]
    assert assume["Action"] == "sts:AssumeRole"
    assert "*" not in json.dumps(assume["Resource"])
    assert "cdk-hnb659fds-lookup-role-222222222222-us-west-2" in json.dumps(assume["Resource"])
    assert "cdk-hnb659fds-lookup-role-333333333333-us-west-2" in json.dumps(assume["Resource"])
    assert len(assume["Resource"]) == 3  # dev, prod and the tooling account's, nothing else
    topic = next(k for k, r in resources.items() if r["Type"] == "AWS::SNS::Topic")
    assert statements["PublishDrift"] == {
        "Sid": "PublishDrift",
        "Action": "sns:Publish",
        "Effect": "Allow",
        "Resource": {"Ref": topic},
    }
    key = resources[topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert statements["EncryptForTopic"]["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    assert sorted(statements["EncryptForTopic"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert function["Properties"]["Timeout"] == 600
    assert function["Properties"]["LoggingConfig"]["LogGroup"]


def test_lookup_role_name_is_cdks_own_template():
    """The name the drift check assumes is the bootstrap template's LookupRole name."""
    from stacks.drift_check import lookup_role_arn

    bootstrap = (REPO / "node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml").read_text()
    assert "cdk-${Qualifier}-lookup-role-${AWS::AccountId}-${AWS::Region}" in bootstrap
    assert lookup_role_arn("222222222222", "eu-west-1") == (
        "arn:aws:iam::222222222222:role/cdk-hnb659fds-lookup-role-222222222222-eu-west-1"
    )


def test_drift_check_can_be_disabled_and_its_schedule_is_validated(tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from config.environments import environment_configs
    from plan import load_config
    from stacks.pipeline_stack import PipelineStack

    data = yaml.safe_load(EXAMPLE.read_text())
    data["pipeline"]["drift_check"] = {"enabled": False}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    stack = PipelineStack(
        cdk.App(),
        "p",
        pipeline=cfg.pipeline,
        environments=environment_configs(cfg, path),
        config_path="config/p.yaml",
        env=cdk.Environment(account="111111111111", region="us-west-2"),
    )
    assert not Template.from_stack(stack).find_resources("AWS::Events::Rule")

    data["pipeline"]["drift_check"] = {"schedule": "every day"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = err.value.lines
    assert line.startswith(
        f"{path}: pipeline.drift_check.schedule: 'every day' is not an EventBridge schedule"
    )


# -- handler -------------------------------------------------------------------------------


def _detection(stubber, stack: str, detection_id: str) -> None:
    stubber.add_response("detect_stack_drift", {"StackDriftDetectionId": detection_id}, {"StackName": stack})


def _status(stubber, detection_id: str, stack: str, status: str, drift: str | None = None, reason=None):
    response = {
        "StackId": f"arn:aws:cloudformation:us-west-2:222222222222:stack/{stack}/1",
        "StackDriftDetectionId": detection_id,
        "DetectionStatus": status,
        "Timestamp": "2026-12-01T06:00:00Z",
    }
    if drift:
        response["StackDriftStatus"] = drift
    if reason:
        response["DetectionStatusReason"] = reason
    stubber.add_response(
        "describe_stack_drift_detection_status", response, {"StackDriftDetectionId": detection_id}
    )


def test_in_sync_stacks_give_no_findings():
    cfn, stubber = _client("cloudformation")
    _detection(stubber, "dev-network", "d1")
    _detection(stubber, "dev-cluster", "d2")
    _status(stubber, "d1", "dev-network", "DETECTION_COMPLETE", "IN_SYNC")
    _status(stubber, "d2", "dev-cluster", "DETECTION_IN_PROGRESS")
    _status(stubber, "d2", "dev-cluster", "DETECTION_COMPLETE", "IN_SYNC")
    sleeps = []
    assert handler.detect(cfn, ["dev-network", "dev-cluster"], sleep=sleeps.append) == []
    assert sleeps == [handler.POLL_SECONDS]
    stubber.assert_no_pending_responses()


def test_drifted_missing_and_failed_stacks_are_named():
    cfn, stubber = _client("cloudformation")
    _detection(stubber, "dev-network", "d1")
    stubber.add_client_error(
        "detect_stack_drift",
        "ValidationError",
        "Stack with id dev-platform does not exist",
        expected_params={"StackName": "dev-platform"},
    )
    _detection(stubber, "dev-cluster", "d3")
    _status(stubber, "d1", "dev-network", "DETECTION_COMPLETE", "DRIFTED")
    stubber.add_response(
        "describe_stack_resource_drifts",
        {
            "StackResourceDrifts": [
                {
                    "StackId": "arn:aws:cloudformation:us-west-2:222222222222:stack/dev-network/1",
                    "LogicalResourceId": "VpcNatSg",
                    "ResourceType": "AWS::EC2::SecurityGroup",
                    "StackResourceDriftStatus": "MODIFIED",
                    "Timestamp": "2026-12-01T06:00:00Z",
                }
            ]
        },
        {"StackName": "dev-network", "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]},
    )
    _status(
        stubber,
        "d3",
        "dev-cluster",
        "DETECTION_FAILED",
        "IN_SYNC",
        reason="Failed to detect drift on resource X",
    )
    findings = handler.detect(cfn, ["dev-network", "dev-platform", "dev-cluster"], sleep=lambda _: None)
    assert findings == [
        "dev-platform: not deployed (the stack does not exist)",
        "dev-network: DRIFTED: VpcNatSg (AWS::EC2::SecurityGroup) modified",
        "dev-cluster: drift detection failed: Failed to detect drift on resource X",
    ]
    stubber.assert_no_pending_responses()


def test_detection_that_outlasts_the_deadline_is_reported():
    cfn, stubber = _client("cloudformation")
    _detection(stubber, "dev-network", "d1")
    _status(stubber, "d1", "dev-network", "DETECTION_IN_PROGRESS")
    _status(stubber, "d1", "dev-network", "DETECTION_IN_PROGRESS")
    now = iter([0.0, 5.0, 100.0])
    findings = handler.detect(
        cfn, ["dev-network"], sleep=lambda _: None, clock=lambda: next(now), deadline_seconds=50
    )
    assert findings == ["dev-network: drift detection still running after the check's deadline"]


def test_notification_names_environment_and_each_finding():
    sns, stubber = _client("sns")
    topic = "arn:aws:sns:us-west-2:111111111111:dynamo-pipeline-Notifications"
    event = {"environment": "prod", "account": "333333333333", "region": "us-west-2", "topic_arn": topic}
    findings = ["prod-network: DRIFTED: VpcNatSg (AWS::EC2::SecurityGroup) modified"]
    stubber.add_response(
        "publish",
        {"MessageId": "m-1"},
        {
            "TopicArn": topic,
            "Subject": "dynamo-eks prod: 1 stack(s) drifted or unchecked",
            "Message": (
                "Drift check of environment prod (account 333333333333, us-west-2):\n"
                f"- {findings[0]}\n\n"
                "Someone changed these resources outside the pipeline. Open the stack in the "
                "CloudFormation console (Stack actions > Detect drift > View drift results), then "
                "either revert the change or put it in the config and let the pipeline deploy it."
            ),
        },
    )
    handler.notify(sns, event, findings)
    stubber.assert_no_pending_responses()


def test_handler_assumes_the_lookup_role_checks_and_notifies(monkeypatch):
    """The entry point end to end: STS, CloudFormation with the assumed credentials, SNS."""
    sts, sts_stub = _client("sts")
    cfn, cfn_stub = _client("cloudformation")
    sns, sns_stub = _client("sns")
    role = "arn:aws:iam::333333333333:role/cdk-hnb659fds-lookup-role-333333333333-us-west-2"
    topic = "arn:aws:sns:us-west-2:111111111111:dynamo-pipeline-Notifications"
    sts_stub.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": "2026-12-01T07:00:00Z",
            }
        },
        {"RoleArn": role, "RoleSessionName": "drift-check-prod"},
    )
    cfn_stub.add_client_error(
        "detect_stack_drift",
        "ValidationError",
        "Stack with id prod-network does not exist",
        expected_params={"StackName": "prod-network"},
    )
    sns_stub.add_response("publish", {"MessageId": "m-1"}, None)
    made = []

    def fake_client(service, **kwargs):
        made.append((service, kwargs))
        return {"sts": sts, "cloudformation": cfn, "sns": sns}[service]

    monkeypatch.setattr(boto3, "client", fake_client)
    event = {
        "environment": "prod",
        "account": "333333333333",
        "region": "us-west-2",
        "role_arn": role,
        "stacks": ["prod-network"],
        "topic_arn": topic,
    }
    summary = handler.handler(event, None)
    assert summary["findings"] == ["prod-network: not deployed (the stack does not exist)"]
    assert (
        "cloudformation",
        {
            "region_name": "us-west-2",
            "aws_access_key_id": "ASIAEXAMPLEEXAMPLE",
            "aws_secret_access_key": "secret",
            "aws_session_token": "token",
        },
    ) in made
    for stubber in (sts_stub, cfn_stub, sns_stub):
        stubber.assert_no_pending_responses()
