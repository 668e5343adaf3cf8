#!/usr/bin/env python3
"""CDK entry point: one config file -> the stacks of one environment (or a pipeline)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

if __name__ == "__main__":
    # A synth is one short-lived process that builds many long-lived objects (jsii bindings,
    # constructs) and frees almost none: CPython's cyclic collector kept rescanning them,
    # ~0.3 s of a synth (make bench), for the same peak memory (~270 MB) without it.
    gc.disable()

try:
    import aws_cdk as cdk
except ImportError:
    # `npx cdk ...` runs `python3 app.py` with whatever python3 is first on PATH.
    sys.exit(
        f"error: aws_cdk is not installed for {sys.executable}; run the CDK CLI from the project "
        "venv: `make synth` (sets it up), or `make setup && source .venv/bin/activate` and then "
        "`npx cdk ...`"
    )

from config import ConfigError
from plan import load_config
from stacks.deployment import add_deployment

DEFAULT_CONFIG = "config/default.yaml"
REPO = Path(__file__).resolve().parent


def build_app(app: cdk.App, config_path: str, *, nag: bool = True) -> cdk.App:
    cfg = load_config(config_path)
    if cfg.pipeline is None:
        add_deployment(app, cfg)
    else:
        add_pipeline(app, cfg, config_path)
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def nag_requested(app: cdk.App) -> bool:
    """The `nag` context: cdk-nag runs where templates are gated, not on every synth.

    `make synth|diff|deploy`, the pipeline's synth step (`make synth`) and `make test` (on
    every config under config/) run it; a bare `cdk synth` or `cdk diff` skips it, as it
    skips cfn-lint: it costs about 0.3 s of every synth (`make bench`).
    """
    value = app.node.try_get_context("nag")
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError([f"context nag: expected true or false, got {value!r}; use -c nag=true"])


def add_pipeline(app: cdk.App, cfg, config_path: str) -> None:
    """A config with a `pipeline` section deploys through CodePipeline, never directly."""
    from config.environments import environment_configs
    from config.names import stack_id
    from stacks.pipeline_stack import PipelineStack

    path = Path(config_path).resolve()
    try:
        in_repo = path.relative_to(REPO)
    except ValueError:
        raise ConfigError(
            [
                f"{config_path}: a pipeline config must live inside the repository ({REPO}) so "
                "the pipeline's synth step can read it; move it under config/"
            ]
        ) from None
    name = stack_id(cfg.environment, "pipeline")
    environments = environment_configs(cfg, config_path)
    stack = PipelineStack(
        app,
        name,
        pipeline=cfg.pipeline,
        environments=environments,
        config_path=in_repo.as_posix(),
        removal_policy=cdk.RemovalPolicy.RETAIN if cfg.retain_data else cdk.RemovalPolicy.DESTROY,
        env=cdk.Environment(account=cfg.pipeline.account, region=cfg.pipeline.region),
        stack_name=name,
        description=f"dynamo-eks {cfg.environment}: CDK Pipeline promoting "
        + " -> ".join(env.environment for _, env in environments),
    )
    for key, value in cfg.tags.items():
        cdk.Tags.of(stack).add(key, value)


def new_app(**kwargs) -> cdk.App:
    # aws-cdk-lib's built-in CloudFormation validation repeats what `make test` does with
    # cfn-lint (the same rules, without our justified ignores) and costs ~2 s per synth,
    # mostly hashing every asset in cdk.out; the gate stays in the test suite.
    return cdk.App(builtin_cloud_formation_validation=False, **kwargs)


def main() -> int:
    app = new_app()
    config_path = app.node.try_get_context("config") or DEFAULT_CONFIG
    try:
        build_app(app, config_path, nag=nag_requested(app))
    except ConfigError as err:
        err.report()
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
