"""Every pod we render, of every shipped config, meets Pod Security "restricted"
(tests/tools/pod_security_standards.py, written from the published standard), but for the
named exceptions below; and every namespace we create carries the level its pods allow."""

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
from k8s_charts.pod_security import EFA_CAPABILITIES, IMAGE_UID, PSA_PREFIX, SCRATCH_DIRS
from k8s_charts.registry import render
from tests.tools.configs import shipped_configs
from tests.tools.pod_security_standards import pod_specs, restricted_violations

# Pods that cannot meet restricted, and why. EFA workers: libfabric pins memory for RDMA,
# so they add IPC_LOCK, which restricted (and baseline) forbid.
EXCEPTIONS = {"efa": f"EFA worker: adds {list(EFA_CAPABILITIES)} for libfabric's memory registration"}


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


def exception(spec: dict) -> str | None:
    return EXCEPTIONS["efa"] if is_efa(spec) else None


def allowed_by_exception(line: str) -> bool:
    """The only violations an exception may have: the EFA capabilities, nothing else."""
    return (
        line.startswith("Capabilities:")
        and " adds " in line
        and all(cap in EFA_CAPABILITIES for cap in line.split(" adds ")[1].strip("[]'").split("', '"))
    )


@pytest.mark.parametrize("label", labels())
def test_every_rendered_pod_meets_restricted_or_is_a_named_exception(label):
    pods = [(name, spec) for objects in rendered(label).values() for name, spec in pod_specs(objects)]
    problems = []
    for name, spec in pods:
        violations = restricted_violations(spec)
        if exception(spec):
            problems += [f"{name}: {v}" for v in violations if not allowed_by_exception(v)]
        else:
            problems += [f"{name}: {v}" for v in violations]
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


def test_efa_workers_are_the_only_exception_and_add_only_ipc_lock():
    efa = [
        (name, spec)
        for label in labels()
        for objects in rendered(label).values()
        for name, spec in pod_specs(objects)
        if exception(spec)
    ]
    assert efa, "a shipped config has EFA workers; the exception must be exercised"
    for name, spec in efa:
        (container,) = spec["containers"]
        assert container["securityContext"]["capabilities"] == {
            "add": list(EFA_CAPABILITIES),
            "drop": ["ALL"],
        }, name


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
            assert meta.get("annotations", {}).get("dynamo-eks/pod-security-reason"), name


@pytest.mark.parametrize("label", labels())
def test_third_party_namespaces_get_the_level_their_charts_allow(label):
    created = namespaces(label)
    level = {name: meta["labels"][f"{PSA_PREFIX}/enforce"] for name, meta in created.items()}
    # External Secrets' chart defaults every pod to restricted's securityContext.
    assert level[EXTERNAL_SECRETS_NAMESPACE] == "restricted"
    # dynamo-platform's bundled NATS sets no securityContext: baseline, never privileged.
    assert level[DYNAMO_SYSTEM_NAMESPACE] == "baseline"
    assert "NATS" in created[DYNAMO_SYSTEM_NAMESPACE]["annotations"]["dynamo-eks/pod-security-reason"]
    if MONITORING_NAMESPACE in created:  # node-exporter: hostNetwork, hostPID, hostPath
        assert level[MONITORING_NAMESPACE] == "privileged"


@pytest.mark.parametrize("label", labels())
def test_the_inference_namespace_enforces_restricted_unless_it_runs_an_exception(label):
    specs = [spec for objects in rendered(label).values() for _, spec in pod_specs(objects)]
    enforce = namespaces(label)[INFERENCE_NAMESPACE]["labels"][f"{PSA_PREFIX}/enforce"]
    needs = any(exception(spec) for spec in specs)
    # IPC_LOCK is outside baseline's capability list too: only privileged admits it.
    assert enforce == ("privileged" if needs else "restricted")
    if not needs:
        assert all(restricted_violations(spec) == [] for spec in specs)
