"""Command registry. Each command lives in its own module with `add_arguments` and `run`.

User mistakes (bad config, bad arguments, missing tools) end as one `error:` line and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from config import ConfigError

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("ops.validate", "validate a config file and print what it would deploy"),
    "manifests": ("ops.manifests", "render the cdk8s charts of a config to YAML files"),
    "preflight": ("ops.preflight", "check the AWS account before deploy (credentials, bootstrap, quotas, offerings)"),
    "smoke": ("ops.smoke", "smoke-test a Dynamo endpoint (models, health, metrics, completions, latency)"),
    "rehearse": ("ops.rehearse", "run a graph's topology locally on real Dynamo + mocker, then smoke it"),
    "plan": ("ops.plan", "show each graph's GPUs, KV-cache room and on-demand cost"),
    "config-docs": ("ops.config_docs", "regenerate docs/CONFIG.md from the config models"),
    "destroy-target": ("ops.destroy_target", "the config `make destroy` uses; refuses a pipeline config without an environment"),
    "review": ("ops.review", "what a change does to each environment: cdk diff, manifest diff, summary (offline)"),
}


class UsageError(Exception):
    """A mistake in how a command was called or in its inputs; printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as err:
        err.report()
        return 1
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
