"""`ops credentials`: are AWS credentials set at all? Says what to set when they are not.

`make diff|deploy|destroy` run it before the CDK CLI, which otherwise ends in "Unable to
resolve AWS account to use" (twice) without naming a fix. It makes no AWS call: finding
credentials is local; whether they work for the config's account is `make preflight`.
"""

from __future__ import annotations

import argparse

from ops.cli import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="config/default.yaml", help="config the credentials are for (named in the hint)"
    )
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")


def run(args: argparse.Namespace) -> int:
    import boto3
    import botocore.exceptions

    try:
        found = boto3.Session(profile_name=args.profile).get_credentials()
    except botocore.exceptions.ProfileNotFound as err:
        raise UsageError(f"{err}; list your profiles with `aws configure list-profiles`") from None
    except botocore.exceptions.BotoCoreError as err:
        raise UsageError(f"AWS credentials could not be loaded: {err}") from None
    if found is None:
        raise UsageError(
            "no AWS credentials found; set AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) for the config's account, then run "
            f"`make preflight CONFIG={args.config}` to check account, bootstrap and quotas"
        )
    return 0
