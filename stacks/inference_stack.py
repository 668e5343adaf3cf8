"""Inference: one DynamoGraphDeployment (+ model prefetch Job) per configured graph.

Graphs are spread over several Inference stacks (`GRAPHS_PER_STACK` each) so that fifty
graphs stay far below CloudFormation's per-template limits (1 MB body, 500 resources,
200 outputs); each stack reads like a list: one manifest and two outputs per graph (three
when its frontend has a load balancer).
"""

from __future__ import annotations

import re

import cdk8s
from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config.graphs import GraphConfig
from config.names import stack_id
from config.schema import DeploymentConfig
from plan.resolve import resolve_graph

# Each graph is one manifest custom resource (~5-16 KB of template, its cost recording
# rules included) and two outputs; ten per stack keeps every template under ~20% of the
# size limit.
GRAPHS_PER_STACK = 10


def shard_graphs(
    graphs: list[GraphConfig], per_stack: int = GRAPHS_PER_STACK
) -> list[tuple[int, list[GraphConfig]]]:
    """(stack index, graphs) pairs. Graphs with a `stack` number go where they are pinned, so
    removing one never moves another. Unpinned graphs (config validation allows all or none)
    fill stacks in config order, `per_stack` at a time: appending never moves existing graphs,
    but removing one from the middle moves later ones to another stack (recreated)."""
    pinned = [graph.stack for graph in graphs if graph.stack is not None]
    if graphs and len(pinned) == len(graphs):
        numbers = sorted(set(pinned))
        return [(n - 1, [g for g in graphs if g.stack == n]) for n in numbers]
    return [
        (index, graphs[start : start + per_stack])
        for index, start in enumerate(range(0, len(graphs), per_stack))
    ]


def inference_stack_unit(index: int) -> str:
    """'inference' for the first shard (stable name for the common one-stack case)."""
    return "inference" if index == 0 else f"inference-{index + 1}"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name) if part)


class InferenceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: DeploymentConfig,
        graphs: list[GraphConfig],
        cluster: eks.ICluster,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        from k8s_charts import graphs as graph_charts

        # Every input is a deterministic name, but for the account of ECR images.
        inputs = graph_charts.GraphInputs(
            prometheus_url=graph_charts.review_inputs(cfg).prometheus_url,
            account=cfg.account or Aws.ACCOUNT_ID,
        )
        app = cdk8s.App()
        for graph in graphs:
            chart = graph_charts.graph_chart(app, cfg, resolve_graph(cfg, graph), inputs)
            camel = _camel(graph.name)
            eks.KubernetesManifest(
                self,
                f"Graph{camel}",
                cluster=cluster,
                manifest=chart.to_json(),
                # A changed graph is re-applied in place; the operator rolls its pods.
                overwrite=True,
            )
            CfnOutput(
                self,
                f"{camel}FrontendService",
                value=f"{graph_charts.INFERENCE_NAMESPACE}/{graph.frontend_service()}",
                description=f"graph {graph.name}: OpenAI-compatible frontend Service (namespace/name)",
            )
            CfnOutput(
                self,
                f"{camel}PortForward",
                value=graph_charts.port_forward_command(graph),
                description=f"graph {graph.name}: then call http://localhost:8000/v1/models",
            )
            if graph.expose is not None:
                CfnOutput(
                    self,
                    f"{camel}LoadBalancerService",
                    value=f"{graph_charts.INFERENCE_NAMESPACE}/{graph.frontend_load_balancer_service()}",
                    description=f"graph {graph.name}: internal NLB Service (namespace/name); its "
                    "address is in status.loadBalancer.ingress",
                )


def add_inference_stacks(
    scope: Construct,
    cfg: DeploymentConfig,
    *,
    cluster: eks.ICluster,
    after: Stack,
    stack_props,
) -> list[InferenceStack]:
    """One Inference stack per shard of graphs, each deployed after `after` (the Platform
    stack: the Dynamo operator and its CRDs, the model cache PVC and HF token secret)."""
    stacks = []
    for index, graphs in shard_graphs(list(cfg.graphs)):
        unit = inference_stack_unit(index)
        names = ", ".join(graph.name for graph in graphs)
        stack = InferenceStack(
            scope,
            stack_id(cfg.environment, unit),
            cfg=cfg,
            graphs=graphs,
            cluster=cluster,
            **stack_props(unit, f"inference graphs {names}"[:900]),
        )
        stack.add_stack_dependency(after)
        stacks.append(stack)
    return stacks
