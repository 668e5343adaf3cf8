"""Security context of every pod we render (graph components, prefetch Jobs), and the Pod
Security Admission level of each namespace we create.

What the upstream images allow, from their published build files (Dynamo's Dockerfiles are
rendered from `container/templates/*.Dockerfile` by `container/render.py`; read from the
ai-dynamo/dynamo copies a code-search index stores; the v1.6.1 tag itself could not be
fetched here, so these are the nearest stored commits, not verified to be the tag):

| image (ours = upstream's names) | template @ commit | user | writable |
|---|---|---|---|
| vllm-runtime | container/templates/vllm_runtime.Dockerfile @009d786fecb437b53d07b8abb9022089ca87dd51 | `USER dynamo` | /home/dynamo(/.cache), /opt/dynamo, /workspace |
| sglang-runtime | container/templates/sglang_runtime.Dockerfile @01fba589425c1e51459193bb6220cf8facae7aa8 | `USER dynamo` | same |
| tensorrtllm-runtime | container/templates/trtllm_runtime.Dockerfile @009d786fecb437b53d07b8abb9022089ca87dd51 | `USER dynamo` | same |
| dynamo-frontend | container/templates/frontend.Dockerfile @0618d4020f56d6498022d0195c91810ed1e0b94f | `USER dynamo` | same |
| dynamo-planner | container/templates/planner.Dockerfile @0d99a15916892d6adde0777245cd02c30408d7ca | `USER dynamo` (distroless) | same |

Every template creates the user with `useradd -m -s /bin/bash -g 0 dynamo && [ $(id -u
dynamo) -eq 1000 ]` (group 0 for OpenShift) and sets HOME=/home/dynamo. `USER` names the
user rather than its number, so the kubelet cannot prove `runAsNonRoot` from the image
alone: we set `runAsUser: 1000` / `runAsGroup: 0` explicitly (the image's own identity, so
group-0-writable paths stay writable). None of the images runs as root by design.

Nothing we run needs to write the image's own filesystem: engines write their JIT and
download caches under $HOME (~/.cache: flashinfer, vLLM, Triton's ~/.triton, torch
extensions) and /tmp (torch inductor, NIXL/UCX scratch); Hugging Face goes to HF_HOME on
the model-cache volume. So the root filesystem is read-only and both are `emptyDir`s.
"""

from __future__ import annotations

from cdk8s_plus_36 import k8s

# The `dynamo` user of every upstream image (see the table above).
IMAGE_UID = 1000
IMAGE_GID = 0
IMAGE_HOME = "/home/dynamo"
# Scratch paths the programs write (name, mount path).
SCRATCH_DIRS = (("tmp", "/tmp"), ("home", IMAGE_HOME))

# libfabric registers (pins) memory for RDMA over EFA. The only capability our pods add; Pod
# Security "restricted" (and even "baseline") forbid it, so a namespace with EFA pods cannot
# enforce restricted (see namespace_pod_security).
EFA_CAPABILITIES = ("IPC_LOCK",)

# Pod Security Admission labels (https://kubernetes.io/docs/concepts/security/pod-security-admission/).
PSA_PREFIX = "pod-security.kubernetes.io"
PSA_VERSION = "latest"
# Why a namespace enforces less than restricted (labels cannot hold the sentence).
PSA_REASON_ANNOTATION = "dynamo-eks/pod-security-reason"


def pod_security_context() -> k8s.PodSecurityContext:
    return k8s.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=IMAGE_UID,
        run_as_group=IMAGE_GID,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context(add: tuple[str, ...] = ()) -> k8s.SecurityContext:
    """drop ALL, add back only `add` (named by the caller, with its reason)."""
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.Capabilities(drop=["ALL"], add=list(add) or None),
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def scratch_volumes() -> list[k8s.Volume]:
    return [k8s.Volume(name=name, empty_dir=k8s.EmptyDirVolumeSource()) for name, _ in SCRATCH_DIRS]


def scratch_mounts() -> list[k8s.VolumeMount]:
    return [k8s.VolumeMount(name=name, mount_path=path) for name, path in SCRATCH_DIRS]


def psa_labels(enforce: str, *, reason: str | None = None) -> dict[str, str]:
    """`enforce` at `enforce`; `warn`/`audit` always at restricted, so anything below it is
    reported. A level below restricted must carry its reason (shown in review output)."""
    if enforce != "restricted" and not reason:
        raise ValueError(f"pod security level {enforce!r} below restricted needs a reason")
    labels = {
        f"{PSA_PREFIX}/{mode}": level
        for mode, level in (("enforce", enforce), ("warn", "restricted"), ("audit", "restricted"))
    }
    labels.update({f"{PSA_PREFIX}/{mode}-version": PSA_VERSION for mode in ("enforce", "warn", "audit")})
    return labels
