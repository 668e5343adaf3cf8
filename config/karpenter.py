"""Karpenter capacity: node pools, their limits and node OS.

Switch names follow the seed blueprint (`enable_custom_karpenter_nodepools`,
`use_bottlerocket`, `karpenter_cpu_limits`, `karpenter_memory_limits`) so its users find them.
Every instance family or type is checked against config/catalog/instances.py.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from config.base import DnsLabel, StrictModel
from config.catalog import instances

# Same grammar as the NodePool CRD: Go-style durations, or Never.
_DURATION = re.compile(r"^([0-9]+(s|m|h))+$")
_BUDGET = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")

BASE_POOL_WEIGHT = 50
CUSTOM_POOL_WEIGHT = 100


def _duration_or_never(value: str) -> str:
    if value != "Never" and not _DURATION.match(value):
        raise ValueError(f"'{value}' is not a duration; write e.g. 30s, 10m, 720h or Never")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"'{value}' is not a duration; write e.g. 30s, 10m or 24h")
    return value


def _budget(value: str) -> str:
    if not _BUDGET.match(value):
        raise ValueError(
            f"'{value}' is not a disruption budget; use a node count (e.g. 1) or a percentage (e.g. 10%)"
        )
    return value


DurationOrNever = Annotated[str, AfterValidator(_duration_or_never)]
Duration = Annotated[str, AfterValidator(_duration)]
Budget = Annotated[str, AfterValidator(_budget)]


class PoolLimitsConfig(StrictModel):
    """What one NodePool may run in total; unset: derived so the config's graphs fit."""

    cpu: int | None = Field(default=None, ge=1, description="vCPUs (null: derived).")
    memory_gib: int | None = Field(
        default=None,
        ge=1,
        description="GiB of memory as Karpenter counts it, after its VM overhead (null: derived).",
    )
    gpus: int | None = Field(default=None, ge=1, description="GPUs of a GPU pool (null: derived).")


class CapacityReservationConfig(StrictModel):
    """On-Demand Capacity Reservations or Capacity Blocks (ML) the pool may launch into: by id,
    or by tags (optionally of another account's shared reservations)."""

    id: str | None = Field(
        default=None, pattern=r"^cr-[0-9a-z]+$", description="Reservation id, e.g. cr-0123456789abcdef0."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Select reservations by tags ('*' matches any value)."
    )
    owner_id: str | None = Field(
        default=None, pattern=r"^\d{12}$", description="With tags: the account that owns shared reservations."
    )
    reservation_type: Literal["default", "capacity-block"] | None = Field(
        default=None,
        description="default (ODCR) | capacity-block; set on every entry to keep the pool to that type.",
    )

    @model_validator(mode="after")
    def _one_selector(self) -> CapacityReservationConfig:
        if bool(self.id) == bool(self.tags):
            raise ValueError("a capacity reservation is selected by id or by tags; set exactly one")
        if self.id and self.owner_id:
            raise ValueError("owner_id goes with tags, not with an id; remove owner_id")
        return self


class NodePoolConfig(StrictModel):
    """One Karpenter NodePool and its EC2NodeClass (same name)."""

    name: DnsLabel = Field(description="NodePool and EC2NodeClass name.")
    instance_families: list[str] = Field(
        default_factory=list,
        description="Families, any size (e.g. [g6]); set this or instance_types.",
    )
    instance_types: list[str] = Field(
        default_factory=list, description="Exact sizes (e.g. [g6e.12xlarge]); set this or instance_families."
    )
    capacity_types: list[Literal["on-demand", "spot", "reserved"]] = Field(
        default=["on-demand"], min_length=1, description="Purchase options Karpenter may use."
    )
    efa: bool = Field(
        default=False,
        description="EFA interfaces on every network card; narrows the pool to EFA sizes.",
    )
    zones: list[str] = Field(
        default_factory=list, description="Restrict to these zones (empty: all cluster zones)."
    )
    placement_group: str | None = Field(
        default=None,
        description="Existing EC2 placement group name (cluster strategy: needs one zone).",
    )
    consolidate_after: DurationOrNever = Field(
        default="10m",
        description="Idle time before an empty node goes (CPU pools: also underused nodes).",
    )
    disruption_budget: Budget = Field(
        default="10%", description="Nodes (count or %) Karpenter may disrupt at once."
    )
    expire_after: DurationOrNever = Field(
        default="720h", description="Maximum node lifetime (Never to disable)."
    )
    termination_grace_period: Duration = Field(
        default="24h", description="Longest drain before a node is forcibly terminated."
    )
    capacity_reservations: list[CapacityReservationConfig] = Field(
        default_factory=list,
        max_length=30,
        description="Reservations / Capacity Blocks to launch into (needs capacity_types: reserved).",
    )
    limits: PoolLimitsConfig = Field(
        default_factory=PoolLimitsConfig,
        description="This pool's limits; each unset one is the larger of karpenter_*_limits and "
        "what the graphs placed here need at their maximum replicas.",
    )

    @field_validator("instance_families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        known = (*instances.gpu_families(), *instances.CPU_FAMILIES)
        for name in value:
            if name not in known:
                raise ValueError(
                    f"unknown instance family '{name}'; use one of {', '.join(known)} "
                    "(or add it to config/catalog/instances.py)"
                )
        return value

    @field_validator("instance_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        for name in value:
            family = name.split(".", 1)[0]
            if instances.get_instance(name) is None and family not in instances.CPU_FAMILIES:
                sizes = [t.name for t in instances.types_in_families([family])]
                hint = (
                    f"known sizes of {family}: {', '.join(sizes)}"
                    if sizes
                    else (f"known: {instances.known_types_hint()}")
                )
                raise ValueError(f"unknown instance type '{name}'; {hint}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NodePoolConfig:
        if bool(self.instance_families) == bool(self.instance_types):
            raise ValueError(
                f"pool '{self.name}': set exactly one of instance_families (e.g. [g6]) or "
                "instance_types (e.g. [g6.12xlarge])"
            )
        names = self.instance_families or [n.split(".", 1)[0] for n in self.instance_types]
        cpu = [n for n in names if n in instances.CPU_FAMILIES]
        if cpu and len(cpu) != len(names):
            raise ValueError(f"pool '{self.name}' mixes GPU and CPU instances; put them in separate pools")
        models = {row.gpu_model for row in self.gpu_candidates()}
        if len(models) > 1:
            raise ValueError(
                f"pool '{self.name}' mixes GPU models {', '.join(sorted(models))}; use one "
                "pool per GPU model so its nodes carry one dynamo-eks/gpu-model label"
            )
        if self.efa:
            self._check_efa()
        reserved = "reserved" in self.capacity_types
        if reserved and not self.capacity_reservations:
            raise ValueError(
                f"pool '{self.name}': capacity_types includes reserved but no capacity_reservations "
                "are listed, so Karpenter would never find a reservation to launch into; add "
                "capacity_reservations (id or tags) or remove reserved"
            )
        if self.capacity_reservations and not reserved:
            raise ValueError(
                f"pool '{self.name}': capacity_reservations are listed but capacity_types lacks "
                "reserved; add reserved (first, to use the reservations before paying on-demand)"
            )
        if self.capacity_reservations and not self.is_gpu:
            raise ValueError(f"pool '{self.name}': capacity_reservations are for GPU pools; remove them")
        if self.placement_group and len(self.zones) != 1:
            raise ValueError(
                f"pool '{self.name}': placement_group needs exactly one zone (a cluster "
                "placement group cannot span zones); set zones: [<zone>]"
            )
        return self

    def _check_efa(self) -> None:
        if not self.is_gpu:
            raise ValueError(
                f"pool '{self.name}': efa is true on a CPU pool; EFA pools are for GPU "
                "instances (p4d, p5, p5e, p5en, g5/g6/g6e 8xlarge and up); set efa: false"
            )
        candidates = self.gpu_candidates()
        without = [row.name for row in candidates if not row.efa]
        efa_sizes = [
            row.name for row in instances.types_in_families(sorted({r.family for r in candidates})) if row.efa
        ]
        if self.instance_types and without:
            raise ValueError(
                f"pool '{self.name}': efa is true but {', '.join(without)} has no EFA; use an "
                f"EFA size ({', '.join(efa_sizes) or 'p5.48xlarge'}) or set efa: false"
            )
        if not efa_sizes:
            raise ValueError(
                f"pool '{self.name}': efa is true but no size of "
                f"{', '.join(self.instance_families)} has EFA; set efa: false or use an EFA "
                "family (p4d, p5, p5e, p5en)"
            )
        cards = {row.efa_interfaces for row in self.launchable()}
        if len(cards) > 1:
            raise ValueError(
                f"pool '{self.name}': EFA sizes {', '.join(r.name for r in self.launchable())} "
                "have different EFA interface counts and cannot share one EC2NodeClass; list "
                "instance_types with the same count (e.g. only the 48xlarge size)"
            )

    def gpu_candidates(self) -> list[instances.GpuInstance]:
        """Catalog rows this pool may launch (before EFA narrowing); empty for CPU pools."""
        if self.instance_types:
            return [row for n in self.instance_types if (row := instances.get_instance(n))]
        return instances.types_in_families(self.instance_families)

    def launchable(self) -> list[instances.GpuInstance]:
        rows = self.gpu_candidates()
        return [row for row in rows if row.efa] if self.efa else rows

    @property
    def is_gpu(self) -> bool:
        return bool(self.gpu_candidates())

    @property
    def gpu_label(self) -> str | None:
        rows = self.gpu_candidates()
        return rows[0].gpu_label if rows else None

    @property
    def efa_interfaces(self) -> int:
        return max((row.efa_interfaces for row in self.launchable()), default=0)

    @property
    def reservation_types(self) -> list[str]:
        """Reservation types the pool is restricted to ([] = any): only when every entry says."""
        types = [r.reservation_type for r in self.capacity_reservations]
        if not types or None in types:
            return []
        return sorted({t for t in types if t is not None})

    def largest(self) -> tuple[int, int, int, str]:
        """(GPUs, vCPUs, memory GiB, biggest instance name) of one node, for limit checks."""
        rows = self.launchable()
        if rows:
            gpus = max(rows, key=lambda r: r.gpus)
            vcpu = max(rows, key=lambda r: r.vcpu)
            memory = max(rows, key=lambda r: r.memory_gib)
            return gpus.gpus, vcpu.vcpu, memory.memory_gib, gpus.name
        if self.instance_types:  # CPU sizes the catalog does not list one by one
            return 0, 0, 0, self.instance_types[0]
        families = [instances.CPU_FAMILIES[name] for name in self.instance_families]
        return (
            0,
            max(f.max_vcpu for f in families),
            max(f.max_memory_gib for f in families),
            "/".join(self.instance_families),
        )


# Karpenter subtracts this share of an instance's memory (its VM_MEMORY_OVERHEAD_PERCENT /
# chart value settings.vmMemoryOverheadPercent, 0.075 in 1.14.1) before it compares a node
# against a pool's memory limit; tests/test_karpenter_config.py holds it to the pinned chart.
KARPENTER_VM_MEMORY_OVERHEAD = 0.075


def karpenter_memory_gib(memory_gib: float) -> int:
    """Memory of a node as Karpenter counts it against a pool's limit (GiB, rounded up)."""
    return math.ceil(memory_gib * (1 - KARPENTER_VM_MEMORY_OVERHEAD))


def _limit(
    own: int | None, default: int, pool: NodePoolConfig, key: str, default_field: str
) -> tuple[int, str]:
    """A pool's limit for the one-node check and the field that set it (own or default)."""
    if own is not None:
        return own, f"pool '{pool.name}' limits.{key}"
    return default, default_field


def _default_base_pools() -> list[NodePoolConfig]:
    return [
        NodePoolConfig(
            name="cpu",
            instance_families=["c7i", "m7i"],
            capacity_types=["spot", "on-demand"],
            consolidate_after="1m",
            termination_grace_period="1h",
        ),
        NodePoolConfig(name="gpu-g6", instance_families=["g6"], capacity_types=["spot", "on-demand"]),
        NodePoolConfig(name="gpu-g6e", instance_families=["g6e"], capacity_types=["spot", "on-demand"]),
        NodePoolConfig(name="gpu-p5", instance_types=["p5.48xlarge"], efa=True, consolidate_after="30m"),
    ]


class KarpenterConfig(StrictModel):
    enable_custom_karpenter_nodepools: bool = Field(
        default=False,
        description="Create custom_nodepools (weight 100, preferred over base pools at 50).",
    )
    use_bottlerocket: bool = Field(
        default=False, description="Bottlerocket instead of Amazon Linux 2023 on Karpenter nodes."
    )
    karpenter_cpu_limits: int = Field(
        default=1000, ge=1, description="Default vCPU limit of a pool (raised where its graphs need more)."
    )
    karpenter_memory_limits: int = Field(
        default=4000,
        ge=1,
        description="Default memory limit of a pool, GiB (raised where its graphs need more).",
    )
    karpenter_gpu_limits: int = Field(
        default=32, ge=1, description="Default GPU limit of a GPU pool (raised where its graphs need more)."
    )
    install_nvidia_device_plugin: bool | None = Field(
        default=None,
        description="null: install unless the AMI ships it (Bottlerocket does).",
    )
    cpu_root_volume_gib: int = Field(
        default=100, ge=40, le=16384, description="Root volume of CPU nodes (GiB, gp3, encrypted)."
    )
    # Every GPU type in the catalog has local NVMe, which GPU node classes stripe as RAID0 and
    # Karpenter gives to kubelet and containerd: images (15-25 GB compressed each) and pod
    # scratch live there. The EBS root only holds the OS, logs and agents.
    gpu_root_volume_gib: int = Field(
        default=100,
        ge=40,
        le=16384,
        description="Root (Bottlerocket: data) volume of GPU nodes (GiB); images live on the "
        "instance-store RAID0.",
    )
    base_nodepools: list[NodePoolConfig] = Field(
        default_factory=_default_base_pools,
        description="Always-present pools (weight 50): cpu, gpu-g6, gpu-g6e, gpu-p5.",
    )
    custom_nodepools: list[NodePoolConfig] = Field(
        default_factory=list, description="Extra pools (weight 100); needs the switch above."
    )

    @model_validator(mode="after")
    def _check(self) -> KarpenterConfig:
        if self.use_bottlerocket and self.install_nvidia_device_plugin:
            raise ValueError(
                "install_nvidia_device_plugin is true but Bottlerocket's NVIDIA AMIs already run "
                "the device plugin (two would both advertise the GPUs); remove the setting or "
                "set use_bottlerocket: false"
            )
        if self.custom_nodepools and not self.enable_custom_karpenter_nodepools:
            raise ValueError(
                "custom_nodepools is set but enable_custom_karpenter_nodepools is false; set it "
                "to true to create them or remove custom_nodepools"
            )
        if self.enable_custom_karpenter_nodepools and not self.custom_nodepools:
            raise ValueError(
                "enable_custom_karpenter_nodepools is true but custom_nodepools is empty; "
                "add at least one pool (see config/examples/custom-pools-bottlerocket.yaml)"
            )
        seen: set[str] = set()
        for pool in self.pools():
            if pool.name in seen:
                raise ValueError(f"two node pools are named '{pool.name}'; names must be unique")
            seen.add(pool.name)
            gpus, vcpus, memory, biggest = pool.largest()
            memory = karpenter_memory_gib(memory)
            gpu_limit, gpu_field = _limit(
                pool.limits.gpus, self.karpenter_gpu_limits, pool, "gpus", "karpenter_gpu_limits"
            )
            cpu_limit, cpu_field = _limit(
                pool.limits.cpu, self.karpenter_cpu_limits, pool, "cpu", "karpenter_cpu_limits"
            )
            mem_limit, mem_field = _limit(
                pool.limits.memory_gib,
                self.karpenter_memory_limits,
                pool,
                "memory_gib",
                "karpenter_memory_limits",
            )
            if gpus > gpu_limit:
                raise ValueError(
                    f"{gpu_field} {gpu_limit} is smaller than one {biggest} node ({gpus} GPUs) in "
                    f"pool '{pool.name}'; raise it to at least {gpus} or use smaller instance types"
                )
            if vcpus > cpu_limit:
                raise ValueError(
                    f"{cpu_field} {cpu_limit} is smaller than one node of pool '{pool.name}' "
                    f"({vcpus} vCPUs); raise it to at least {vcpus}"
                )
            if memory > mem_limit:
                raise ValueError(
                    f"{mem_field} {mem_limit} GiB is smaller than one node of pool '{pool.name}' "
                    f"({memory} GiB as Karpenter counts it); raise it to at least {memory}"
                )
        return self

    def pools(self) -> list[NodePoolConfig]:
        custom = self.custom_nodepools if self.enable_custom_karpenter_nodepools else []
        return [*self.base_nodepools, *custom]

    def weight(self, pool: NodePoolConfig) -> int:
        return CUSTOM_POOL_WEIGHT if pool in self.custom_nodepools else BASE_POOL_WEIGHT

    @property
    def has_efa_pool(self) -> bool:
        return any(pool.efa for pool in self.pools())

    @property
    def nvidia_device_plugin(self) -> bool:
        if self.install_nvidia_device_plugin is None:
            return not self.use_bottlerocket
        return self.install_nvidia_device_plugin


# Tag keys Karpenter sets itself; the EC2NodeClass CRD rejects them in spec.tags.
_RESERVED_TAG_KEYS = (
    "eks:eks-cluster-name",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
)


def check_with_deployment(karpenter: KarpenterConfig, zones: list[str], tags: dict[str, str]) -> None:
    """Checks that need other sections (zones from network, tags from the top level)."""
    for pool in karpenter.pools():
        for zone in pool.zones:
            if zone not in zones:
                raise ValueError(
                    f"karpenter: pool '{pool.name}' zone '{zone}' is not in "
                    f"network.availability_zones ({', '.join(zones)}); pick one of those"
                )
    for key in tags:
        if key in _RESERVED_TAG_KEYS or key.startswith("kubernetes.io/cluster"):
            raise ValueError(
                f"tags: '{key}' is set by Karpenter on its nodes and cannot be a deployment "
                "tag; rename or remove it"
            )
