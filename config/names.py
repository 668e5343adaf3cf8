"""Names shared by config, plan, charts, stacks and ops (namespaces, labels, tags, repositories,
stack outputs): one owner per fact. A leaf: it imports nothing of the project, so every
layer may read it."""

from __future__ import annotations

from pathlib import Path

# Images we may build ourselves (issue: image build). Upstream names, so a pull from NGC
# and a pull from our ECR differ only in the registry part.
ECR_IMAGES = (
    "vllm-runtime",
    "sglang-runtime",
    "tensorrtllm-runtime",
    "dynamo-frontend",
    "dynamo-planner",
)


# Frameworks the image build (image_build/) can build -> the runtime image it produces.
BUILD_FRAMEWORKS = {
    "vllm": "vllm-runtime",
    "sglang": "sglang-runtime",
    "trtllm": "tensorrtllm-runtime",
}
# Mutable-tag repository for BuildKit layer cache; release repositories stay immutable.
BUILD_CACHE_IMAGE = "build-cache"


def image_build_project_name(cluster_name: str) -> str:
    return f"{cluster_name}-dynamo-image-build"


def discovery_tag_key() -> str:
    """Tag Karpenter uses to find subnets and security groups for a cluster."""
    return "karpenter.sh/discovery"


def ecr_repository_name(cluster_name: str, image: str) -> str:
    return f"{cluster_name}/{image}"


def stack_id(environment: str, unit: str) -> str:
    return f"{environment}-{unit}"


# Kubernetes namespaces and well-known object names shared by stacks and charts.
KARPENTER_NAMESPACE = "kube-system"
DYNAMO_SYSTEM_NAMESPACE = "dynamo-system"
INFERENCE_NAMESPACE = "dynamo"
MONITORING_NAMESPACE = "monitoring"
EXTERNAL_SECRETS_NAMESPACE = "external-secrets"
HF_TOKEN_SECRET = "hf-token-secret"
HF_TOKEN_KEY = "HF_TOKEN"
MODEL_CACHE_PVC = "model-cache"
GPU_TAINT_KEY = "nvidia.com/gpu"
# Port of the Service the Dynamo operator creates for a graph's frontend (OpenAI API).
FRONTEND_SERVICE_PORT = 8000

# Platform stack: Helm releases, services and secrets that charts and stacks both name.
DYNAMO_PLATFORM_RELEASE = "dynamo-platform"
EXTERNAL_SECRETS_RELEASE = "external-secrets"
EXTERNAL_SECRETS_SERVICE_ACCOUNT = "external-secrets"
CLUSTER_SECRET_STORE = "aws-secrets-manager"
PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_SERVICE = "kube-prometheus-stack-prometheus"  # fullnameOverride + "-prometheus"
PROMETHEUS_PORT = 9090
GRAFANA_SERVICE = "kube-prometheus-stack-grafana"  # release name + "-grafana"
GRAFANA_ADMIN_SECRET = "grafana-admin"
# Kubernetes Secret (synced from Secrets Manager) holding Alertmanager's webhook URL.
ALERT_WEBHOOK_SECRET = "alertmanager-webhook"
ALERT_WEBHOOK_KEY = "url"
DCGM_EXPORTER_RELEASE = "dcgm-exporter"
MODEL_CACHE_STORAGE_CLASS = "efs-model-cache"
# gp3, encrypted, for Prometheus' TSDB (EBS CSI); every volume the driver creates carries
# VOLUME_CLUSTER_TAG_KEY=<cluster name>, which the teardown guard sweeps by.
EBS_STORAGE_CLASS = "gp3-encrypted"
VOLUME_CLUSTER_TAG_KEY = "dynamo-eks/cluster"
MODEL_CACHE_MOUNT_PATH = "/model-cache"
# Workers and the prefetch Job share one Hugging Face cache on the model-cache volume.
HF_HOME = f"{MODEL_CACHE_MOUNT_PATH}/huggingface"


def hf_token_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of the Hugging Face token (value set by the user, never by CDK)."""
    return f"{cluster_name}/hf-token"


def grafana_admin_secret_name(cluster_name: str) -> str:
    return f"{cluster_name}/grafana-admin"


def alert_webhook_secret_name(cluster_name: str) -> str:
    """Secrets Manager name of Alertmanager's webhook URL (value set by the user, never by CDK)."""
    return f"{cluster_name}/alertmanager-webhook"


def prometheus_url() -> str:
    return f"http://{PROMETHEUS_SERVICE}.{MONITORING_NAMESPACE}.svc.cluster.local:{PROMETHEUS_PORT}"


def karpenter_node_role_name(cluster_name: str) -> str:
    """Deterministic, so charts (EC2NodeClass.spec.role) need no CloudFormation token."""
    return f"KarpenterNodeRole-{cluster_name}"


def interruption_queue_name(cluster_name: str) -> str:
    return f"{cluster_name}-karpenter-interruption"


# Karpenter: release, service account (Pod Identity) and the node labels/taints that pools
# set and that device plugins and graphs select on.
KARPENTER_RELEASE = "karpenter"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
NODE_ROLE_LABEL = "dynamo-eks/node-role"  # system | cpu | gpu
GPU_MODEL_LABEL = "dynamo-eks/gpu-model"  # e.g. l4, l40s, h100 (config/catalog/instances.py)
EFA_LABEL = "dynamo-eks/efa"  # "true" on pools whose nodes get EFA interfaces
# The EFS CSI node agent removes this taint once it can mount; pods never land before that.
EFS_STARTUP_TAINT_KEY = "efs.csi.aws.com/agent-not-ready"


# System node group: only pods that tolerate this taint land there; inference runs on
# Karpenter nodes.
CRITICAL_ADDONS_TAINT = "CriticalAddonsOnly"
SYSTEM_NODE_LABEL = ("dynamo-eks/node-role", "system")

# What the image-build CodeBuild project (stacks/image_build.py) and its client
# (image_build/client.py) agree on.
BUILDSPEC = Path(__file__).resolve().parents[1] / "image_build" / "buildspec.yml"
# Managed policies of every node role (system node group and Karpenter's nodes).
NODE_ROLE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)

# Registry stack outputs the client reads to find the project.
OUTPUT_PROJECT = "ImageBuildProjectName"
OUTPUT_LOG_GROUP = "ImageBuildLogGroupName"


def framework_env_key(framework: str) -> str:
    """Suffix of the per-framework project variables (IMAGE_REPOSITORY_<KEY>, CUDA_VERSION_<KEY>)."""
    return framework.upper()


# Log and trace pipelines (platform.logs, platform.tracing).
# Tempo: the release name is also the chart's fullnameOverride, so the StatefulSet and its
# Service are both `tempo` (grafana-community/helm-charts charts/tempo templates/_helpers.tpl
# "tempo.fullname"). Ports are the chart's defaults (tempo.receivers.otlp.protocols.grpc and
# tempo.server.http_listen_port), checked against the vendored values.yaml by
# tests/test_observability_values.py.
TEMPO_RELEASE = "tempo"
TEMPO_OTLP_GRPC_PORT = 4317
TEMPO_HTTP_PORT = 3200
# Grafana datasource uid of Tempo, fixed so links and dashboards can name it.
TEMPO_DATASOURCE_UID = "tempo"

# Fluent Bit runs in kube-system: it is a node agent that must read the host's /var/log
# (hostPath, which Pod Security baseline forbids), like the device plugins there, and it does
# not depend on monitoring being on (so not the monitoring namespace).
FLUENT_BIT_RELEASE = "aws-for-fluent-bit"
FLUENT_BIT_NAMESPACE = "kube-system"
# Fixed name: the Pod Identity association is made for exactly this account.
FLUENT_BIT_SERVICE_ACCOUNT = "aws-for-fluent-bit"


def container_log_group_name(cluster_name: str) -> str:
    """CloudWatch log group of every container's log, beside EKS' /aws/eks/<cluster>/cluster."""
    return f"/aws/eks/{cluster_name}/containers"


def tempo_otlp_grpc_url() -> str:
    return f"http://{TEMPO_RELEASE}.{MONITORING_NAMESPACE}.svc.cluster.local:{TEMPO_OTLP_GRPC_PORT}"


def tempo_query_url() -> str:
    return f"http://{TEMPO_RELEASE}.{MONITORING_NAMESPACE}.svc.cluster.local:{TEMPO_HTTP_PORT}"
