"""`ops plan --config PATH`: what each graph needs, holds and costs (the capacity planner).

The same arithmetic runs at every config load, so a config that prints here also passes
synth; this command only shows the numbers behind the check.
"""

from __future__ import annotations

import argparse

from config.catalog.prices import price as catalog_price
from plan import load_config
from plan.capacity import RESERVE_GIB, GraphPlan, plan_graph
from plan.pools import resolve_pool_limits

COLUMNS = (
    "graph",
    "role",
    "instance",
    "replicas x TP",
    "GPUs",
    "nodes",
    "weights/GPU",
    "KV tokens",
    "seqs@max_len",
    "$/hour",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--graph", default="", help="only this graph (default: all)")


def rows(plan: GraphPlan) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for role in plan.roles:
        fit = role.fit
        shape = f"{role.replicas} x {role.tensor_parallel}"
        if role.nodes > 1:
            shape += f" ({role.nodes} nodes each)"
        if fit is None:
            out.append(
                (
                    plan.graph,
                    role.role,
                    "-",
                    shape,
                    "-" if plan.backend == "mocker" else str(role.gpus),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
            continue
        out.append(
            (
                plan.graph,
                role.role,
                f"{fit.instance.name} ({fit.instance.gpus}x {fit.instance.gpu_model} {fit.instance.gpu_memory_gib:.1f} GiB)",
                shape,
                str(role.gpus),
                str(role.node_count),
                f"{fit.weights_per_gpu_gb:.1f} GB",
                f"{fit.kv_tokens:,}",
                f"{fit.concurrent_sequences} @ {fit.max_model_len:,}",
                f"{role.usd_per_hour:,.2f}" if role.usd_per_hour is not None else role.pricing,
            )
        )
    return out


def table(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def run(args: argparse.Namespace) -> int:
    from ops.cli import UsageError

    cfg = load_config(args.config)
    graphs = [g for g in cfg.graphs if not args.graph or g.name == args.graph]
    if args.graph and not graphs:
        known = ", ".join(g.name for g in cfg.graphs) or "none"
        raise UsageError(f"no graph '{args.graph}' in {args.config}; graphs: {known}")
    if not graphs:
        print(f"{args.config}: no graphs configured")
        return 0
    plans = [plan_graph(cfg, graph) for graph in graphs]
    lines: list[tuple[str, ...]] = [COLUMNS]
    for plan in plans:
        lines.extend(rows(plan))
    print(table(lines))
    print()
    total = 0.0
    for plan in plans:
        cost = plan.usd_per_hour
        total += cost or 0.0
        price = f"${cost:,.2f}/hour on demand" if cost is not None else "no GPU cost estimate"
        status = "checked" if plan.checked else "UNCHECKED"
        print(f"{plan.graph}: {plan.backend} {plan.topology}, {plan.model}: {price}; {status} ({plan.note})")
        for warning in plan.warnings:
            print(f"  warning: {warning}")
    priced = sorted(
        {
            f"{source.key} ({source.date})"
            for plan in plans
            for role in plan.roles
            if role.fit is not None
            and (found := catalog_price(role.fit.instance.name, cfg.region)) is not None
            for source in [found.source]
        }
    )
    unpriced = sorted(
        {
            role.fit.instance.name
            for plan in plans
            for role in plan.roles
            if role.fit is not None and role.pricing.startswith("no ")
        }
    )
    print(
        f"\ntotal GPU workers: ${total:,.2f}/hour on demand in {cfg.region} "
        f"(prices: {'; '.join(priced) or 'none'}; frontend/planner CPU nodes, EKS and storage not "
        f"included; reserved capacity counts as 0, it is paid for by the reservation). Per GPU the "
        f"check keeps {RESERVE_GIB:g} GiB outside weights + KV cache."
    )
    if unpriced:
        print(
            f"warning: no {cfg.region} On-Demand price is recorded for {', '.join(unpriced)} "
            "(config/catalog/prices.json); the total leaves them out"
        )
    _print_pools(cfg)
    return 0


def _print_pools(cfg) -> None:
    """Each pool the graphs use: its limits (own or derived) against their maximum need."""
    limits, _ = resolve_pool_limits(cfg)
    used = [(name, lim) for name, lim in limits.items() if lim.need.graphs]
    if not used:
        return
    print("\npool limits (what Karpenter may launch; memory after its VM overhead):")
    for name, lim in used:
        gpus = f", {lim.gpus} GPUs" if lim.gpus is not None else ""
        need = lim.need.least
        print(
            f"  {name}: {lim.cpu} vCPUs, {lim.memory_gib} GiB{gpus}; graphs {', '.join(lim.need.graphs)} "
            f"need {need.cpu} vCPUs, {need.memory_gib} GiB, {need.gpus} GPUs at their maximum replicas"
        )
