#!/usr/bin/env python3
"""CDK entry point: one config file -> the stacks of one environment (or a pipeline)."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config import ConfigError, load_config
from stacks.deployment import add_deployment

DEFAULT_CONFIG = "config/default.yaml"


def build_app(app: cdk.App, config_path: str) -> cdk.App:
    cfg = load_config(config_path)
    add_deployment(app, cfg)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> int:
    app = cdk.App()
    config_path = app.node.try_get_context("config") or DEFAULT_CONFIG
    try:
        build_app(app, config_path)
    except ConfigError as err:
        err.report()
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
