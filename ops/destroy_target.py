"""`ops destroy-target --config PATH [--environment ENV]`: what `make destroy` may destroy.

Prints (stdout) the config that `cdk destroy --all` must use, and explains (stderr) what it
removes. A pipeline config is refused without `--environment`: its app holds only the pipeline
stack, so `cdk destroy --all` would delete the pipeline and leave every environment running,
and the pipeline would redeploy an environment it still lists. With `--environment`, the
environment's merged config is written as a standalone config: it synthesizes the same stacks
(same names, account and region) the pipeline deployed, so `cdk destroy --all` with it removes
exactly that environment.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import yaml

from config.names import stack_id
from ops.cli import UsageError
from plan import load_config

UNITS = ("network", "cluster", "registry", "platform", "inference")
OUT_DIR = Path("dist") / "destroy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--environment", help="with a pipeline config: the environment to destroy")
    parser.add_argument(
        "--out-dir", default=str(OUT_DIR), help="where an environment's standalone config is written"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    cfg = load_config(args.config)
    if cfg.pipeline is None:
        if args.environment not in (None, cfg.environment):
            raise UsageError(
                f"{args.config} describes environment '{cfg.environment}', not "
                f"'{args.environment}'; drop ENVIRONMENT or pass that environment's config"
            )
        print(args.config)
        return 0
    from config.environments import environment_configs

    environments = [env for _, env in environment_configs(cfg, args.config)]
    if args.environment is None:
        for line in refusal(args.config, cfg, environments):
            print(line, file=sys.stderr)
        return 2
    by_name = {env.environment: env for env in environments}
    if args.environment not in by_name:
        raise UsageError(
            f"{args.config} has no environment '{args.environment}'; use one of {', '.join(by_name)}"
        )
    env = by_name[args.environment]
    path = Path(args.out_dir) / f"{env.environment}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Written by `ops destroy-target` from {args.config} (environment {env.environment}),\n"
        "# for `cdk destroy --all`; edit the pipeline config, not this file.\n"
        + yaml.safe_dump(env.model_dump(mode="json", exclude_none=True), sort_keys=False)
    )
    print(
        f"destroying environment '{env.environment}' of {args.config}: the stacks "
        f"{env.environment}-* in account {env.account}, {env.region} (credentials for that "
        f"account). Stop the pipeline from redeploying it first: "
        f"{_disable_transition(cfg, env)}",
        file=sys.stderr,
    )
    print(path)
    return 0


def _pipeline_name(cfg) -> str:
    return stack_id(cfg.environment, "pipeline")


def _disable_transition(cfg, env) -> str:
    return shlex.join(
        [
            "aws",
            "codepipeline",
            "disable-stage-transition",
            "--region",
            cfg.pipeline.region,
            "--pipeline-name",
            _pipeline_name(cfg),
            "--stage-name",
            env.environment,
            "--transition-type",
            "Inbound",
            "--reason",
            "teardown",
        ]
    )


def refusal(config: str, cfg, environments) -> list[str]:
    """The exact procedure, per environment, last promoted first."""
    pipeline = _pipeline_name(cfg)
    lines = [
        f"error: {config} is a pipeline config: `cdk destroy --all` would select only the "
        f"pipeline stack ({pipeline}) and leave every environment running. Destroy one "
        "environment at a time, last promoted first:",
    ]
    for step, env in enumerate(reversed(environments), start=1):
        stacks = ", ".join(stack_id(env.environment, unit) for unit in UNITS[:4])
        lines += [
            f"  {step}. {env.environment} (account {env.account}, {env.region}; stacks {stacks}, ...):",
            f"     {_disable_transition(cfg, env)}   # tooling account {cfg.pipeline.account}",
            f"     make destroy CONFIG={config} ENVIRONMENT={env.environment}   "
            f"# credentials for {env.account}",
        ]
    lines += [
        "  Then remove the destroyed environments from pipeline.environments and merge (the "
        "pipeline updates itself and drops their stages), or, to remove everything, destroy "
        f"the pipeline with tooling-account credentials: npx cdk destroy -c config={config} "
        f"{pipeline}",
    ]
    return lines
