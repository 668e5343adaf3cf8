"""Platform Kubernetes objects: schema-valid, monitors selected by our Prometheus, secrets
synced from Secrets Manager, RWX model cache, idempotent bounded prefetch Job."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import cdk8s
import pytest

from config.names import (
    EBS_STORAGE_CLASS,
    HF_TOKEN_KEY,
    HF_TOKEN_SECRET,
    INFERENCE_NAMESPACE,
    MONITORING_NAMESPACE,
)
from config.platform import MonitoringConfig
from k8s_charts.model_prefetch import SCRIPT, job_name, marker_path, model_prefetch_job
from k8s_charts.platform_charts import build, review_inputs
from k8s_charts.platform_helm_values import kube_prometheus_stack_values
from plan import load_config
from tests.ops_dynamo_support import require_dynamo_venv
from tests.tools.k8s_schema import validate_all

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "config" / "default.yaml"


def render(cfg) -> list[dict]:
    app = cdk8s.App()
    return [obj for chart in build(app, cfg, review_inputs(cfg)) for obj in chart.to_json()]


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


@pytest.fixture(scope="module")
def cfg():
    return load_config(DEFAULT)


@pytest.fixture(scope="module")
def objects(cfg):
    return render(cfg)


def test_every_object_validates_against_its_schema(objects):
    kinds = {o["kind"] for o in objects}
    assert {"ExternalSecret", "ClusterSecretStore", "PodMonitor", "ServiceMonitor"} <= kinds
    assert validate_all(objects) == []


def test_schema_validation_catches_a_bad_monitor(objects):
    bad = dict(by_kind(objects, "PodMonitor")[0])
    bad["spec"] = {**bad["spec"], "podMetricsEndpoints": [{"port": 8000}]}  # port must be a name
    assert validate_all([bad]) != []


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and not selector.get(
        "matchExpressions"
    )


def _namespace_selected(selector: dict, namespace: str) -> bool:
    # The Prometheus Operator treats an empty namespace selector as "all namespaces".
    if selector == {}:
        return True
    return namespace in selector.get("matchNames", []) and not selector.get("matchLabels")


def test_every_monitor_is_selected_by_our_prometheus(objects):
    spec = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["prometheus"]["prometheusSpec"]
    monitors = by_kind(objects, "PodMonitor") + by_kind(objects, "ServiceMonitor")
    # frontend, worker, planner, KVBM, operator pods + the DCGM and Karpenter services; the alert rules
    monitors += by_kind(objects, "PrometheusRule")
    assert len(monitors) == 8
    for monitor in monitors:
        kind = {"PodMonitor": "podMonitor", "ServiceMonitor": "serviceMonitor", "PrometheusRule": "rule"}[
            monitor["kind"]
        ]
        meta = monitor["metadata"]
        assert _matches(spec[f"{kind}Selector"], meta.get("labels", {})), meta["name"]
        assert _namespace_selected(spec[f"{kind}NamespaceSelector"], meta["namespace"]), meta["name"]


def test_selection_check_would_catch_the_seed_bug():
    spec = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["prometheus"]["prometheusSpec"]
    assert not _matches(spec["serviceMonitorSelector"], {"app": "dcgm-exporter"})


def test_dynamo_pod_monitors_use_the_operator_labels_and_ports(objects):
    monitors = {m["metadata"]["name"]: m["spec"] for m in by_kind(objects, "PodMonitor")}
    monitors.pop("dynamo-operator")  # the operator's own pod, tests/test_scrape_coverage.py
    expected = {
        "frontend": (["frontend"], "http"),
        "worker": (["worker", "prefill", "decode"], "system"),
        "planner": (["planner"], "metrics"),
        "kvbm": (["worker", "prefill"], "kvbm-metrics"),
    }
    assert set(monitors) == {f"dynamo-{component}" for component in expected}
    for component, (types, port) in expected.items():
        spec = monitors[f"dynamo-{component}"]
        assert spec["selector"] == {
            "matchLabels": {"nvidia.com/metrics-enabled": "true"},
            "matchExpressions": [
                {"key": "nvidia.com/dynamo-component-type", "operator": "In", "values": types}
            ],
        }
        assert spec["namespaceSelector"] == {"matchNames": [INFERENCE_NAMESPACE]}
        (endpoint,) = spec["podMetricsEndpoints"]
        assert endpoint["port"] == port and endpoint["path"] == "/metrics"
        targets = {r["targetLabel"] for r in endpoint["relabelings"]}
        assert "graph" in targets  # the dashboard's filter


def test_hf_token_external_secret(objects, cfg):
    (secret,) = [o for o in by_kind(objects, "ExternalSecret") if o["metadata"]["name"] == HF_TOKEN_SECRET]
    assert secret["metadata"]["namespace"] == INFERENCE_NAMESPACE
    assert secret["spec"]["target"]["name"] == HF_TOKEN_SECRET
    assert secret["spec"]["data"] == [
        {"secretKey": HF_TOKEN_KEY, "remoteRef": {"key": f"{cfg.cluster.name}/hf-token"}}
    ]
    (store,) = by_kind(objects, "ClusterSecretStore")
    assert secret["spec"]["secretStoreRef"] == {
        "kind": "ClusterSecretStore",
        "name": store["metadata"]["name"],
    }
    assert store["spec"]["provider"]["aws"] == {"service": "SecretsManager", "region": cfg.region}
    assert store["spec"]["conditions"] == [{"namespaces": [INFERENCE_NAMESPACE, MONITORING_NAMESPACE]}]


def _storage_class(objects, provisioner: str) -> dict:
    (found,) = [o for o in by_kind(objects, "StorageClass") if o["provisioner"] == provisioner]
    return found


def test_model_cache_is_rwx_on_efs_access_points(objects):
    storage_class = _storage_class(objects, "efs.csi.aws.com")
    assert storage_class["provisioner"] == "efs.csi.aws.com"
    assert storage_class["parameters"]["provisioningMode"] == "efs-ap"
    assert storage_class["parameters"]["fileSystemId"] == "fs-MODELCACHE"
    assert storage_class["reclaimPolicy"] == "Delete"  # dev config
    (pvc,) = by_kind(objects, "PersistentVolumeClaim")
    assert pvc["metadata"] == {"name": "model-cache", "namespace": INFERENCE_NAMESPACE}
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == storage_class["metadata"]["name"]


def test_retained_environments_keep_the_cache_and_prometheus_volumes(cfg):
    retained = render(cfg.model_copy(update={"removal_policy": "retain"}))
    for provisioner in ("efs.csi.aws.com", "ebs.csi.aws.com"):
        assert _storage_class(retained, provisioner)["reclaimPolicy"] == "Retain"


def test_prometheus_keeps_its_data_on_an_encrypted_gp3_volume(objects):
    storage_class = _storage_class(objects, "ebs.csi.aws.com")
    assert storage_class["metadata"]["name"] == EBS_STORAGE_CLASS
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert storage_class["reclaimPolicy"] == "Delete"  # dev config
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    spec = kube_prometheus_stack_values(MonitoringConfig(), retain_data=False)["prometheus"]["prometheusSpec"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == EBS_STORAGE_CLASS
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    retained = kube_prometheus_stack_values(MonitoringConfig(), retain_data=True)["prometheus"][
        "prometheusSpec"
    ]
    assert retained["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_dashboard_config_maps_are_picked_up_by_the_sidecar(objects):
    config_maps = {c["metadata"]["name"]: c for c in by_kind(objects, "ConfigMap")}
    assert set(config_maps) == {
        "grafana-dashboard-dynamo",
        "grafana-dashboard-dynamo-kvbm",
        "grafana-dashboard-dynamo-operator",
        "grafana-dashboard-dynamo-planner",
        "grafana-dashboard-dynamo-disagg",
        "grafana-dashboard-dynamo-sglang",
        "grafana-dashboard-dynamo-cost",
    }
    for config_map in config_maps.values():
        assert config_map["metadata"]["namespace"] == MONITORING_NAMESPACE
        assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
        ((key, text),) = config_map["data"].items()
        assert key.endswith(".json") and json.loads(text)["uid"]
    assert "dynamo.json" in config_maps["grafana-dashboard-dynamo"]["data"]


def test_monitoring_off_renders_no_monitoring_objects(cfg):
    platform = cfg.platform.model_copy(
        update={"monitoring": MonitoringConfig(enabled=False, dcgm_exporter=False)}
    )
    objects = render(cfg.model_copy(update={"platform": platform}))
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"PodMonitor", "ServiceMonitor", "ConfigMap", "PrometheusRule"}
    assert [o["metadata"]["name"] for o in by_kind(objects, "ExternalSecret")] == [HF_TOKEN_SECRET]
    assert validate_all(objects) == []


# --- model prefetch Job (called by the Inference charts) ---------------------------------


def prefetch_job(**overrides) -> dict:
    chart = cdk8s.Chart(cdk8s.App(), "prefetch")
    args = {
        "graph_name": "r1-8b",
        "model_id": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "image": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.6.1",
        **overrides,
    }
    model_prefetch_job(chart, **args)
    (job,) = chart.to_json()
    return job


def test_prefetch_job_is_bounded_and_uses_the_token_and_cache():
    job = prefetch_job(backoff_limit=2, timeout_minutes=30)
    assert validate_all([job]) == []
    spec = job["spec"]
    assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] == 1800
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": HF_TOKEN_SECRET}}]
    # The model cache, plus emptyDirs where the program writes (read-only root filesystem).
    assert pod["volumes"] == [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}},
        {"emptyDir": {}, "name": "tmp"},
        {"emptyDir": {}, "name": "home"},
    ]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["metadata"]["namespace"] == INFERENCE_NAMESPACE


def test_prefetch_job_names_stay_valid_for_long_graph_names():
    name = job_name("g" * 60, "model")
    assert len(name) <= 63 and name != job_name("g" * 59, "model")


def test_prefetch_job_name_changes_with_what_the_job_does():
    """Jobs are immutable: a changed model or image must be a new Job, not a failed apply."""
    assert job_name("g", "model-a\0image") != job_name("g", "model-b\0image")
    assert job_name("g", "model-a\0image") == job_name("g", "model-a\0image")


def test_prefetch_rejects_a_non_hugging_face_model_id():
    with pytest.raises(ValueError, match="not a Hugging Face repository id"):
        prefetch_job(model_id="deepseek; rm -rf /")


def _run_script(tmp_path: Path, marker_exists: bool) -> subprocess.CompletedProcess:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # python3 stand-in: records that a download was attempted.
    (fake_bin / "python3").write_text(f"#!/bin/sh\ncat >/dev/null\necho called > {tmp_path}/downloaded\n")
    (fake_bin / "python3").chmod(0o755)
    marker = tmp_path / "cache" / marker_path("org/model").lstrip("/")
    if marker_exists:
        marker.parent.mkdir(parents=True)
        marker.write_text("done")
    env = {"PATH": f"{fake_bin}:{os.environ['PATH']}", "MODEL_ID": "org/model", "MARKER": str(marker)}
    return subprocess.run([shutil.which("sh"), "-c", SCRIPT], env=env, capture_output=True, text=True)


def test_prefetch_script_skips_a_complete_model(tmp_path):
    result = _run_script(tmp_path, marker_exists=True)
    assert result.returncode == 0 and "already complete" in result.stdout
    assert not (tmp_path / "downloaded").exists()


def test_prefetch_script_downloads_then_marks_complete(tmp_path):
    result = _run_script(tmp_path, marker_exists=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "downloaded").exists()
    assert (tmp_path / "cache" / marker_path("org/model").lstrip("/")).exists()


def test_prefetch_calls_the_real_huggingface_hub_and_skips_what_no_engine_loads(tmp_path):
    """The script's download call is bound against the pinned huggingface_hub's own
    `snapshot_download` signature, and its ignore patterns go through the hub's own filter."""
    require_dynamo_venv()
    (tmp_path / "sitecustomize.py").write_text(
        "import inspect, json, os\n"
        "import huggingface_hub\n"
        "from huggingface_hub.utils import filter_repo_objects\n"
        "real = huggingface_hub.snapshot_download\n"
        "def fake(*args, **kwargs):\n"
        "    inspect.signature(real).bind(*args, **kwargs)\n"
        "    files = json.loads(os.environ['REPO_FILES'])\n"
        "    kept = list(filter_repo_objects(files, ignore_patterns=kwargs.get('ignore_patterns')))\n"
        "    open(os.environ['KEPT'], 'w').write(json.dumps(kept))\n"
        "    return '/model-cache/x'\n"
        "huggingface_hub.snapshot_download = fake\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {REPO / ".venv-dynamo" / "bin" / "python"} "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    files = [
        "config.json",
        "tokenizer.json",
        "model-00001-of-00191.safetensors",
        "original/consolidated.00.pth",
        "original/params.json",
        "extra/weights.pth",
    ]
    marker = tmp_path / "marker"
    job = prefetch_job()
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    result = subprocess.run(
        [shutil.which("sh"), "-c", SCRIPT],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHONPATH": str(tmp_path),
            "MODEL_ID": "org/model",
            "MARKER": str(marker),
            "IGNORE_PATTERNS": env["IGNORE_PATTERNS"],
            "REPO_FILES": json.dumps(files),
            "KEPT": str(tmp_path / "kept.json"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "kept.json").read_text()) == [
        "config.json",
        "tokenizer.json",
        "model-00001-of-00191.safetensors",
    ]


def test_monitors_give_the_planner_its_dynamo_namespace_label(objects):
    """The Planner 1.6.1 keeps only frontend series whose `dynamo_namespace` label equals its
    DYN_NAMESPACE; the frontend does not label its series, so the monitors copy the operator's
    pod label and keep the workers' own (honorLabels)."""
    require_dynamo_venv()
    done = subprocess.run(
        [
            str(REPO / ".venv-dynamo" / "bin" / "python"),
            "-c",
            "import importlib.util, pathlib; spec = importlib.util.find_spec('dynamo');"
            "print((pathlib.Path(spec.submodule_search_locations[0]) / 'planner/monitoring/traffic_metrics.py').read_text())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    planner_source = done.stdout
    assert "container.metric.dynamo_namespace == self.dynamo_namespace" in planner_source
    graph_monitors = [m for m in by_kind(objects, "PodMonitor") if m["metadata"]["name"] != "dynamo-operator"]
    assert (
        graph_monitors
        and [m["metadata"]["name"] for m in graph_monitors if not _labels_dynamo_namespace(m)] == []
    )
    # Planted: a monitor without the relabelling (what the seed shipped) is caught.
    bare = copy.deepcopy(graph_monitors[0])
    bare["spec"]["podMetricsEndpoints"][0]["relabelings"] = []
    assert not _labels_dynamo_namespace(bare)


def _labels_dynamo_namespace(monitor: dict) -> bool:
    """The operator's nvidia.com/dynamo-namespace pod label becomes `dynamo_namespace`, and the
    workers' own label of that name is kept."""
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    relabel = {
        "sourceLabels": ["__meta_kubernetes_pod_label_nvidia_com_dynamo_namespace"],
        "targetLabel": "dynamo_namespace",
    }
    return endpoint.get("honorLabels") is True and relabel in endpoint.get("relabelings", [])
