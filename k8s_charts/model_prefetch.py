"""Per-graph Job that downloads a model into the shared model cache before workers start.

Called by the Inference charts for each graph that wants a prefetch. Idempotent: a marker
written after a complete download makes later runs (re-applies, retries) exit at once, and
huggingface_hub resumes partial downloads instead of starting again.
"""

from __future__ import annotations

import hashlib
import json

import cdk8s
from cdk8s_plus_36 import k8s

from config.base import MODEL_ID
from config.names import (
    HF_HOME,
    HF_TOKEN_SECRET,
    INFERENCE_NAMESPACE,
    MODEL_CACHE_MOUNT_PATH,
    MODEL_CACHE_PVC,
)
from k8s_charts.pod_security import (
    container_security_context,
    pod_security_context,
    scratch_mounts,
    scratch_volumes,
)

MARKER_DIR = f"{MODEL_CACHE_MOUNT_PATH}/.prefetch-complete"

# What no engine loads from a Hugging Face repository: Meta's original consolidated
# checkpoints (`original/`, 810 GB for Llama 3.1 405B) and other PyTorch pickles; engines read
# config, tokenizer and safetensors weights.
IGNORE_PATTERNS = ("original/*", "*.pth")

# Runs in the container's shell; MODEL_ID and MARKER come from the environment so no user
# input is ever interpolated into the script.
SCRIPT = """set -eu
if [ -f "$MARKER" ]; then
  echo "model $MODEL_ID is already complete in the cache; nothing to do"
  exit 0
fi
python3 - <<'PY'
import json, os
from huggingface_hub import snapshot_download
path = snapshot_download(os.environ["MODEL_ID"], ignore_patterns=json.loads(os.environ["IGNORE_PATTERNS"]))
print(f"downloaded {os.environ['MODEL_ID']} to {path}")
PY
mkdir -p "$(dirname "$MARKER")"
date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER"
"""


def job_name(graph_name: str, fingerprint: str) -> str:
    """Job names carry a digest of what the Job does: a Job's pod template is immutable, so
    a new model, image or limit must become a new Job (the manifest's prune label removes
    the old one) rather than a failed `kubectl apply`."""
    digest = hashlib.sha256(f"{graph_name}\0{fingerprint}".encode()).hexdigest()[:8]
    return f"model-prefetch-{graph_name}"[:54] + f"-{digest}"


def marker_path(model_id: str) -> str:
    return f"{MARKER_DIR}/{model_id.replace('/', '--')}"


def model_prefetch_job(
    chart: cdk8s.Chart,
    *,
    graph_name: str,
    model_id: str,
    image: str,
    backoff_limit: int = 3,
    timeout_minutes: int = 120,
) -> k8s.KubeJob:
    """Add the prefetch Job for one graph to `chart`. backoff_limit / timeout_minutes come
    from config platform.model_cache (prefetch_backoff_limit / prefetch_timeout_minutes)."""
    if not MODEL_ID.match(model_id):
        raise ValueError(
            f"model id '{model_id}' is not a Hugging Face repository id; use owner/name, e.g. Qwen/Qwen3-0.6B"
        )
    # The script is part of what the Job does: a new script must become a new Job too.
    name = job_name(
        graph_name, f"{model_id}\0{image}\0{backoff_limit}\0{timeout_minutes}\0{SCRIPT}\0{IGNORE_PATTERNS}"
    )
    labels = {
        "app.kubernetes.io/name": "model-prefetch",
        "app.kubernetes.io/part-of": "dynamo-eks",
        "dynamo-eks/graph": graph_name,
    }
    return k8s.KubeJob(
        chart,
        name,
        metadata=k8s.ObjectMeta(name=name, namespace=INFERENCE_NAMESPACE, labels=labels),
        spec=k8s.JobSpec(
            backoff_limit=backoff_limit,
            active_deadline_seconds=timeout_minutes * 60,
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels=labels),
                spec=k8s.PodSpec(
                    restart_policy="Never",
                    automount_service_account_token=False,
                    security_context=pod_security_context(),
                    containers=[
                        k8s.Container(
                            name="main",
                            image=image,
                            command=["/bin/sh", "-c", SCRIPT],
                            env=[
                                k8s.EnvVar(name="MODEL_ID", value=model_id),
                                k8s.EnvVar(name="MARKER", value=marker_path(model_id)),
                                k8s.EnvVar(name="IGNORE_PATTERNS", value=json.dumps(list(IGNORE_PATTERNS))),
                                k8s.EnvVar(name="HF_HOME", value=HF_HOME),
                                k8s.EnvVar(name="HF_HUB_DISABLE_TELEMETRY", value="1"),
                            ],
                            # HF_TOKEN, synced from Secrets Manager by External Secrets.
                            env_from=[
                                k8s.EnvFromSource(secret_ref=k8s.SecretEnvSource(name=HF_TOKEN_SECRET))
                            ],
                            volume_mounts=[
                                k8s.VolumeMount(name="model-cache", mount_path=MODEL_CACHE_MOUNT_PATH),
                                *scratch_mounts(),
                            ],
                            resources=k8s.ResourceRequirements(
                                requests={
                                    "cpu": k8s.Quantity.from_string("1"),
                                    "memory": k8s.Quantity.from_string("2Gi"),
                                },
                                limits={"memory": k8s.Quantity.from_string("8Gi")},
                            ),
                            # The runtime image's `dynamo` user (k8s_charts/pod_security.py).
                            security_context=container_security_context(),
                        )
                    ],
                    volumes=[
                        k8s.Volume(
                            name="model-cache",
                            persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
                                claim_name=MODEL_CACHE_PVC
                            ),
                        ),
                        *scratch_volumes(),
                    ],
                ),
            ),
        ),
    )
