"""A graph's frontend behind an internal Network Load Balancer, when its config sets `expose`.

The Dynamo operator makes the frontend's own Service (ClusterIP) and offers no field for its
type, so this is a second Service selecting the same pods. This cluster runs no AWS Load
Balancer Controller: a LoadBalancer Service without `loadBalancerClass` is served by EKS's
cloud-provider-aws service controller, and the annotations are the ones it reads, recorded
from its source at the release of our Kubernetes minor in
tests/data/upstream/cloud-provider-aws-v1.36.1.json
(tests/test_frontend_exposure.py fails on any name we render that is not declared there).

What that controller does with them (pkg/providers/v1/aws.go, same release):
- `aws-load-balancer-type: nlb` + `aws-load-balancer-internal` -> an internal NLB in the
  private subnets, with instance targets on the Service's NodePort;
- `spec.loadBalancerSourceRanges` -> the ingress rules it opens on the nodes' security group
  for that NodePort. Empty would mean 0.0.0.0/0, which config refuses;
- `aws-load-balancer-ssl-cert` + `aws-load-balancer-ssl-ports` -> a TLS listener on those
  ports that ends TLS at the NLB (plain TCP to the pods);
- `aws-load-balancer-target-node-labels` -> only nodes with those labels become targets.
  The frontend tolerates no taint, so it runs on the untainted CPU pool nodes only (system
  and GPU nodes are tainted); registering every GPU node would churn the target group as
  Karpenter scales them, for targets that would never pass a health check.

`externalTrafficPolicy: Local` keeps the client's address on the way to the pod (NLB instance
targets preserve it; kube-proxy then does not SNAT), so the frontend's NetworkPolicy admits
the same source ranges (k8s_charts/network_policies.py) and nothing broader. Its health
checks go to kube-proxy's healthCheckNodePort on the node, not to the pod.
"""

from __future__ import annotations

import cdk8s
from cdk8s_plus_36 import k8s

from config.graphs import GraphConfig
from config.names import INFERENCE_NAMESPACE, NODE_ROLE_LABEL

ANNOTATION_PREFIX = "service.beta.kubernetes.io/"
LB_TYPE = ANNOTATION_PREFIX + "aws-load-balancer-type"
LB_INTERNAL = ANNOTATION_PREFIX + "aws-load-balancer-internal"
LB_SSL_CERT = ANNOTATION_PREFIX + "aws-load-balancer-ssl-cert"
LB_SSL_PORTS = ANNOTATION_PREFIX + "aws-load-balancer-ssl-ports"
LB_TARGET_NODE_LABELS = ANNOTATION_PREFIX + "aws-load-balancer-target-node-labels"
# Where the frontend can run (k8s_charts/karpenter_pools.py labels CPU pool nodes so).
FRONTEND_NODES = f"{NODE_ROLE_LABEL}=cpu"
TLS_PORT = 443


def listener_port(graph: GraphConfig, frontend_port: int) -> int:
    expose = graph.expose
    return TLS_PORT if expose is not None and expose.tls_certificate_arn else frontend_port


def frontend_load_balancer(
    chart: cdk8s.Chart, graph: GraphConfig, *, frontend_port: int, pod_labels: dict[str, str]
) -> k8s.KubeService | None:
    """The Service, or None when the graph is not exposed. `pod_labels` select the frontend's
    pods (the same labels its NetworkPolicy selects)."""
    expose = graph.expose
    if expose is None:
        return None
    annotations = {LB_TYPE: "nlb", LB_INTERNAL: "true", LB_TARGET_NODE_LABELS: FRONTEND_NODES}
    port = listener_port(graph, frontend_port)
    if expose.tls_certificate_arn:
        annotations[LB_SSL_CERT] = expose.tls_certificate_arn
        annotations[LB_SSL_PORTS] = str(port)
    name = graph.frontend_load_balancer_service()
    return k8s.KubeService(
        chart,
        "frontend-load-balancer",
        metadata=k8s.ObjectMeta(
            name=name,
            namespace=INFERENCE_NAMESPACE,
            labels={"app.kubernetes.io/part-of": "dynamo-eks", "dynamo-eks/graph": graph.name},
            annotations=annotations,
        ),
        spec=k8s.ServiceSpec(
            type="LoadBalancer",
            selector=pod_labels,
            external_traffic_policy="Local",
            load_balancer_source_ranges=list(expose.source_ranges),
            ports=[
                k8s.ServicePort(
                    name="https" if expose.tls_certificate_arn else "http",
                    protocol="TCP",
                    port=port,
                    target_port=k8s.IntOrString.from_number(frontend_port),
                )
            ],
        ),
    )
