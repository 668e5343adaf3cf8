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

EFA and locked memory (issue 20): EFA workers add no capability, so every pod, EFA or not,
meets restricted and the inference namespace enforces it. libfabric registers (pins) host
memory for RDMA, which the kernel allows up to RLIMIT_MEMLOCK, or beyond it with an
*effective* CAP_IPC_LOCK. Upstream's EKS example (ai-dynamo/dynamo
examples/deployments/EKS/manifests/vllm/v1beta1/disagg.yaml @2ac51ddab1f8ec3715dc4e91b18b4dfbdbd9886f)
adds IPC_LOCK, but for our pods it never was effective:

- They run as uid 1000 with `allowPrivilegeEscalation: false` (no_new_privs). containerd puts
  added capabilities in the bounding, permitted and effective sets of the runtime's process
  (containerd/containerd pkg/oci/spec_opts.go `WithCapabilities`
  @18fcad83054ea3df0b85757f5dd0d2c312cb69b7; older releases also the inheritable set),
  never in the ambient set (Kubernetes has no ambient field: kubernetes/kubernetes#56374 is
  open; containerd/containerd#5668, which would have added them, was closed unmerged). On
  execve a non-root process without file capabilities keeps only ambient capabilities
  (capabilities(7)), so the engine starts with CapEff 0. Checked here with
  `capsh --keep=1 --gid=0 --uid=1000 --caps=cap_ipc_lock+eip -- -c 'grep CapEff /proc/self/status'`:
  CapEff 0000000000000000; only `--addamb=cap_ipc_lock` keeps bit 14.
- So what bounds pinning is the container's RLIMIT_MEMLOCK, set by the node:
  - Bottlerocket (`bottlerocket@v1.67.0`): on a node with an EFA device, schnauzer's
    `oci_defaults` helper sets every container's max-locked-memory soft and hard limits to
    unlimited (unless settings.oci-defaults.resource-limits sets them):
    bottlerocket-os/bottlerocket-core-kit sources/api/schnauzer/src/helpers/mod.rs
    `generate_oci_resource_limits` @a10182f974abd19de803bb7a324b5a0bdeab4ced (PR #141, "EFA
    Support - Automated host configurations"). Without EFA the defaults set only
    max-open-files (bottlerocket-os/bottlerocket
    sources/models/shared-defaults/oci-defaults-containerd-cri-resource-limits.toml
    @7b67f9118151e67ac1e0972ef9d48eb3487c4ce9), and containerd.service sets no LimitMEMLOCK
    (packages/containerd/containerd.service @033ad218fc812df10b2d80a0de5e5467cb0cf176).
  - AL2023 (`al2023@v20261023`): nodeadm's default containerd base runtime spec sets only
    RLIMIT_NOFILE (awslabs/amazon-eks-ami nodeadm/internal/containerd/base-runtime-spec.json
    @81fec2e895854f599974fe4d3d72f61c0a9aaffa), and nothing under templates/al2023 sets
    LimitMEMLOCK for containerd (same commit; its only drop-in,
    containerd.service.d/00-runtime-slice.conf, sets the slice). Containers inherit
    containerd's limit: 8 MiB by default (kernel >= 5.16 and systemd's DefaultLimitMEMLOCK),
    not unlimited. The AL2023 containerd package's own unit file could not be read here.
    Raising it is a node setting (nodeadm `containerd.baseRuntimeSpec` rlimits
    RLIMIT_MEMLOCK), not a pod capability: the IPC_LOCK we used to add never bypassed it.

These are the nearest stored commits, not checked against the pinned AMI releases.
"""

from __future__ import annotations

from cdk8s_plus_36 import k8s

# The `dynamo` user of every upstream image (see the table above).
IMAGE_UID = 1000
IMAGE_GID = 0
IMAGE_HOME = "/home/dynamo"
# Scratch paths the programs write (name, mount path).
SCRATCH_DIRS = (("tmp", "/tmp"), ("home", IMAGE_HOME))

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


def container_security_context() -> k8s.SecurityContext:
    """drop ALL and add nothing back (EFA included: see the module docstring)."""
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.Capabilities(drop=["ALL"]),
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
