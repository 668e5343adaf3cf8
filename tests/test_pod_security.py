"""Every pod we render, of every shipped config, meets Pod Security "restricted"
(tests/tools/pod_security_standards.py, written from the published standard), EFA workers
included (they add no capability: k8s_charts/pod_security.py), and sits in a namespace that
enforces restricted or names its reason for less."""

from __future__ import annotations

import copy
import functools

import pytest

from config.names import (
    DYNAMO_SYSTEM_NAMESPACE,
    EXTERNAL_SECRETS_NAMESPACE,
    INFERENCE_NAMESPACE,
    MONITORING_NAMESPACE,
)
from config.schema import DeploymentConfig
from k8s_charts.graphs import EFA_RESOURCE
from k8s_charts.pod_security import IMAGE_UID, PSA_PREFIX, PSA_REASON_ANNOTATION, SCRATCH_DIRS
from k8s_charts.registry import render
from tests.tools.configs import shipped_configs
from tests.tools.pod_security_standards import pod_specs, restricted_violations


def shipped() -> tuple[tuple[str, DeploymentConfig], ...]:
    return shipped_configs()


@functools.cache
def rendered(label: str) -> dict[str, list[dict]]:
    (cfg,) = [cfg for name, cfg in shipped() if name == label]
    return render(cfg)


def labels() -> list[str]:
    return [label for label, _ in shipped()]


def is_efa(spec: dict) -> bool:
    return any(EFA_RESOURCE in ((c.get("resources") or {}).get("limits") or {}) for c in spec["containers"])


def placed_pods(label: str) -> list[tuple[str, str, dict]]:
    """(namespace, name, pod spec) of every pod we render."""
    return [
        (obj["metadata"].get("namespace", ""), name, spec)
        for objects in rendered(label).values()
        for obj in objects
        for name, spec in pod_specs([obj])
    ]


def admission_problems(pods: list[tuple[str, str, dict]], namespaces_: dict[str, dict]) -> list[str]:
    """A pod must meet restricted, unless its namespace enforces less and says why."""
    problems = []
    for namespace, name, spec in pods:
        meta = namespaces_.get(namespace)
        if meta is None:
            problems.append(f"{name}: namespace {namespace!r} is not one we create")
            continue
        if meta["labels"][f"{PSA_PREFIX}/enforce"] != "restricted":
            if not (meta.get("annotations") or {}).get(PSA_REASON_ANNOTATION):
                problems.append(
                    f"{name}: namespace {namespace} enforces less than restricted, with no reason"
                )
            continue
        problems += [f"{name}: {v}" for v in restricted_violations(spec)]
    return problems


@pytest.mark.parametrize("label", labels())
def test_every_rendered_pod_meets_restricted_or_sits_in_a_namespace_with_a_reason(label):
    assert admission_problems(placed_pods(label), namespaces(label)) == []


@pytest.mark.parametrize("label", labels())
def test_every_rendered_pod_meets_restricted(label):
    problems = [f"{name}: {v}" for _, name, spec in placed_pods(label) for v in restricted_violations(spec)]
    assert problems == []


@pytest.mark.parametrize("label", labels())
def test_every_pod_runs_as_the_image_user_on_a_read_only_root(label):
    for objects in rendered(label).values():
        for name, spec in pod_specs(objects):
            assert spec["securityContext"]["runAsUser"] == IMAGE_UID, name
            mounts = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
            for container in spec["containers"]:
                assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            # The paths programs write are emptyDirs.
            assert {path for _, path in SCRATCH_DIRS} <= mounts, name


def test_the_shipped_configs_render_pods_of_every_kind_we_make():
    names = {
        name.split("/")[0] + "/" + name.split("/")[-1].split("-")[0]
        for label in labels()
        for objects in rendered(label).values()
        for name, _ in pod_specs(objects)
    }
    for expected in (
        "DynamoGraphDeployment/frontend",
        "DynamoGraphDeployment/planner",
        "DynamoGraphDeployment/decode",
        "Job/model",
    ):
        assert expected in names, names


def test_efa_workers_add_no_capability():
    efa = [(name, spec) for label in labels() for _, name, spec in placed_pods(label) if is_efa(spec)]
    assert efa, "a shipped config has EFA workers; they must be exercised"
    for name, spec in efa:
        (container,) = spec["containers"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, name
        assert restricted_violations(spec) == [], name


def test_the_admission_check_refuses_a_planted_efa_capability_and_an_unexplained_level():
    label = next(label for label in labels() if any(is_efa(spec) for _, _, spec in placed_pods(label)))
    pods = copy.deepcopy(placed_pods(label))
    created = copy.deepcopy(namespaces(label))
    assert admission_problems(pods, created) == []
    namespace, name, spec = next(pod for pod in pods if is_efa(pod[2]))
    spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["IPC_LOCK"]
    assert any(name in line and "adds" in line for line in admission_problems(pods, created))
    # A lower level admits it only with its reason on the namespace.
    created[namespace]["labels"][f"{PSA_PREFIX}/enforce"] = "privileged"
    assert any("no reason" in line for line in admission_problems(pods, created))
    created[namespace]["annotations"] = {PSA_REASON_ANNOTATION: "planted"}
    assert admission_problems(pods, created) == []


PLANTED = {
    "containers": [{"name": "main", "image": "x", "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
}


@pytest.mark.parametrize(
    ("mutation", "control"),
    [
        (lambda s: s["containers"][0]["securityContext"].pop("capabilities"), "must drop ALL"),
        (lambda s: s["securityContext"].pop("seccompProfile"), "Seccomp"),
        (lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}), "Unconfined"),
        (lambda s: s["securityContext"].pop("runAsNonRoot"), "Running as Non-root"),
        (lambda s: s["securityContext"].update(runAsUser=0), "runAsUser is 0"),
        (lambda s: s.update(hostNetwork=True), "Host Namespaces"),
        (lambda s: s.update(hostPID=True), "Host Namespaces"),
        (lambda s: s.update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), "HostPath"),
        (lambda s: s.update(volumes=[{"name": "n", "nfs": {"server": "a", "path": "/"}}]), "Volume Types"),
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "Privileged"),
        (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["IPC_LOCK"]), "adds"),
        (lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "hostPort": 1}]), "Host Ports"),
        (lambda s: s.update(initContainers=[{"name": "i", "image": "x"}]), "initContainers[i]"),
    ],
)
def test_the_checker_refuses_a_planted_violating_pod(mutation, control):
    good = copy.deepcopy(PLANTED)
    good["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = False
    assert restricted_violations(good) == []
    bad = copy.deepcopy(good)
    mutation(bad)
    assert any(control in line for line in restricted_violations(bad)), restricted_violations(bad)


# -- Pod Security Admission labels on the namespaces we create ------------------------------


def namespaces(label: str) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o["metadata"]
        for objects in rendered(label).values()
        for o in objects
        if o["kind"] == "Namespace"
    }


@pytest.mark.parametrize("label", labels())
def test_every_namespace_we_create_has_pod_security_labels(label):
    created = namespaces(label)
    (cfg,) = [cfg for name, cfg in shipped() if name == label]
    # Including those our Helm releases install into (none creates its own namespace:
    # tests/test_platform_stack.py); kube-system is EKS's.
    expected = {INFERENCE_NAMESPACE, DYNAMO_SYSTEM_NAMESPACE, EXTERNAL_SECRETS_NAMESPACE}
    if cfg.platform.monitoring.enabled:
        expected.add(MONITORING_NAMESPACE)
    assert set(created) == expected
    for name, meta in created.items():
        labels_ = meta.get("labels", {})
        assert labels_.get(f"{PSA_PREFIX}/warn") == "restricted", name
        assert labels_.get(f"{PSA_PREFIX}/audit") == "restricted", name
        enforce = labels_.get(f"{PSA_PREFIX}/enforce")
        if enforce != "restricted":
            assert meta.get("annotations", {}).get(PSA_REASON_ANNOTATION), name


@pytest.mark.parametrize("label", labels())
def test_third_party_namespaces_get_the_level_their_charts_allow(label):
    created = namespaces(label)
    level = {name: meta["labels"][f"{PSA_PREFIX}/enforce"] for name, meta in created.items()}
    # External Secrets' chart defaults every pod to restricted's securityContext.
    assert level[EXTERNAL_SECRETS_NAMESPACE] == "restricted"
    # dynamo-platform's bundled NATS sets no securityContext: baseline, never privileged.
    assert level[DYNAMO_SYSTEM_NAMESPACE] == "baseline"
    assert "NATS" in created[DYNAMO_SYSTEM_NAMESPACE]["annotations"][PSA_REASON_ANNOTATION]
    if MONITORING_NAMESPACE in created:  # node-exporter: hostNetwork, hostPID, hostPath
        assert level[MONITORING_NAMESPACE] == "privileged"


@pytest.mark.parametrize("label", labels())
def test_the_inference_namespace_enforces_restricted(label):
    enforce = namespaces(label)[INFERENCE_NAMESPACE]["labels"][f"{PSA_PREFIX}/enforce"]
    assert enforce == "restricted"
