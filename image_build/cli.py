"""`python -m image_build start|follow|record`: run the Dynamo image build from a terminal.

Mistakes and failures end as one `error:` line: no credentials, stack not deployed, unknown
framework, build failed (with its phase).

With a pipeline config whose graphs use ECR images, images are built once, in the tooling
account's Images stack, and a successful build's digest is recorded in the pipeline's digest
file (`record` looks up an image that already exists); commit that file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.images import SharedRegistry, image_tag, images_stack_name
from config.names import BUILD_FRAMEWORKS, stack_id

DEFAULT_CONFIG = "config/default.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m image_build", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = sub.add_parser("start", help="start a build of one framework's runtime image")
    # Checked by us, not argparse `choices`, so a typo is one clear line.
    start.add_argument("--framework", required=True, help="vllm | sglang | trtllm")
    start.add_argument("--efa", action="store_true", help="build the EFA variant (tag <version>-efa)")
    start.add_argument("--wait", action="store_true", help="follow phases and logs until it ends")
    follow = sub.add_parser("follow", help="follow a running build's phases and logs")
    follow.add_argument("build_id", help="CodeBuild build id (printed by start)")
    record = sub.add_parser(
        "record", help="pipeline: record the digest of an image that is already in the tooling account"
    )
    record.add_argument("--framework", required=True, help="vllm | sglang | trtllm")
    record.add_argument("--efa", action="store_true", help="the EFA variant (tag <version>-efa)")
    for command in (start, follow, record):
        command.add_argument("--config", default=DEFAULT_CONFIG, help="deployment config (YAML)")
        command.add_argument(
            "--environment", help="with a pipeline config: which environment's project to use"
        )
        command.add_argument("--poll-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    return parser


class UsageError(Exception):
    pass


def main(argv: list[str], session_factory: Any = None, out=None) -> int:
    from config import ConfigError
    from image_build.client import BuildError

    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        return _run(args, session_factory, out)
    except ConfigError as err:
        err.report()
        return 2
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (the build keeps running; `follow` it again)", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, session_factory: Any, out) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from image_build import client

    if args.command in ("start", "record") and args.framework not in BUILD_FRAMEWORKS:
        raise UsageError(f"unknown framework '{args.framework}'; use one of {', '.join(BUILD_FRAMEWORKS)}")
    target = _target(args.config, args.environment)
    if args.command == "record" and target.shared is None:
        raise UsageError(
            f"{args.config} records no digests: only a pipeline config whose graphs use ECR images "
            "pins them (images.source: ecr)"
        )
    if session_factory is None:
        import boto3

        session_factory = boto3.Session
    session = session_factory(region_name=target.region)
    if session.get_credentials() is None:
        raise client.BuildError(
            "no AWS credentials found; log in (e.g. `aws sso login --profile X` and "
            f"AWS_PROFILE=X) for the account of the stack {target.stack_name}"
        )
    try:
        config = client.client_config()
        if args.command == "record":
            assert target.shared is not None
            _record(session.client("ecr", config=config), target.shared, args.framework, args.efa, out)
            return 0
        project = client.find_project(
            session.client("cloudformation", config=config), target.stack_name, target.region
        )
        codebuild = session.client("codebuild", config=config)
        if args.command == "start":
            build = client.start_build(codebuild, project, framework=args.framework, efa=args.efa)
            uri = client.expected_image_uri(build, framework=args.framework, efa=args.efa)
            print(f"started {build['id']} -> {uri}", file=out)
            if not args.wait:
                print(f"follow it: {follow_command(build['id'], args.config, args.environment)}", file=out)
                return 0
            build_id = build["id"]
        else:
            build_id = args.build_id
        final = client.follow(
            codebuild,
            session.client("logs", config=config),
            build_id,
            log_group=project.log_group,
            out=out,
            poll_seconds=args.poll_seconds,
        )
        if final.get("buildStatus") != "SUCCEEDED":
            raise client.BuildError(client.failure_line(final))
        framework = _framework_of(final)
        efa = _variable(final, "EFA") == "true"
        print(f"image: {client.expected_image_uri(final, framework=framework, efa=efa)}", file=out)
        if target.shared is not None:
            _record(session.client("ecr", config=config), target.shared, framework, efa, out)
    except NoCredentialsError:
        raise client.BuildError("no AWS credentials found; log in (e.g. `aws sso login`) and retry") from None
    except ClientError as err:
        error = err.response["Error"]
        raise client.BuildError(
            f"AWS {err.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as err:
        raise client.BuildError(f"AWS request failed: {err}") from None
    return 0


def _record(ecr, shared: SharedRegistry, framework: str, efa: bool, out) -> None:
    """Look the pushed image up in the tooling account and pin its digest in the file."""
    from config.image_digests import record
    from image_build import client

    image = BUILD_FRAMEWORKS[framework]
    tag = image_tag(efa=efa)
    digest = client.image_digest(
        ecr, registry_id=shared.account, repository=f"{shared.repository_prefix}/{image}", tag=tag
    )
    record(
        Path(shared.digests_file),
        registry=shared.location,
        key=f"{image}:{tag}",
        digest=digest,
        config=shared.config_path,
    )
    print(f"recorded {image}:{tag} = {digest} in {shared.digests_file}; commit it", file=out)


def follow_command(build_id: str, config: str, environment: str | None) -> str:
    """The command that attaches to this build again, with the same config and environment."""
    import shlex

    command = ["python", "-m", "image_build", "follow", build_id, "--config", config]
    if environment:
        command += ["--environment", environment]
    return shlex.join(command)


def _variable(build: dict, name: str) -> str | None:
    for variable in build.get("environment", {}).get("environmentVariables", []):
        if variable["name"] == name:
            return variable["value"]
    return None


def _framework_of(build: dict) -> str:
    return _variable(build, "FRAMEWORK") or "vllm"


@dataclass(frozen=True)
class Target:
    """Where the build project is: its stack and region, and a pipeline's shared registry."""

    stack_name: str
    region: str
    shared: SharedRegistry | None = None


def _target(path: str, environment: str | None) -> Target:
    from plan import load_config

    cfg = load_config(path)
    if cfg.pipeline is None:
        if environment not in (None, cfg.environment):
            raise UsageError(f"{path} describes environment '{cfg.environment}', not '{environment}'")
        return Target(stack_id(cfg.environment, "registry"), cfg.region)
    from config.environments import environment_configs

    configs = {env.environment: env for _, env in environment_configs(cfg, path)}
    shared = next((env.images.shared for env in configs.values() if env.images.shared), None)
    if shared is not None:
        if environment is not None:
            raise UsageError(
                f"{path} builds its images once, in the tooling account {shared.account} (stack "
                f"{images_stack_name(shared.repository_prefix)}); drop --environment {environment}"
            )
        return Target(images_stack_name(shared.repository_prefix), shared.region, shared)
    if environment not in configs:
        raise UsageError(f"{path} is a pipeline config; pass --environment with one of {', '.join(configs)}")
    env = configs[environment]
    return Target(stack_id(env.environment, "registry"), env.region)
