"""Command registry. Each command lives in its own module with `add_arguments` and `run`.

User mistakes (bad config, bad arguments, missing tools) end as one `error:` line and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from config import ConfigError

# command name -> (module, one-line help), in the order a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("ops.validate", "check a config file and print what it would deploy"),
    "plan": ("ops.plan", "show each graph's GPUs, nodes, KV-cache room and on-demand cost"),
    "manifests": ("ops.manifests", "write the Kubernetes manifests of every environment as YAML"),
    "rehearse": (
        "ops.rehearse",
        "run a graph's topology on this machine (real Dynamo, CPU "
        "mocker engine) and smoke-test it; --keep keeps it running",
    ),
    "smoke": (
        "ops.smoke",
        "smoke-test a Dynamo frontend: model listed, health, metrics, completions, latency",
    ),
    "credentials": (
        "ops.credentials",
        "check that AWS credentials are set (make diff, deploy and destroy run it first)",
    ),
    "preflight": (
        "ops.preflight",
        "check an AWS account before deploying: credentials, bootstrap, GPU quotas, offerings, HF token",
    ),
    "review": (
        "ops.review",
        "what a change does to each environment: cdk diff, manifest diff, summary (offline)",
    ),
    "destroy-target": (
        "ops.destroy_target",
        "the config `make destroy` uses (one environment of a pipeline config)",
    ),
    "config-docs": ("ops.config_docs", "regenerate docs/CONFIG.md from the config models"),
}

DESCRIPTION = "Commands around a dynamo-eks deployment; most have a `make` target of the same name."
EPILOG = """\
first hour, no AWS account needed:
  python -m ops validate --config config/default.yaml
  python -m ops plan --config config/default.yaml
  python -m ops manifests --config config/default.yaml     (make manifests)
  python -m ops rehearse --config config/default.yaml --keep   (make rehearse KEEP=1)
  python -m ops smoke --url http://127.0.0.1:PORT          (make smoke URL=...)
with AWS credentials (AWS_PROFILE=...):
  python -m ops preflight --config config/default.yaml     (make preflight)
  python -m ops smoke --graph NAME --port-forward          (make smoke GRAPH=NAME)

`python -m ops COMMAND --help` shows a command's options. README.md: "First hour".
"""


class UsageError(Exception):
    """A mistake in how a command was called or in its inputs; printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
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
