"""Start a Dynamo image build in CodeBuild, follow its phases and logs, report the image.

Every AWS call goes through clients handed in by the caller, so tests drive this module with
botocore's Stubber and the CLI decides where credentials come from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import ClientError

from config import versions
from config.image_digests import DIGEST
from config.images import BUILDKIT_IMAGE, BUILDKIT_VERSION, image_tag
from config.names import OUTPUT_LOG_GROUP, OUTPUT_PROJECT, framework_env_key

_FAILED = {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}
# Error codes AWS uses for "slow down" (CodeBuild and CloudWatch Logs use the first).
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)
# A follow that is throttled backs off up to this, then polls at this pace until AWS answers.
MAX_BACKOFF_SECONDS = 60.0


def client_config():
    """botocore config for the follow loop's clients: adaptive retries (client-side rate
    limiting plus exponential backoff on throttling), so a long follow survives busy APIs."""
    from botocore.config import Config

    return Config(retries={"mode": "adaptive", "max_attempts": 10})


def _throttled(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in THROTTLING_CODES


class BuildError(Exception):
    """Something the user can act on, printed as one line."""


@dataclass(frozen=True)
class BuildProject:
    name: str
    log_group: str


def find_project(cloudformation, stack_name: str, region: str) -> BuildProject:
    """The build project recorded in the Registry stack's outputs."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        if "does not exist" in err.response["Error"].get("Message", ""):
            raise BuildError(
                f"stack '{stack_name}' is not deployed in {region}; deploy it first with "
                f"`cdk deploy {stack_name}` (same config as this command)"
            ) from None
        raise
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if OUTPUT_PROJECT not in outputs or OUTPUT_LOG_GROUP not in outputs:
        raise BuildError(
            f"stack '{stack_name}' ({stack['StackStatus']}) has no image build outputs; deploy "
            f"this version of the app with `cdk deploy {stack_name}`"
        )
    return BuildProject(name=outputs[OUTPUT_PROJECT], log_group=outputs[OUTPUT_LOG_GROUP])


def pinned_variables(framework: str) -> dict[str, str]:
    """What this checkout pins for a build of `framework`. Sent with every build, so a
    version bump can be built (and its digest recorded) with the project already deployed,
    before the commit that needs the new image reaches the pipeline."""
    return {
        "DYNAMO_VERSION": versions.DYNAMO,
        "DYNAMO_GIT_REPOSITORY": versions.DYNAMO_GIT_REPOSITORY,
        f"CUDA_VERSION_{framework_env_key(framework)}": versions.DYNAMO_BUILD_CUDA[framework],
        "RENDER_PIP": " ".join(versions.DYNAMO_RENDER_PIP),
        "BUILDKIT_IMAGE": f"{BUILDKIT_IMAGE}:{BUILDKIT_VERSION}",
    }


def start_build(codebuild, project: BuildProject, *, framework: str, efa: bool) -> dict[str, Any]:
    variables = {"FRAMEWORK": framework, "EFA": "true" if efa else "false", **pinned_variables(framework)}
    response = codebuild.start_build(
        projectName=project.name,
        environmentVariablesOverride=[
            {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
        ],
    )
    return response["build"]


def image_digest(ecr, *, registry_id: str, repository: str, tag: str) -> str:
    """The digest ECR holds for repository:tag (what `docker pull` of the tag resolves to)."""
    try:
        details = ecr.describe_images(
            registryId=registry_id, repositoryName=repository, imageIds=[{"imageTag": tag}]
        )["imageDetails"]
    except ClientError as err:
        if err.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise BuildError(
                f"{repository}:{tag} is not in account {registry_id}; build it first "
                "(python -m image_build start ... --wait records its digest)"
            ) from None
        raise
    digest = details[0].get("imageDigest", "") if details else ""
    if not DIGEST.match(digest):
        raise BuildError(f"ECR returned no sha256 digest for {repository}:{tag} (got '{digest}')")
    return digest


def expected_image_uri(build: dict[str, Any], *, framework: str, efa: bool) -> str:
    """The URI the build pushes: its exported IMAGE_URI, else repository variable + tag."""
    for variable in build.get("exportedEnvironmentVariables", []) or []:
        if variable["name"] == "IMAGE_URI" and variable.get("value"):
            return variable["value"]
    wanted = f"IMAGE_REPOSITORY_{framework_env_key(framework)}"
    for variable in build.get("environment", {}).get("environmentVariables", []):
        if variable["name"] == wanted:
            return f"{variable['value']}:{image_tag(efa=efa)}"
    raise BuildError(
        f"build {build['id']} has no {wanted} variable; redeploy the registry stack so the "
        "project knows this framework's repository"
    )


@dataclass
class _LogCursor:
    group: str
    stream: str | None = None
    token: str | None = None
    printed: int = 0
    seen_phases: set[tuple[str, str]] = field(default_factory=set)


def follow(
    codebuild,
    logs,
    build_id: str,
    *,
    log_group: str,
    out: TextIO,
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Print phase changes and new log lines until the build completes; return the build.

    Throttling (once botocore's own retries are spent) never ends the follow: it waits
    longer, up to MAX_BACKOFF_SECONDS, and polls again; the build runs on regardless. After
    the build completes the log is read once more, after one poll interval, because
    CloudWatch Logs receives the last lines after CodeBuild reports the end.
    """
    cursor = _LogCursor(group=log_group)
    backoff = poll_seconds
    while True:
        try:
            build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        except ClientError as err:
            if not _throttled(err):
                raise
            backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_SECONDS)
            sleep(backoff)
            continue
        backoff = poll_seconds
        _print_phases(build, cursor, out)
        stream = (build.get("logs") or {}).get("streamName")
        if stream:
            cursor.stream = stream
            _print_new_log_lines(logs, cursor, out)
        if build.get("buildComplete"):
            if cursor.stream:
                sleep(poll_seconds)
                _print_new_log_lines(logs, cursor, out)
            return build
        sleep(poll_seconds)


def _print_phases(build: dict[str, Any], cursor: _LogCursor, out: TextIO) -> None:
    for phase in build.get("phases", []):
        status = phase.get("phaseStatus", "IN_PROGRESS")
        key = (phase["phaseType"], status)
        if key not in cursor.seen_phases:
            cursor.seen_phases.add(key)
            print(f"==> {phase['phaseType']}: {status}", file=out)


def _print_new_log_lines(logs, cursor: _LogCursor, out: TextIO) -> None:
    while True:
        kwargs = {"logGroupName": cursor.group, "logStreamName": cursor.stream, "startFromHead": True}
        if cursor.token:
            kwargs["nextToken"] = cursor.token
        try:
            page = logs.get_log_events(**kwargs)
        except ClientError as err:
            # CodeBuild creates the stream a few seconds after the build starts; a throttled
            # read resumes from the same token at the next poll.
            if err.response["Error"]["Code"] == "ResourceNotFoundException" or _throttled(err):
                return
            raise
        for event in page.get("events", []):
            print(event["message"].rstrip("\n"), file=out)
        token = page.get("nextForwardToken")
        if not page.get("events") or token == cursor.token:
            cursor.token = token or cursor.token
            return
        cursor.token = token


def failure_line(build: dict[str, Any]) -> str:
    """'build X failed in phase BUILD: <reason>' from the first phase that did not succeed."""
    for phase in build.get("phases", []):
        if phase.get("phaseStatus") in _FAILED:
            reasons = [c.get("message", "") for c in phase.get("contexts", []) if c.get("message")]
            reason = f": {reasons[0]}" if reasons else ""
            return (
                f"build {build['id']} {phase['phaseStatus'].lower().replace('_', ' ')} in phase "
                f"{phase['phaseType']}{reason}"
            )
    return f"build {build['id']} ended {build.get('buildStatus', 'UNKNOWN')}"
