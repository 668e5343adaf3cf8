"""The Pod Security Standards' "baseline" and "restricted" policies as a checker of pod specs.

Written from the published rules (https://kubernetes.io/docs/concepts/security/pod-security-standards/,
policy version "latest" as of Kubernetes 1.36): every control of the Baseline table, then the
Restricted table on top. `violations(spec)` returns one line per broken control; [] = admitted.
"""

from __future__ import annotations

from collections.abc import Iterator

# Baseline: capabilities that may be added (the "Capabilities" control's allowed list).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
# Restricted "Volume Types": only these sources.
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
VOLUME_META = frozenset({"name"})


def _containers(spec: dict) -> Iterator[tuple[str, dict]]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            yield f"{kind}[{container.get('name')}]", container


def baseline_violations(spec: dict) -> list[str]:
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("HostProcess: securityContext.windowsOptions.hostProcess must be unset or false")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"Host Namespaces: {field} must be unset or false")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            out.append(f"HostPath Volumes: volume {volume.get('name')} is a hostPath")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"Sysctls: {sysctl.get('name')} is not in the safe set")
    out += _profile_checks("pod securityContext", pod_sc)
    for where, container in _containers(spec):
        sc = container.get("securityContext") or {}
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"HostProcess: {where}")
        if sc.get("privileged"):
            out.append(f"Privileged Containers: {where} is privileged")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            out.append(f"Capabilities: {where} adds {sorted(added - BASELINE_CAPABILITIES)}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"Host Ports: {where} uses hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"/proc Mount Type: {where} uses {sc['procMount']}")
        out += _profile_checks(where, sc)
    return out


def _profile_checks(where: str, sc: dict) -> list[str]:
    out = []
    apparmor = sc.get("appArmorProfile")
    if apparmor and apparmor.get("type") not in APPARMOR_TYPES:
        out.append(f"AppArmor: {where} profile {apparmor.get('type')}")
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        out.append(f"SELinux: {where} options {selinux}")
    if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        out.append(f"Seccomp: {where} is Unconfined")
    return out


def restricted_violations(spec: dict) -> list[str]:
    out = baseline_violations(spec)
    pod_sc = spec.get("securityContext") or {}
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - VOLUME_META
        if kinds - RESTRICTED_VOLUMES:
            out.append(f"Volume Types: volume {volume.get('name')} is {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        out.append("Running as Non-root user: pod runAsUser is 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for where, container in _containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"Privilege Escalation: {where} must set allowPrivilegeEscalation false")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            out.append(f"Running as Non-root: {where} (or the pod) must set runAsNonRoot true")
        if sc.get("runAsUser") == 0:
            out.append(f"Running as Non-root user: {where} runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"Seccomp: {where} (or the pod) must set RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"Capabilities: {where} must drop ALL")
        added = set(caps.get("add") or [])
        if added - RESTRICTED_CAPABILITIES:
            out.append(f"Capabilities: {where} adds {sorted(added - RESTRICTED_CAPABILITIES)}")
    return out


def pod_specs(objects: list[dict]) -> Iterator[tuple[str, dict]]:
    """(kind/name[/component], pod spec) for every pod-bearing object we render: Pods, the
    workload kinds' templates, CronJobs and DynamoGraphDeployment components."""
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        spec = obj.get("spec") or {}
        if kind == "Pod":
            yield f"Pod/{name}", spec
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "PodTemplate"):
            template = obj.get("template") if kind == "PodTemplate" else spec.get("template")
            yield f"{kind}/{name}", (template or {}).get("spec") or {}
        elif kind == "CronJob":
            yield f"CronJob/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "DynamoGraphDeployment":
            for component in spec.get("components") or []:
                yield f"{kind}/{name}/{component.get('name')}", component["podTemplate"]["spec"]
