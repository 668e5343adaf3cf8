"""`ops validate --config PATH`: check a config without synthesizing anything."""

from __future__ import annotations

import argparse

from plan import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if cfg.pipeline is None:
        _report(args.config, cfg)
        return 0
    from config.environments import environment_configs

    # A pipeline config deploys its environments, not its top level: report each of them.
    for _, environment in environment_configs(cfg, args.config):
        _report(f"{args.config} [{environment.environment}]", environment)
    print(
        f"ok: pipeline in {cfg.pipeline.account}/{cfg.pipeline.region} promotes "
        + " -> ".join(env.environment for _, env in environment_configs(cfg, args.config))
    )
    return 0


def _report(where: str, cfg) -> None:
    for warning in config_warnings(cfg):
        print(f"warning: {where}: {warning}")
    print(
        f"ok: {where} -> environment '{cfg.environment}', cluster '{cfg.cluster.name}' "
        f"(Kubernetes {cfg.cluster.kubernetes_version}) in {cfg.account or 'the deploying account'}"
        f"/{cfg.region}"
    )


def config_warnings(cfg) -> list[str]:
    """Legal but risky choices, reported without failing."""
    warnings = []
    endpoint = cfg.cluster.endpoint
    if endpoint.public_access and "0.0.0.0/0" in endpoint.public_access_cidrs:
        warnings.append(
            "cluster.endpoint.public_access_cidrs allows 0.0.0.0/0; the API is IAM-"
            "authenticated, but narrow it to your VPN/office egress for production"
        )
    if not cfg.cluster.admin_principals:
        warnings.append("cluster.admin_principals is empty; add your IAM role ARN or nobody can use kubectl")
    from plan.capacity import plan_graph

    for graph in cfg.graphs:
        warnings.extend(plan_graph(cfg, graph).warnings)
    return warnings
