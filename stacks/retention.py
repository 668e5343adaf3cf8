"""CloudWatch log retention from a number of days in config."""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

# CloudWatch accepts only these retention periods (days).
_RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` days."""
    for allowed in sorted(_RETENTION_DAYS):
        if allowed >= days:
            return _RETENTION_DAYS[allowed]
    return logs.RetentionDays.TEN_YEARS


def owned_log_group(
    scope: Construct,
    construct_id: str,
    *,
    days: int,
    removal_policy: RemovalPolicy,
    name: str | None = None,
) -> logs.LogGroup:
    """A log group the stack owns: it expires after `days` and goes (or stays) with the
    stack's data per `removal_policy`, instead of being created by its writer with no expiry
    and left behind."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=log_retention(days),
        removal_policy=removal_policy,
    )


def send_function_logs_to(function: CfnResource, log_group: logs.ILogGroup) -> None:
    """Point a Lambda function we do not construct ourselves (CDK's kubectl provider and
    provider-framework handlers) at `log_group` (Lambda's LoggingConfig.LogGroup). The Ref
    makes CloudFormation create the group before the function, so the function never writes
    to a group of its own making."""
    assert function.cfn_resource_type == "AWS::Lambda::Function", function.node.path
    function.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
