"""Each graph's NetworkPolicies (k8s_charts/network_policies.py), evaluated with an evaluator of
NetworkPolicy ingress semantics (tests/tools/network_policy.py): a table of flows that must be
allowed and denied, every expected flow of every shipped config, and planted gaps that the
table catches."""

from __future__ import annotations

import functools

import pytest
from pydantic import ValidationError

from config.graphs import FrontendExposeConfig, FrontendIngressConfig
from config.names import FRONTEND_SERVICE_PORT, INFERENCE_NAMESPACE, MONITORING_NAMESPACE
from config.schema import DeploymentConfig
from k8s_charts.graphs import KVBM_METRICS_PORT, WORKER_SYSTEM_PORT
from k8s_charts.registry import render
from plan import load_config
from plan.engine_args import KV_EVENTS_PORT, PLANNER_METRICS_PORT, SGLANG_BOOTSTRAP_PORT
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.tools.configs import shipped_configs
from tests.tools.network_policy import Pod, ingress_allowed

GRAPHS = REPO / "config" / "examples" / "graphs"
NIXL_SIDE_CHANNEL = 5600  # vLLM's VLLM_NIXL_SIDE_CHANNEL_PORT default: one of the run-time ports


def graph_objects(cfg: DeploymentConfig) -> list[dict]:
    return render(cfg)["graphs"]


def policies(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


def pods(objects: list[dict]) -> dict[tuple[str, str], Pod]:
    """(graph, component) -> a pod of it, with the labels its template gives it."""
    found = {}
    for dgd in (o for o in objects if o["kind"] == "DynamoGraphDeployment"):
        for comp in dgd["spec"]["components"]:
            labels = comp["podTemplate"]["metadata"]["labels"]
            found[(dgd["metadata"]["name"], comp["name"])] = Pod(INFERENCE_NAMESPACE, labels)
    return found


@functools.cache
def example(name: str) -> list[dict]:
    return graph_objects(load_config(GRAPHS / f"{name}.yaml"))


@functools.cache
def default() -> list[dict]:
    return graph_objects(load_config(DEFAULT_CONFIG))


def with_ingress(**ingress) -> list[dict]:
    cfg = load_config(DEFAULT_CONFIG)
    graph = cfg.graphs[0].model_copy(update={"frontend_ingress": FrontendIngressConfig(**ingress)})
    return graph_objects(cfg.model_copy(update={"graphs": [graph]}))


def with_expose(ingress: dict | None = None, **expose) -> list[dict]:
    cfg = load_config(DEFAULT_CONFIG)
    update: dict = {"expose": FrontendExposeConfig(type="internal_nlb", **expose)}
    if ingress is not None:
        update["frontend_ingress"] = FrontendIngressConfig(**ingress)
    graph = cfg.graphs[0].model_copy(update=update)
    return graph_objects(cfg.model_copy(update={"graphs": [graph]}))


APP = Pod("apps", {"app": "chat"})
# A client behind the internal load balancer: its address reaches the pod (Local policy).
LB_CLIENT = Pod("", ip="10.50.7.9")
OUTSIDER = Pod("", ip="10.60.7.9")
PROMETHEUS = Pod(MONITORING_NAMESPACE, {"app.kubernetes.io/name": "prometheus"})
STRANGER = Pod(INFERENCE_NAMESPACE, {"dynamo-eks/graph": "another-graph", "dynamo-eks/component": "worker"})

# (objects, source, (graph, component) of the destination, port, allowed)
G = "r1-distill-8b"
CASES = [
    # The frontend's port from the cluster's pods (default: every namespace).
    (default, APP, (G, "frontend"), FRONTEND_SERVICE_PORT, True),
    (default, STRANGER, (G, "frontend"), FRONTEND_SERVICE_PORT, True),
    (default, APP, (G, "frontend"), WORKER_SYSTEM_PORT, False),
    (default, APP, (G, "prefill"), FRONTEND_SERVICE_PORT, False),
    # The graph's own pods: request plane, KV events, NIXL side channel, any port.
    (default, (G, "frontend"), (G, "decode"), 40123, True),
    (default, (G, "frontend"), (G, "prefill"), KV_EVENTS_PORT, True),
    (default, (G, "decode"), (G, "prefill"), NIXL_SIDE_CHANNEL, True),
    (default, (G, "prefill"), (G, "decode"), NIXL_SIDE_CHANNEL, True),
    # Nobody else reaches the workers.
    (default, STRANGER, (G, "prefill"), KV_EVENTS_PORT, False),
    (default, APP, (G, "decode"), NIXL_SIDE_CHANNEL, False),
    (default, Pod("default", {"dynamo-eks/graph": G}), (G, "decode"), 40123, False),
    # Metrics from the monitoring namespace, on the scraped ports only.
    (default, PROMETHEUS, (G, "prefill"), WORKER_SYSTEM_PORT, True),
    (default, PROMETHEUS, (G, "frontend"), FRONTEND_SERVICE_PORT, True),
    (default, PROMETHEUS, (G, "prefill"), KV_EVENTS_PORT, False),
    (default, APP, (G, "decode"), WORKER_SYSTEM_PORT, False),
    (lambda: example("planner"), PROMETHEUS, ("r1-8b-planner", "planner"), PLANNER_METRICS_PORT, True),
    (lambda: example("planner"), APP, ("r1-8b-planner", "planner"), PLANNER_METRICS_PORT, False),
    (lambda: example("kv-offload"), PROMETHEUS, ("llama-8b-kvbm", "worker"), KVBM_METRICS_PORT, True),
    (lambda: example("kv-offload"), APP, ("llama-8b-kvbm", "worker"), KVBM_METRICS_PORT, False),
    (
        lambda: example("sglang-disagg"),
        ("r1-8b-sglang-disagg", "decode"),
        ("r1-8b-sglang-disagg", "prefill"),
        SGLANG_BOOTSTRAP_PORT,
        True,
    ),
    (lambda: example("sglang-disagg"), APP, ("r1-8b-sglang-disagg", "prefill"), SGLANG_BOOTSTRAP_PORT, False),
    # Restricted frontend clients: listed namespaces and CIDRs; monitoring still scrapes.
    (lambda: with_ingress(namespaces=["apps"]), APP, (G, "frontend"), FRONTEND_SERVICE_PORT, True),
    (
        lambda: with_ingress(namespaces=["apps"]),
        Pod("other", {}),
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        False,
    ),
    (lambda: with_ingress(namespaces=["apps"]), PROMETHEUS, (G, "frontend"), FRONTEND_SERVICE_PORT, True),
    (
        lambda: with_ingress(namespaces=[], cidrs=["10.20.0.0/16"]),
        Pod("", ip="10.20.3.4"),
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        True,
    ),
    (
        lambda: with_ingress(namespaces=[], cidrs=["10.20.0.0/16"]),
        Pod("", ip="10.30.3.4"),
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        False,
    ),
    (
        lambda: with_ingress(namespaces=[], cidrs=["10.20.0.0/16"]),
        APP,
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        False,
    ),
    # An exposed frontend: its load balancer's clients, on the frontend port only, and no
    # further than the frontend, even with in-cluster clients cut to none.
    (
        lambda: with_expose(source_ranges=["10.50.0.0/16"]),
        LB_CLIENT,
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        True,
    ),
    (
        lambda: with_expose(source_ranges=["10.50.0.0/16"]),
        OUTSIDER,
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        False,
    ),
    (
        lambda: with_expose(source_ranges=["10.50.0.0/16"]),
        LB_CLIENT,
        (G, "frontend"),
        WORKER_SYSTEM_PORT,
        False,
    ),
    (lambda: with_expose(source_ranges=["10.50.0.0/16"]), LB_CLIENT, (G, "decode"), 40123, False),
    (
        lambda: with_expose({"namespaces": []}, source_ranges=["10.50.0.0/16"]),
        LB_CLIENT,
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        True,
    ),
    (
        lambda: with_expose({"namespaces": []}, source_ranges=["10.50.0.0/16"]),
        APP,
        (G, "frontend"),
        FRONTEND_SERVICE_PORT,
        False,
    ),
    # Not exposed: the same client address is refused (the default admits namespaces, not CIDRs).
    (default, LB_CLIENT, (G, "frontend"), FRONTEND_SERVICE_PORT, False),
]


def _ids() -> list[str]:
    def name(source) -> str:
        return "-".join(source) if isinstance(source, tuple) else f"{source.namespace or source.ip}"

    return [f"{name(s)}->{'-'.join(d)}:{p}:{'allow' if a else 'deny'}" for _, s, d, p, a in CASES]


def decide(objects: list[dict], source: Pod | tuple[str, str], dest: tuple[str, str], port: int) -> bool:
    found = pods(objects)
    src = found[source] if isinstance(source, tuple) else source
    return ingress_allowed(policies(objects), src, found[dest], port)


@pytest.mark.parametrize(("objects", "source", "dest", "port", "allowed"), CASES, ids=_ids())
def test_flow_table(objects, source, dest, port, allowed):
    assert decide(objects(), source, dest, port) is allowed


def without(objects: list[dict], name: str) -> list[dict]:
    assert any(o["metadata"]["name"] == name for o in objects), name
    return [o for o in objects if o["metadata"]["name"] != name]


@pytest.mark.parametrize(
    ("policy", "source", "dest", "port"),
    [
        (f"{G}-within-graph", (G, "prefill"), (G, "decode"), NIXL_SIDE_CHANNEL),
        (f"{G}-frontend-clients", APP, (G, "frontend"), FRONTEND_SERVICE_PORT),
        (f"{G}-metrics-prefill", PROMETHEUS, (G, "prefill"), WORKER_SYSTEM_PORT),
    ],
)
def test_a_missing_rule_breaks_an_expected_flow(policy, source, dest, port):
    assert decide(default(), source, dest, port)
    assert not decide(without(default(), policy), source, dest, port)


def test_a_missing_load_balancer_rule_breaks_the_exposed_flow():
    objects = with_expose({"namespaces": []}, source_ranges=["10.50.0.0/16"])
    assert decide(objects, LB_CLIENT, (G, "frontend"), FRONTEND_SERVICE_PORT)
    assert not decide(
        without(objects, f"{G}-frontend-load-balancer"), LB_CLIENT, (G, "frontend"), FRONTEND_SERVICE_PORT
    )


@pytest.mark.parametrize("label", [label for label, _ in shipped_configs()])
def test_every_exposed_graph_admits_its_source_ranges_and_its_service_targets_the_port(label):
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == label]
    objects = graph_objects(cfg)
    found = pods(objects)
    for graph in (g for g in cfg.graphs if g.expose is not None):
        (service,) = [o for o in objects if o["metadata"]["name"] == graph.frontend_load_balancer_service()]
        (port,) = service["spec"]["ports"]
        for cidr in graph.expose.source_ranges:
            client = Pod("", ip=cidr.split("/")[0])
            assert ingress_allowed(
                policies(objects), client, found[(graph.name, "frontend")], port["targetPort"]
            )


def test_without_the_default_deny_the_workers_are_still_isolated_by_the_other_policies():
    # Every policy selects with Ingress, so each isolates; the explicit default-deny keeps the
    # prefetch Job and any component without a rule isolated too.
    objects = without(default(), f"{G}-within-graph")
    assert not decide(objects, APP, (G, "decode"), 40123)


@pytest.mark.parametrize("label", [label for label, _ in shipped_configs()])
def test_every_shipped_graph_gets_its_flows(label):
    (cfg,) = [cfg for name, cfg in shipped_configs() if name == label]
    objects = graph_objects(cfg)
    found = pods(objects)
    rules = policies(objects)
    monitoring = cfg.platform.monitoring.enabled
    for (graph, component), pod in found.items():
        own = [p for (g, _), p in found.items() if g == graph]
        assert all(ingress_allowed(rules, peer, pod, 40123) for peer in own), (graph, component)
        assert not ingress_allowed(rules, STRANGER, pod, KV_EVENTS_PORT), (graph, component)
        scraped = {
            "frontend": [FRONTEND_SERVICE_PORT],
            "planner": [PLANNER_METRICS_PORT],
        }.get(component, [WORKER_SYSTEM_PORT])
        template = [
            c
            for dgd in objects
            if dgd["kind"] == "DynamoGraphDeployment"
            for c in dgd["spec"]["components"]
            if c["name"] == component and dgd["metadata"]["name"] == graph
        ][0]
        ports = [
            p["containerPort"]
            for c in template["podTemplate"]["spec"]["containers"]
            for p in c.get("ports") or []
        ]
        for port in {*scraped, *ports}:
            assert ingress_allowed(rules, PROMETHEUS, pod, port) is monitoring, (graph, component, port)
        if component == "frontend":
            assert ingress_allowed(rules, APP, pod, FRONTEND_SERVICE_PORT)


@pytest.mark.parametrize(
    ("ingress", "message"),
    [
        ({"namespaces": ["*", "apps"]}, '"*" already means every namespace'),
        ({"namespaces": ["Apps"]}, "'Apps' is not a namespace name"),
        ({"cidrs": ["0.0.0.0/0"]}, "a /0 range opens the frontend to every address"),
        ({"cidrs": ["10.0.0.1/16"]}, "not a valid IPv4 CIDR"),
    ],
)
def test_frontend_ingress_errors_are_one_line(ingress, message):
    with pytest.raises(ValidationError) as err:
        FrontendIngressConfig(**ingress)
    (error,) = err.value.errors()
    assert message in error["msg"] and "\n" not in error["msg"]
