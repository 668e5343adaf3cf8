"""`ops preflight --config PATH`: will `cdk deploy` work in this account, and will GPUs come?

Checks, per target environment: credentials and account/region, CDK bootstrap, the EC2
vCPU quota of every instance class the deployment uses (Standard, G and VT, P, P5; On-Demand
and Spot) against what the graphs, the system node group and the node pools could launch, the
EC2 Spot service-linked role when a pool allows spot, GPU instance types offered in the
configured zones, the SSM parameters behind the pinned Karpenter AMI aliases, the capacity
reservations the pools name, the Kubernetes version offered by EKS and each pinned EKS add-on
build for it, and (after deploy) that the Hugging Face token secret has a value.
Prints PASS / WARN / FAIL with the fix for each line; exit code 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from plan import load_config

Status = Literal["PASS", "WARN", "FAIL"]
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# aws-cdk-lib 2.x templates carry a rule that fails deployment below bootstrap version 6.
MIN_BOOTSTRAP_VERSION = 6


# -- EC2 vCPU quotas: the one table ----------------------------------------------------------
# Service Quotas codes (service code "ec2"), from the AWS documentation "Amazon EC2 instance
# type quotas" (docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html: its
# On-Demand and Spot tables link each quota's console page, which names the code) and "Spot
# Instance quotas" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html), both
# read 2026-12-03. On-Demand has ONE P quota (L-417A185B, P2 through P5); Spot splits P into
# "All P4, P3 and P2" (L-7212CCBC) and "All P5" (L-C4BD4855). CodeBuild (the image build) runs
# on CodeBuild's own fleet and uses no EC2 quota.


@dataclass(frozen=True)
class Quota:
    code: str
    name: str  # as Service Quotas names it
    label: str  # preflight check name: "quota <label>"


STANDARD = Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", "Standard")
STANDARD_SPOT = Quota(
    "L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", "Standard spot"
)
G_VT = Quota("L-DB2E81BA", "Running On-Demand G and VT instances", "G and VT")
G_VT_SPOT = Quota("L-3819A6DF", "All G and VT Spot Instance Requests", "G and VT spot")
P = Quota("L-417A185B", "Running On-Demand P instances", "P")
P_SPOT = Quota("L-7212CCBC", "All P4, P3 and P2 Spot Instance Requests", "P spot")
P5_SPOT = Quota("L-C4BD4855", "All P5 Spot Instance Requests", "P5 spot")

# (family letters, generations or None for any) -> (On-Demand quota, Spot quota). A family is
# its letters plus generation: "g6e" is letters "g", generation 6; "p5en" is "p", 5; "c7i" is
# "c", 7. Letters match exactly, so inf/dl/trn/hpc/x/f (other quotas) never match a row.
QUOTA_TABLE: tuple[tuple[tuple[str, ...], tuple[int, ...] | None, Quota, Quota], ...] = (
    (("a", "c", "d", "h", "i", "m", "r", "t", "z"), None, STANDARD, STANDARD_SPOT),
    (("g", "vt"), None, G_VT, G_VT_SPOT),
    (("p",), (2, 3, 4), P, P_SPOT),
    (("p",), (5,), P, P5_SPOT),
)
# Check order (and so the order of Service Quotas calls).
QUOTA_ORDER = (STANDARD, STANDARD_SPOT, G_VT, G_VT_SPOT, P, P_SPOT, P5_SPOT)
_FAMILY = re.compile(r"^([a-z]+)(\d+)")


def quotas_for(instance: str) -> tuple[Quota, Quota] | None:
    """(On-Demand, Spot) vCPU quotas of an instance type or family; None if not in the table."""
    match = _FAMILY.match(instance.split(".", 1)[0])
    if not match:
        return None
    letters, generation = match.group(1), int(match.group(2))
    for prefixes, generations, on_demand, spot in QUOTA_TABLE:
        if letters in prefixes and (generations is None or generation in generations):
            return on_demand, spot
    return None


# Karpenter needs this role to launch spot instances; without it EC2 refuses spot and
# Karpenter silently falls back to on-demand.
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
SPOT_ROLE_FIX = "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"

# SSM public parameters Karpenter 1.14.1 reads to resolve an EC2NodeClass alias, from
# aws/karpenter-provider-aws tag v1.14.1 (commit bde00654cd316fddb3dccfba3f5ac07039865429),
# pkg/providers/amifamily/al2023.go (AL2023.resolvePath) and bottlerocket.go
# (DescribeImageQuery). A versioned AL2023 alias keeps its "v" in the name; Bottlerocket drops
# it; "@latest" reads the mutable "recommended"/"latest" parameter. Karpenter only fails when
# no variant resolves, but a missing nvidia (or standard) parameter means GPU (or CPU) nodes
# never launch, so preflight checks each variant the pools need (all catalog types are x86_64).
AL2023_PARAMETER = (
    "/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{arch}/{variant}/"
    "amazon-eks-node-al2023-{arch}-{variant}-{k8s}-{version}/image_id"
)
AL2023_LATEST_PARAMETER = (
    "/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{arch}/{variant}/recommended/image_id"
)
BOTTLEROCKET_PARAMETER = "/aws/service/bottlerocket/aws-k8s-{k8s}{suffix}/{arch}/{version}/image_id"


@dataclass
class Line:
    status: Status
    check: str
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="path to the YAML config")
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")


def run(args: argparse.Namespace) -> int:
    import boto3

    cfg = load_config(args.config)
    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    lines = preflight(cfg, args.config, Clients(session))
    print(format_table(lines))
    failed = sum(line.status == "FAIL" for line in lines)
    warned = sum(line.status == "WARN" for line in lines)
    print(f"\npreflight: {len(lines)} checks, {failed} FAIL, {warned} WARN")
    return 1 if failed else 0


@dataclass
class Clients:
    """boto3 clients per (service, region), created once; tests put stubbed ones in `cache`."""

    session: Any
    cache: dict[tuple[str, str], Any] = field(default_factory=dict)  # boto3 clients are untyped

    def get(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.cache:
            self.cache[key] = self.session.client(service, region_name=region)
        return self.cache[key]


def preflight(cfg, config_path: str, clients: Clients) -> list[Line]:
    lines: list[Line] = []
    account = check_credentials(cfg, clients, lines)
    if account is None:
        return lines
    for label, target in deployment_targets(cfg, config_path):
        prefix = f"[{label}] " if label else ""
        if target.account not in (None, account):
            lines.append(
                Line(
                    "WARN",
                    f"{prefix}account",
                    f"environment is in account {target.account}; "
                    f"these credentials are for {account}, so it was not checked",
                    f"run preflight with credentials for {target.account}",
                )
            )
            continue
        before = len(lines)
        check_bootstrap(account, target.region, clients, lines)
        check_quotas(target, clients, lines)
        check_spot_role(target, clients, lines)
        check_offerings(target, clients, lines)
        check_ami_aliases(target, clients, lines)
        check_capacity_reservations(target, clients, lines)
        check_kubernetes_version(target, clients, lines)
        check_addon_versions(target, clients, lines)
        check_hf_token(target, clients, lines)
        for line in lines[before:]:
            line.check = prefix + line.check
    if cfg.pipeline is not None:
        pipeline = cfg.pipeline
        if pipeline.account == account:
            before = len(lines)
            check_bootstrap(account, pipeline.region, clients, lines)
            for line in lines[before:]:
                line.check = f"[pipeline] {line.check}"
        else:
            lines.append(
                Line(
                    "WARN",
                    "[pipeline] bootstrap",
                    f"tooling account {pipeline.account} was not checked (credentials are for {account})",
                    f"run preflight with credentials for {pipeline.account}",
                )
            )
    return lines


def deployment_targets(cfg, config_path: str) -> list[tuple[str, Any]]:
    """(label, config) per environment: the file itself, or each pipeline environment."""
    if cfg.pipeline is None:
        return [("", cfg)]
    from config.environments import environment_configs

    return [(env.environment, env) for _, env in environment_configs(cfg, config_path)]


# -- checks -------------------------------------------------------------------------------


def check_credentials(cfg, clients: Clients, lines: list[Line]) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = clients.get("sts", cfg.region).get_caller_identity()
    except (BotoCoreError, ClientError) as err:
        lines.append(
            Line(
                "FAIL",
                "credentials",
                f"no usable AWS credentials: {err}",
                "run `aws sso login` / `aws configure`, or export AWS_PROFILE",
            )
        )
        return None
    account = identity["Account"]
    if cfg.account and cfg.account != account and cfg.pipeline is None:
        lines.append(
            Line(
                "FAIL",
                "credentials",
                f"credentials are for account {account} but the config "
                f"deploys to {cfg.account} ({identity['Arn']})",
                f'use credentials for {cfg.account} or set account: "{account}"',
            )
        )
        return None
    lines.append(Line("PASS", "credentials", f"account {account} as {identity['Arn']}"))
    session_region = getattr(clients.session, "region_name", None)
    if session_region and session_region != cfg.region:
        lines.append(
            Line(
                "WARN",
                "region",
                f"your default region is {session_region}; the config deploys to "
                f"{cfg.region} (cdk uses the config, but aws/kubectl commands you run will not)",
                f"export AWS_REGION={cfg.region}",
            )
        )
    else:
        lines.append(Line("PASS", "region", cfg.region))
    return account


def check_bootstrap(account: str, region: str, clients: Clients, lines: list[Line]) -> None:
    from botocore.exceptions import ClientError

    fix = f"npx cdk bootstrap aws://{account}/{region}"
    try:
        parameter = clients.get("ssm", region).get_parameter(Name=BOOTSTRAP_PARAMETER)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ParameterNotFound":
            lines.append(
                Line(
                    "FAIL",
                    "bootstrap",
                    f"cannot read {BOOTSTRAP_PARAMETER} in {region}: {err}",
                    "allow ssm:GetParameter",
                )
            )
            return
        lines.append(
            Line(
                "FAIL",
                "bootstrap",
                f"{account}/{region} is not CDK-bootstrapped ({BOOTSTRAP_PARAMETER} missing)",
                fix,
            )
        )
        return
    version = int(parameter["Parameter"]["Value"])
    if version < MIN_BOOTSTRAP_VERSION:
        lines.append(
            Line(
                "FAIL",
                "bootstrap",
                f"bootstrap version {version} in {region} is older than {MIN_BOOTSTRAP_VERSION}",
                fix,
            )
        )
        return
    lines.append(Line("PASS", "bootstrap", f"{account}/{region} bootstrap version {version}"))


@dataclass
class VcpuDemand:
    """What one vCPU quota must cover."""

    quota: Quota
    graphs: int = 0  # what the configured graphs need, all on-demand
    system: int = 0  # the system node group at max_size (always on-demand)
    system_detail: str = ""
    pools: int = 0  # the most the pools using this quota could launch
    pool_names: list[str] = field(default_factory=list)

    @property
    def required(self) -> int:
        """FAIL below this: the graphs' nodes and the system nodes."""
        return self.graphs + self.system

    @property
    def most(self) -> int:
        """WARN below this: everything the pools (which launch the graphs' nodes too) and the
        system node group may run at once."""
        return max(self.pools, self.graphs) + self.system


def size_vcpus(instance_type: str) -> int | None:
    """vCPUs of a Standard size by EC2's naming (medium 1, large 2, xlarge 4, Nxlarge 4N);
    true for the c/m/r families the system node group and CPU pools use. None for metal."""
    size = instance_type.split(".", 1)[-1]
    if size == "medium":
        return 1
    if size == "large":
        return 2
    match = re.fullmatch(r"(\d*)xlarge", size)
    if match:
        return 4 * int(match.group(1) or 1)
    return None


def _pool_limits(karpenter, pool) -> tuple[int, int]:
    """(vCPU, GPU) limit of one pool. The one place that reads pool limits."""
    cpu = getattr(pool, "cpu_limit", None) or karpenter.karpenter_cpu_limits
    gpu = getattr(pool, "gpu_limit", None) or karpenter.karpenter_gpu_limits
    return cpu, gpu


def pool_vcpus(karpenter, pool) -> dict[tuple[Quota, Quota], int]:
    """The most vCPUs a pool may launch, per (On-Demand, Spot) quota pair of its types."""
    cpu_limit, gpu_limit = _pool_limits(karpenter, pool)
    most: dict[tuple[Quota, Quota], int] = {}
    rows = pool.launchable()
    if rows:
        groups: dict[tuple[Quota, Quota], list] = {}
        for row in rows:
            codes = quotas_for(row.name)
            if codes:
                groups.setdefault(codes, []).append(row)
        for codes, group in groups.items():
            by_gpu = max(math.ceil(gpu_limit / t.gpus) * t.vcpu for t in group)
            most[codes] = min(cpu_limit, by_gpu)
        return most
    if pool.is_gpu:
        return most  # EFA narrowed everything away; config validation reports it
    families = pool.instance_families or [n.split(".", 1)[0] for n in pool.instance_types]
    for family in families:
        codes = quotas_for(family)
        if codes:
            most[codes] = cpu_limit
    return most


def vcpu_demand(cfg) -> dict[Quota, VcpuDemand]:
    """vCPUs per quota (On-Demand and Spot), from graph plans, the system node group and
    node pool limits, in QUOTA_ORDER."""
    from plan.capacity import CapacityError, plan_graph

    demand: dict[Quota, VcpuDemand] = {}

    def entry(quota: Quota) -> VcpuDemand:
        return demand.setdefault(quota, VcpuDemand(quota))

    karpenter = cfg.karpenter
    for pool in karpenter.pools():
        for (on_demand, spot), most in pool_vcpus(karpenter, pool).items():
            # Reserved capacity runs as on-demand instances and counts against that quota.
            if {"on-demand", "reserved"} & set(pool.capacity_types):
                item = entry(on_demand)
                item.pools += most
                item.pool_names.append(pool.name)
            if "spot" in pool.capacity_types:
                item = entry(spot)
                item.pools += most
                item.pool_names.append(pool.name)
    nodes = cfg.cluster.system_nodes
    counted: list[tuple[str, int, tuple[Quota, Quota]]] = []
    for name in nodes.instance_types:
        vcpus, codes = size_vcpus(name), quotas_for(name)
        if vcpus and codes:
            counted.append((name, vcpus, codes))
    if counted:
        name, vcpus, codes = max(counted, key=lambda row: row[1])
        item = entry(codes[0])
        item.system += nodes.max_size * vcpus
        item.system_detail = f"max_size {nodes.max_size} x {vcpus} vCPUs of {name}"
    for graph in cfg.graphs:
        try:
            plan = plan_graph(cfg, graph)
        except CapacityError:
            continue  # config validation reports misfits; nothing to count here
        for role in plan.roles:
            if role.fit is None or role.node_count is None:
                continue
            codes = quotas_for(role.fit.instance.name)
            if codes:
                entry(codes[0]).graphs += role.node_count * role.fit.instance.vcpu
    return {quota: demand[quota] for quota in QUOTA_ORDER if quota in demand}


def check_quotas(cfg, clients: Clients, lines: list[Line]) -> None:
    quotas = clients.get("service-quotas", cfg.region)
    for quota, need in vcpu_demand(cfg).items():
        if quota.label.endswith("spot"):
            _check_spot_quota(cfg, quotas, need, lines)
        elif need.pools or need.required:
            _check_on_demand_quota(cfg, quotas, need, lines)


def _read_quota(quotas, code: str, check: str, lines: list[Line]) -> float | None:
    from botocore.exceptions import ClientError

    try:
        return _quota_value(quotas, code)
    except ClientError as err:
        lines.append(
            Line("WARN", check, f"cannot read quota {code}: {err}", "allow servicequotas:GetServiceQuota")
        )
        return None


def _check_on_demand_quota(cfg, quotas, need: VcpuDemand, lines: list[Line]) -> None:
    quota = need.quota
    check = f"quota {quota.label}"
    value = _read_quota(quotas, quota.code, check, lines)
    if value is None:
        return
    fix = (
        f"request an increase of '{quota.name}' ({quota.code}) in {cfg.region} to at "
        "least {n} vCPUs (Service Quotas console)"
    )
    pools = ", ".join(need.pool_names) or "none"
    if value < need.required:
        if need.system and need.graphs:
            what = f"the graphs ({need.graphs}) and the system node group ({need.system_detail}) need"
        elif need.system:
            what = f"the system node group needs ({need.system_detail})"
        else:
            what = "the graphs need on-demand"
        lines.append(
            Line("FAIL", check, f"{value:.0f} vCPUs < {need.required} {what}", fix.format(n=need.required))
        )
    elif value < need.most:
        extra = f", system nodes {need.system}" if need.system else ""
        lines.append(
            Line(
                "WARN",
                check,
                f"{value:.0f} vCPUs < {need.most} that pools {pools}"
                f"{' and the system node group' if need.system else ''}"
                f" may launch (graphs need {need.graphs}{extra})",
                fix.format(n=need.most),
            )
        )
    else:
        extra = f", system nodes {need.system}" if need.system else ""
        lines.append(
            Line(
                "PASS",
                check,
                f"{value:.0f} vCPUs >= {need.most} (graphs {need.graphs}{extra}, pools {need.pools})",
            )
        )


def _check_spot_quota(cfg, quotas, need: VcpuDemand, lines: list[Line]) -> None:
    """Spot is never required (Karpenter falls back to on-demand when spot is refused), so a
    short spot quota only warns: it quietly turns cheap capacity into on-demand capacity."""
    quota = need.quota
    check = f"quota {quota.label}"
    value = _read_quota(quotas, quota.code, check, lines)
    if value is None:
        return
    pools = ", ".join(need.pool_names)
    if value < need.pools:
        lines.append(
            Line(
                "WARN",
                check,
                f"{value:.0f} vCPUs < {need.pools} that pools {pools} may launch as spot; "
                "Karpenter falls back to on-demand",
                f"request an increase of '{quota.name}' ({quota.code}) in {cfg.region} to at "
                f"least {need.pools} vCPUs (Service Quotas console)",
            )
        )
    else:
        lines.append(Line("PASS", check, f"{value:.0f} vCPUs >= {need.pools} (spot pools {pools})"))


def _quota_value(quotas, code: str) -> float:
    from botocore.exceptions import ClientError

    try:
        return quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchResourceException":
            raise
    # Never changed in this account: the AWS default applies.
    return quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]


def check_spot_role(cfg, clients: Clients, lines: list[Line]) -> None:
    """Pools that allow spot need the EC2 Spot service-linked role; without it EC2 refuses
    every spot launch and Karpenter quietly runs those pools on-demand."""
    from botocore.exceptions import ClientError

    spot_pools = [pool.name for pool in cfg.karpenter.pools() if "spot" in pool.capacity_types]
    if not spot_pools:
        return
    try:
        clients.get("iam", cfg.region).get_role(RoleName=SPOT_ROLE)
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchEntity":
            lines.append(
                Line("WARN", "spot role", f"cannot read role {SPOT_ROLE}: {err}", "allow iam:GetRole")
            )
            return
        lines.append(
            Line(
                "FAIL",
                "spot role",
                f"{SPOT_ROLE} does not exist; pools {', '.join(spot_pools)} "
                "allow spot but EC2 refuses spot launches without it (Karpenter silently falls "
                "back to on-demand)",
                SPOT_ROLE_FIX,
            )
        )
        return
    lines.append(Line("PASS", "spot role", f"{SPOT_ROLE} exists (spot pools {', '.join(spot_pools)})"))


def ami_parameters(alias: str, k8s: str, gpu: bool, cpu: bool) -> list[str]:
    """SSM parameters Karpenter 1.14.1 reads for `alias` (family@version) on x86_64, for the
    variants the pools need: nvidia for GPU pools, standard for CPU pools."""
    family, _, version = alias.partition("@")
    variants = [name for name, wanted in (("standard", cpu), ("nvidia", gpu)) if wanted]
    if family == "al2023":
        template = AL2023_LATEST_PARAMETER if version == "latest" else AL2023_PARAMETER
        return [template.format(k8s=k8s, arch="x86_64", variant=v, version=version) for v in variants]
    if family == "bottlerocket":
        release = version if version == "latest" else version.lstrip("v")
        return [
            BOTTLEROCKET_PARAMETER.format(
                k8s=k8s, suffix="" if v == "standard" else "-nvidia", arch="x86_64", version=release
            )
            for v in variants
        ]
    raise ValueError(f"unknown AMI alias family in {alias!r}")


def check_ami_aliases(cfg, clients: Clients, lines: list[Line]) -> None:
    """The pinned alias must be published for the cluster's Kubernetes version in the region,
    or Karpenter cannot resolve an AMI and no node ever launches."""
    from botocore.exceptions import ClientError

    from config import versions

    karpenter = cfg.karpenter
    pools = karpenter.pools()
    if not pools:
        return
    name = "AMI_ALIAS_BOTTLEROCKET" if karpenter.use_bottlerocket else "AMI_ALIAS_AL2023"
    alias = getattr(versions, name)
    k8s = cfg.cluster.kubernetes_version
    wanted = ami_parameters(
        alias, k8s, gpu=any(p.is_gpu for p in pools), cpu=any(not p.is_gpu for p in pools)
    )
    try:
        found = clients.get("ssm", cfg.region).get_parameters(Names=wanted)
    except ClientError as err:
        lines.append(
            Line("WARN", "ami alias", f"cannot read SSM parameters: {err}", "allow ssm:GetParameters")
        )
        return
    missing = [
        n
        for n in wanted
        if n in set(found.get("InvalidParameters", []))
        or n not in {p["Name"] for p in found.get("Parameters", [])}
    ]
    if missing:
        lines.append(
            Line(
                "FAIL",
                "ami alias",
                f"{alias} is not published for Kubernetes {k8s} in "
                f"{cfg.region} (missing {', '.join(missing)}); Karpenter cannot launch these nodes",
                f"set {name} in config/versions.py to a release published for Kubernetes {k8s}",
            )
        )
        return
    lines.append(
        Line(
            "PASS",
            "ami alias",
            f"{alias} is published for Kubernetes {k8s} "
            f"({len(wanted)} variant{'s' if len(wanted) > 1 else ''})",
        )
    )


def _pool_launches(pool, instance_type: str) -> bool:
    if pool.is_gpu:
        return instance_type in {row.name for row in pool.launchable()}
    if pool.instance_types:
        return instance_type in pool.instance_types
    return instance_type.split(".", 1)[0] in pool.instance_families


def check_capacity_reservations(cfg, clients: Clients, lines: list[Line]) -> None:
    """Every reservation a pool names (by id or tags) must exist, be active (a scheduled
    Capacity Block only warns), hold an instance type the pool launches, in a pool zone."""
    from botocore.exceptions import ClientError

    ec2 = None
    for pool in cfg.karpenter.pools():
        terms = getattr(pool, "capacity_reservations", None) or []
        zones = list(pool.zones or cfg.network.availability_zones)
        for term in terms:
            term_id = getattr(term, "id", None)
            tags = dict(getattr(term, "tags", None) or {})
            wanted_type = getattr(term, "reservation_type", None)
            label = term_id or ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
            check = f"reservation {pool.name}"
            ec2 = ec2 or clients.get("ec2", cfg.region)
            try:
                if term_id:
                    found = ec2.describe_capacity_reservations(CapacityReservationIds=[term_id])
                else:
                    found = ec2.describe_capacity_reservations(
                        Filters=[
                            {"Name": f"tag:{key}", "Values": [value]} for key, value in sorted(tags.items())
                        ]
                    )
            except ClientError as err:
                code = err.response["Error"]["Code"]
                if code.startswith("InvalidCapacityReservationId"):
                    lines.append(
                        Line(
                            "FAIL",
                            check,
                            f"{term_id} not found in {cfg.region} ({code})",
                            "fix the id in the pool's capacity_reservations or "
                            "create the reservation in this account and region",
                        )
                    )
                else:
                    lines.append(
                        Line(
                            "WARN",
                            check,
                            f"cannot describe {label}: {err}",
                            "allow ec2:DescribeCapacityReservations",
                        )
                    )
                continue
            reservations = found.get("CapacityReservations", [])
            if not reservations:
                lines.append(
                    Line(
                        "FAIL",
                        check,
                        f"no capacity reservation matches {label} in {cfg.region}",
                        "fix the pool's capacity_reservations or tag the reservation",
                    )
                )
                continue
            for item in reservations:
                lines.append(_reservation_line(check, pool, item, zones, wanted_type))


def _reservation_line(check: str, pool, item: dict, zones: list[str], wanted_type) -> Line:
    rid = item["CapacityReservationId"]
    kind = item.get("ReservationType", "default")
    state = item.get("State", "")
    itype, zone = item.get("InstanceType", ""), item.get("AvailabilityZone", "")
    if wanted_type and wanted_type != kind:
        return Line(
            "FAIL",
            check,
            f"{rid} is a {kind} reservation, the pool says {wanted_type}",
            f"set reservation_type: {kind} for {rid}",
        )
    if not _pool_launches(pool, itype):
        return Line(
            "FAIL",
            check,
            f"{rid} holds {itype}, which pool {pool.name} does not launch",
            f"add {itype} to the pool's instance types or use a reservation for one it launches",
        )
    if zone not in zones:
        return Line(
            "FAIL",
            check,
            f"{rid} is in {zone}, outside the pool's zones ({', '.join(zones)})",
            f"add {zone} to the pool's zones (and network.availability_zones)",
        )
    if state == "scheduled" and kind == "capacity-block":
        start = item.get("StartDate")
        when = f"{start:%Y-%m-%d %H:%M} UTC" if hasattr(start, "strftime") else "its start"
        return Line(
            "WARN",
            check,
            f"Capacity Block {rid} ({itype} in {zone}) starts {when}; no nodes from it before then",
            "",
        )
    if state != "active":
        return Line(
            "FAIL",
            check,
            f"{rid} ({itype} in {zone}) is {state or 'not active'}",
            "use an active reservation (or wait until it is active)",
        )
    count = item.get("AvailableInstanceCount")
    total = item.get("TotalInstanceCount")
    return Line("PASS", check, f"{rid} active: {itype} in {zone}, {count} of {total} available")


def check_offerings(cfg, clients: Clients, lines: list[Line]) -> None:
    ec2 = clients.get("ec2", cfg.region)
    for pool in cfg.karpenter.pools():
        types = [t.name for t in pool.launchable()]
        if not types:
            continue
        zones = list(pool.zones or cfg.network.availability_zones)
        offered = offered_zones(ec2, types, zones)
        check = f"offerings {pool.name}"
        missing = [name for name in types if not offered.get(name)]
        if len(missing) == len(types):
            lines.append(
                Line(
                    "FAIL",
                    check,
                    f"none of {', '.join(types)} is offered in {', '.join(zones)}",
                    "use other zones (network.availability_zones) or instance types",
                )
            )
        elif missing:
            lines.append(
                Line(
                    "WARN",
                    check,
                    f"not offered in {', '.join(zones)}: {', '.join(missing)} (Karpenter skips them)",
                    "drop them from the pool or add zones that offer them",
                )
            )
        else:
            plural = "s" if len(types) != 1 else ""
            lines.append(Line("PASS", check, f"{len(types)} type{plural} offered in {', '.join(zones)}"))
    for graph in cfg.graphs:
        for role in graph.worker_roles():
            if role.instance_type and graph.uses_gpus:
                zones = list(cfg.network.availability_zones)
                if not offered_zones(ec2, [role.instance_type], zones).get(role.instance_type):
                    lines.append(
                        Line(
                            "FAIL",
                            f"offerings {graph.name}",
                            f"{role.name}.instance_type "
                            f"{role.instance_type} is not offered in {', '.join(zones)}",
                            "pick an instance type offered there or change the zones",
                        )
                    )


def offered_zones(ec2, types: list[str], zones: list[str]) -> dict[str, set[str]]:
    offered: dict[str, set[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    pages = paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": zones}],
    )
    for page in pages:
        for offering in page["InstanceTypeOfferings"]:
            offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
    return offered


def check_kubernetes_version(cfg, clients: Clients, lines: list[Line]) -> None:
    from botocore.exceptions import ClientError

    version = cfg.cluster.kubernetes_version
    try:
        response = clients.get("eks", cfg.region).describe_cluster_versions(
            clusterVersions=[version], includeAll=True
        )
    except ClientError as err:
        lines.append(
            Line(
                "WARN", "kubernetes", f"cannot list EKS versions: {err}", "allow eks:DescribeClusterVersions"
            )
        )
        return
    found = [v for v in response.get("clusterVersions", []) if v["clusterVersion"] == version]
    if not found:
        lines.append(
            Line(
                "FAIL",
                "kubernetes",
                f"EKS does not offer Kubernetes {version} in {cfg.region}",
                "set cluster.kubernetes_version to a version EKS lists there",
            )
        )
        return
    status = found[0].get("versionStatus", "")
    end = found[0].get("endOfStandardSupportDate")
    until = f" until {end:%Y-%m-%d}" if hasattr(end, "strftime") else ""
    if status == "STANDARD_SUPPORT":
        lines.append(Line("PASS", "kubernetes", f"{version} in standard support{until}"))
    elif status == "EXTENDED_SUPPORT":
        lines.append(
            Line(
                "WARN",
                "kubernetes",
                f"{version} is in extended support (6x the cluster-hour price)",
                "move cluster.kubernetes_version to a standard-support version",
            )
        )
    else:
        lines.append(
            Line(
                "FAIL",
                "kubernetes",
                f"{version} is {status or 'not supported'}",
                "set cluster.kubernetes_version to a supported version",
            )
        )


def check_addon_versions(cfg, clients: Clients, lines: list[Line]) -> None:
    """Every add-on build pinned in config/versions.py must be offered for the cluster's
    Kubernetes version, or the Cluster stack fails half an hour into its deploy."""
    from botocore.exceptions import ClientError

    from config.versions import EKS_ADDONS

    version = cfg.cluster.kubernetes_version
    pinned = EKS_ADDONS[version]
    paginator = clients.get("eks", cfg.region).get_paginator("describe_addon_versions")
    missing = []
    for name, build in pinned.items():
        try:
            offered = [
                v["addonVersion"]
                for page in paginator.paginate(addonName=name, kubernetesVersion=version)
                for addon in page.get("addons", [])
                for v in addon.get("addonVersions", [])
            ]
        except ClientError as err:
            lines.append(
                Line(
                    "WARN",
                    "add-ons",
                    f"cannot list EKS add-on versions: {err}",
                    "allow eks:DescribeAddonVersions",
                )
            )
            return
        if build not in offered:
            missing.append(name)
            newest = ", ".join(offered[:3]) or "none"
            lines.append(
                Line(
                    "FAIL",
                    f"add-on {name}",
                    f"{build} is not offered for Kubernetes {version} in {cfg.region} (newest: {newest})",
                    f"set EKS_ADDONS[{version!r}][{name!r}] in config/versions.py to an offered build",
                )
            )
    if not missing:
        lines.append(
            Line("PASS", "add-ons", f"all {len(pinned)} pinned builds are offered for Kubernetes {version}")
        )


def check_hf_token(cfg, clients: Clients, lines: list[Line]) -> None:
    from botocore.exceptions import ClientError

    from config.names import hf_token_secret_name

    name = hf_token_secret_name(cfg.cluster.name)
    fix = (
        f"aws secretsmanager put-secret-value --region {cfg.region} --secret-id {name} --secret-string hf_..."
    )
    secrets = clients.get("secretsmanager", cfg.region)
    try:
        secrets.describe_secret(SecretId=name)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            lines.append(
                Line(
                    "WARN",
                    "hf token",
                    f"cannot read secret {name}: {err}",
                    "allow secretsmanager:DescribeSecret",
                )
            )
            return
        lines.append(
            Line(
                "WARN",
                "hf token",
                f"secret {name} does not exist yet (the Platform stack creates it)",
                f"after deploy: {fix}",
            )
        )
        return
    try:
        value = secrets.get_secret_value(SecretId=name).get("SecretString", "")
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            lines.append(
                Line(
                    "WARN",
                    "hf token",
                    f"cannot read secret {name}: {err}",
                    "allow secretsmanager:GetSecretValue",
                )
            )
            return
        value = ""
    if not value.strip():
        lines.append(
            Line(
                "FAIL",
                "hf token",
                f"secret {name} has no value; model downloads (prefetch Jobs, workers) will fail",
                fix,
            )
        )
    elif value.lstrip().startswith("{"):
        lines.append(
            Line(
                "FAIL",
                "hf token",
                f"secret {name} holds JSON; the cluster reads the whole string as the token",
                fix,
            )
        )
    else:
        lines.append(Line("PASS", "hf token", f"secret {name} has a value"))


# -- output -------------------------------------------------------------------------------


def format_table(lines: list[Line]) -> str:
    width = max((len(line.check) for line in lines), default=5)
    rows = []
    for line in lines:
        rows.append(f"{line.status:<4}  {line.check:<{width}}  {line.detail}")
        if line.fix and line.status != "PASS":
            rows.append(f"{'':<4}  {'':<{width}}  fix: {line.fix}")
    return "\n".join(rows)
