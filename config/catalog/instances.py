"""EC2 GPU instance types: one entry per TYPE, the single source of instance facts.

Shared by the Karpenter pools (config/karpenter.py) and the capacity planner
(plan/capacity.py): add types or fields here rather than keeping a second table elsewhere.
Entries are per instance type (not per family) because GPU count, vCPU, RAM, EFA and price
differ within a family.

Facts are from the AWS "Accelerated computing" instance pages, except GPU memory, which is
what the GPU itself reports (nvidia-smi's memory.total, what engines size their KV cache
from): a "48 GiB" L40S reports 46,068 MiB, so a capacity check on the marketing number would
promise ~4% more KV cache than exists, and more at high utilisation. Prices are Linux on-demand USD/hour in us-west-2 from the AWS public price
list as of PRICE_DATE (after the June 2025 P4/P5 price reduction); they are only used for
`ops plan` estimates — refresh them with `aws pricing get-products` when they matter.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_REGION = "us-west-2"
PRICE_DATE = "2025-06"


@dataclass(frozen=True)
class GpuInstance:
    name: str
    gpus: int
    gpu_model: str
    listed_gpu_memory_gib: int  # per GPU, as AWS lists it (for people)
    vcpu: int
    memory_gib: int
    # EFA network interfaces the type supports (0 = no EFA); pods request at most this many.
    efa_interfaces: int
    on_demand_usd_per_hour: float

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def efa(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def gpu_memory_mib(self) -> int:
        """Per GPU, as the GPU reports it (nvidia-smi memory.total)."""
        return GPU_MEMORY_MIB[self.gpu_model]

    @property
    def gpu_memory_gib(self) -> float:
        return self.gpu_memory_mib / 1024

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib

    @property
    def gpu_label(self) -> str:
        """Node label value for the GPU model (dynamo-eks/gpu-model), e.g. "l40s"."""
        return self.gpu_model.lower()

    @property
    def instance_store_gb(self) -> int:
        """Local NVMe; Karpenter stripes it as RAID0 for images and ephemeral storage."""
        return INSTANCE_STORE_GB[self.name]


# memory.total per GPU model as nvidia-smi reports it on these instances (MiB), from
# published nvidia-smi output of each model (the marketing size in the comment).
GPU_MEMORY_MIB: dict[str, int] = {
    "A10G": 23028,  # 24 GiB
    "L4": 23034,  # 24 GiB
    "L40S": 46068,  # 48 GiB
    "A100": 40537,  # A100-SXM4-40GB
    "A100-80GB": 81920,  # A100-SXM4-80GB
    "H100": 81559,  # H100 80GB HBM3
    "H200": 143771,  # H200 141 GB
}


def _t(name, gpus, gpu_model, gpu_gib, vcpu, mem, efa, usd) -> GpuInstance:
    return GpuInstance(name, gpus, gpu_model, gpu_gib, vcpu, mem, efa, usd)


_TYPES = [
    # g5: NVIDIA A10G 24 GiB
    _t("g5.xlarge", 1, "A10G", 24, 4, 16, 0, 1.006),
    _t("g5.2xlarge", 1, "A10G", 24, 8, 32, 0, 1.212),
    _t("g5.4xlarge", 1, "A10G", 24, 16, 64, 0, 1.624),
    _t("g5.8xlarge", 1, "A10G", 24, 32, 128, 1, 2.448),
    _t("g5.12xlarge", 4, "A10G", 24, 48, 192, 1, 5.672),
    _t("g5.16xlarge", 1, "A10G", 24, 64, 256, 1, 4.096),
    _t("g5.24xlarge", 4, "A10G", 24, 96, 384, 1, 8.144),
    _t("g5.48xlarge", 8, "A10G", 24, 192, 768, 1, 16.288),
    # g6: NVIDIA L4 24 GiB
    _t("g6.xlarge", 1, "L4", 24, 4, 16, 0, 0.8048),
    _t("g6.2xlarge", 1, "L4", 24, 8, 32, 0, 0.9776),
    _t("g6.4xlarge", 1, "L4", 24, 16, 64, 0, 1.3232),
    _t("g6.8xlarge", 1, "L4", 24, 32, 128, 1, 2.0144),
    _t("g6.12xlarge", 4, "L4", 24, 48, 192, 1, 4.6016),
    _t("g6.16xlarge", 1, "L4", 24, 64, 256, 1, 3.3968),
    _t("g6.24xlarge", 4, "L4", 24, 96, 384, 1, 6.6752),
    _t("g6.48xlarge", 8, "L4", 24, 192, 768, 1, 13.3504),
    # g6e: NVIDIA L40S 48 GiB
    _t("g6e.xlarge", 1, "L40S", 48, 4, 32, 0, 1.861),
    _t("g6e.2xlarge", 1, "L40S", 48, 8, 64, 0, 2.242),
    _t("g6e.4xlarge", 1, "L40S", 48, 16, 128, 0, 3.004),
    _t("g6e.8xlarge", 1, "L40S", 48, 32, 256, 1, 4.529),
    _t("g6e.12xlarge", 4, "L40S", 48, 48, 384, 1, 10.493),
    _t("g6e.16xlarge", 1, "L40S", 48, 64, 512, 1, 7.577),
    _t("g6e.24xlarge", 4, "L40S", 48, 96, 768, 2, 15.066),
    _t("g6e.48xlarge", 8, "L40S", 48, 192, 1536, 4, 30.131),
    # p4d/p4de: NVIDIA A100 40/80 GiB
    _t("p4d.24xlarge", 8, "A100", 40, 96, 1152, 4, 21.958),
    _t("p4de.24xlarge", 8, "A100-80GB", 80, 96, 1152, 4, 27.447),
    # p5/p5e/p5en: NVIDIA H100 80 GiB / H200 141 GiB
    _t("p5.4xlarge", 1, "H100", 80, 16, 256, 0, 6.880),
    _t("p5.48xlarge", 8, "H100", 80, 192, 2048, 32, 55.040),
    _t("p5e.48xlarge", 8, "H200", 141, 192, 2048, 32, 60.544),
    _t("p5en.48xlarge", 8, "H200", 141, 192, 2048, 16, 63.296),
]

INSTANCE_TYPES: dict[str, GpuInstance] = {item.name: item for item in _TYPES}

# Local NVMe instance store per type (GB, total of all disks).
INSTANCE_STORE_GB: dict[str, int] = {
    "g5.xlarge": 250,
    "g5.2xlarge": 450,
    "g5.4xlarge": 600,
    "g5.8xlarge": 900,
    "g5.12xlarge": 3800,
    "g5.16xlarge": 1900,
    "g5.24xlarge": 3800,
    "g5.48xlarge": 7600,
    "g6.xlarge": 250,
    "g6.2xlarge": 450,
    "g6.4xlarge": 600,
    "g6.8xlarge": 900,
    "g6.12xlarge": 3760,
    "g6.16xlarge": 1880,
    "g6.24xlarge": 3760,
    "g6.48xlarge": 7520,
    "g6e.xlarge": 250,
    "g6e.2xlarge": 450,
    "g6e.4xlarge": 600,
    "g6e.8xlarge": 900,
    "g6e.12xlarge": 3800,
    "g6e.16xlarge": 1900,
    "g6e.24xlarge": 3800,
    "g6e.48xlarge": 7600,
    "p4d.24xlarge": 8000,
    "p4de.24xlarge": 8000,
    "p5.4xlarge": 3840,
    "p5.48xlarge": 30720,
    "p5e.48xlarge": 30720,
    "p5en.48xlarge": 30720,
}


@dataclass(frozen=True)
class CpuFamily:
    """A general-purpose family a CPU pool may use at any size Karpenter picks."""

    name: str
    max_vcpu: int  # of the largest non-metal size
    max_memory_gib: int
    efa_sizes: tuple[str, ...]


CPU_FAMILIES: dict[str, CpuFamily] = {
    "c7i": CpuFamily("c7i", 192, 384, ("c7i.48xlarge",)),
    "m7i": CpuFamily("m7i", 192, 768, ("m7i.48xlarge",)),
    "r7i": CpuFamily("r7i", 192, 1536, ("r7i.48xlarge",)),
    "c6i": CpuFamily("c6i", 128, 256, ("c6i.32xlarge",)),
    "m6i": CpuFamily("m6i", 128, 512, ("m6i.32xlarge",)),
}


def gpu_families() -> tuple[str, ...]:
    return tuple(dict.fromkeys(item.family for item in _TYPES))


def get_instance(name: str) -> GpuInstance | None:
    return INSTANCE_TYPES.get(name)


def types_in_families(families: list[str] | tuple[str, ...]) -> list[GpuInstance]:
    wanted = set(families)
    return [item for item in _TYPES if item.family in wanted]


def known_types_hint(limit: int = 8) -> str:
    """A short, readable list for error messages."""
    names = sorted(INSTANCE_TYPES, key=lambda n: INSTANCE_TYPES[n].on_demand_usd_per_hour)
    return ", ".join(names[:limit]) + ", ... (see config/catalog/instances.py)"
