"""Scheduled drift check of one pipeline environment (stacks/drift_check.py).

EventBridge invokes it with {"environment", "account", "region", "role_arn", "stacks",
"topic_arn"}. It assumes the environment's CDK lookup role (ReadOnlyAccess, trusted by the
tooling account through `cdk bootstrap --trust`), runs CloudFormation drift detection on
every stack, and publishes one message to the pipeline's notifications topic when a stack
drifted, is missing, or could not be checked. Nothing is published when all are in sync.

Only boto3 (in the Lambda runtime) is imported; the core takes clients, so tests drive it
with botocore's Stubber.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# CloudFormation's words (DescribeStackDriftDetectionStatus / DescribeStackResourceDrifts).
IN_PROGRESS = "DETECTION_IN_PROGRESS"
DRIFTED_RESOURCE_STATUSES = ["MODIFIED", "DELETED"]
# The Lambda has 10 minutes; detection of every stack is started first, then polled.
POLL_SECONDS = 10.0
DEADLINE_SECONDS = 8 * 60
SNS_SUBJECT_MAX = 100


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    credentials = boto3.client("sts").assume_role(
        RoleArn=event["role_arn"], RoleSessionName=f"drift-check-{event['environment']}"[:64]
    )["Credentials"]
    cloudformation = boto3.client(
        "cloudformation",
        region_name=event["region"],
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    findings = detect(cloudformation, event["stacks"])
    summary = {"environment": event["environment"], "findings": findings}
    if findings:
        notify(boto3.client("sns"), event, findings)
    print(summary)
    return summary


def detect(
    cloudformation,
    stacks: list[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> list[str]:
    """One line per stack that is not in sync (drifted resources named); [] if all are."""
    from botocore.exceptions import ClientError

    findings: list[str] = []
    pending: dict[str, str] = {}
    for stack in stacks:
        try:
            pending[stack] = cloudformation.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
        except ClientError as err:
            message = err.response["Error"].get("Message", "")
            if "does not exist" in message:
                findings.append(f"{stack}: not deployed (the stack does not exist)")
            else:
                findings.append(f"{stack}: drift detection could not start: {message}")
    end = clock() + deadline_seconds
    while pending:
        for stack, detection in list(pending.items()):
            status = cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
            if status["DetectionStatus"] == IN_PROGRESS:
                continue
            del pending[stack]
            finding = _finding(cloudformation, stack, status)
            if finding:
                findings.append(finding)
        if pending:
            if clock() >= end:
                findings.extend(
                    f"{stack}: drift detection still running after the check's deadline" for stack in pending
                )
                break
            sleep(POLL_SECONDS)
    return findings


def _finding(cloudformation, stack: str, status: dict[str, Any]) -> str | None:
    drift = status.get("StackDriftStatus")
    if status["DetectionStatus"] == "DETECTION_FAILED" and drift != "DRIFTED":
        return f"{stack}: drift detection failed: {status.get('DetectionStatusReason', 'no reason given')}"
    if drift != "DRIFTED":
        return None
    drifts = cloudformation.describe_stack_resource_drifts(
        StackName=stack, StackResourceDriftStatusFilters=DRIFTED_RESOURCE_STATUSES
    )["StackResourceDrifts"]
    resources = ", ".join(
        f"{d['LogicalResourceId']} ({d['ResourceType']}) {d['StackResourceDriftStatus'].lower()}"
        for d in drifts
    )
    return f"{stack}: DRIFTED: {resources or 'see the Drifts tab'}"


def notify(sns, event: dict[str, Any], findings: list[str]) -> None:
    environment, account, region = event["environment"], event["account"], event["region"]
    subject = f"dynamo-eks {environment}: {len(findings)} stack(s) drifted or unchecked"
    message = "\n".join(
        [
            f"Drift check of environment {environment} (account {account}, {region}):",
            *(f"- {line}" for line in findings),
            "",
            "Someone changed these resources outside the pipeline. Open the stack in the "
            "CloudFormation console (Stack actions > Detect drift > View drift results), then "
            "either revert the change or put it in the config and let the pipeline deploy it.",
        ]
    )
    sns.publish(TopicArn=event["topic_arn"], Subject=subject[:SNS_SUBJECT_MAX], Message=message)
