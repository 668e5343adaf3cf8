"""`ops preflight --config PATH`: will `cdk deploy` work in this account, and will GPUs come?

Checks, per target environment: credentials and account/region, CDK bootstrap, EC2
On-Demand vCPU quotas for G/VT and P instances against what the graphs need and what the
node pools could launch, GPU instance types offered in the configured zones, the Kubernetes
version offered by EKS and each pinned EKS add-on build for it, and (after deploy) that the
Hugging Face token secret has a value.
Prints PASS / WARN / FAIL with the fix for each line; exit code 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Literal

from plan import load_config

Status = Literal["PASS", "WARN", "FAIL"]
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# aws-cdk-lib 2.x templates carry a rule that fails deployment below bootstrap version 6.
MIN_BOOTSTRAP_VERSION = 6
# EC2 vCPU quotas (Service Quotas, service code ec2) by instance-family prefix:
# (Running On-Demand instances, All Spot Instance Requests, family prefixes).
QUOTAS = {
    "G and VT": ("L-DB2E81BA", "L-3819A6DF", ("g", "vt")),
    "P": ("L-417A185B", "L-7212CCBC", ("p",)),
}


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

    session: object
    cache: dict[tuple[str, str], object] = field(default_factory=dict)

    def get(self, service: str, region: str):
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
            lines.append(Line(
                "WARN", f"{prefix}account", f"environment is in account {target.account}; "
                f"these credentials are for {account}, so it was not checked",
                f"run preflight with credentials for {target.account}",
            ))
            continue
        before = len(lines)
        check_bootstrap(account, target.region, clients, lines)
        check_quotas(target, clients, lines)
        check_offerings(target, clients, lines)
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
            lines.append(Line(
                "WARN", "[pipeline] bootstrap", f"tooling account {pipeline.account} was not "
                f"checked (credentials are for {account})",
                f"run preflight with credentials for {pipeline.account}",
            ))
    return lines


def deployment_targets(cfg, config_path: str) -> list[tuple[str, object]]:
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
        lines.append(Line(
            "FAIL", "credentials", f"no usable AWS credentials: {err}",
            "run `aws sso login` / `aws configure`, or export AWS_PROFILE",
        ))
        return None
    account = identity["Account"]
    if cfg.account and cfg.account != account and cfg.pipeline is None:
        lines.append(Line(
            "FAIL", "credentials", f"credentials are for account {account} but the config "
            f"deploys to {cfg.account} ({identity['Arn']})",
            f"use credentials for {cfg.account} or set account: \"{account}\"",
        ))
        return None
    lines.append(Line("PASS", "credentials", f"account {account} as {identity['Arn']}"))
    session_region = getattr(clients.session, "region_name", None)
    if session_region and session_region != cfg.region:
        lines.append(Line(
            "WARN", "region", f"your default region is {session_region}; the config deploys to "
            f"{cfg.region} (cdk uses the config, but aws/kubectl commands you run will not)",
            f"export AWS_REGION={cfg.region}",
        ))
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
            lines.append(Line("FAIL", "bootstrap", f"cannot read {BOOTSTRAP_PARAMETER} in "
                                                   f"{region}: {err}", "allow ssm:GetParameter"))
            return
        lines.append(Line("FAIL", "bootstrap", f"{account}/{region} is not CDK-bootstrapped "
                                               f"({BOOTSTRAP_PARAMETER} missing)", fix))
        return
    version = int(parameter["Parameter"]["Value"])
    if version < MIN_BOOTSTRAP_VERSION:
        lines.append(Line("FAIL", "bootstrap", f"bootstrap version {version} in {region} is "
                                               f"older than {MIN_BOOTSTRAP_VERSION}", fix))
        return
    lines.append(Line("PASS", "bootstrap", f"{account}/{region} bootstrap version {version}"))


def quota_class(instance_type: str) -> str | None:
    family = instance_type.split(".", 1)[0]
    for name, (_, _, prefixes) in QUOTAS.items():
        if any(family.startswith(prefix) for prefix in prefixes):
            return name
    return None


@dataclass
class VcpuDemand:
    graphs: int = 0  # what the configured graphs need, all on-demand
    pools: int = 0  # the most the on-demand-capable GPU pools could launch
    pool_names: list[str] = field(default_factory=list)
    spot_pools: int = 0  # the most the spot-capable GPU pools could launch as spot
    spot_pool_names: list[str] = field(default_factory=list)


def vcpu_demand(cfg) -> dict[str, VcpuDemand]:
    """vCPUs per quota class, from graph plans and node pool limits."""
    from plan.capacity import CapacityError, plan_graph

    demand = {name: VcpuDemand() for name in QUOTAS}
    karpenter = cfg.karpenter
    for pool in karpenter.pools():
        types = pool.launchable()
        name = quota_class(types[0].name) if types else None
        if name is None:
            continue
        by_gpu_limit = max(
            math.ceil(karpenter.karpenter_gpu_limits / t.gpus) * t.vcpu for t in types
        )
        most = min(karpenter.karpenter_cpu_limits, by_gpu_limit)
        if "on-demand" in pool.capacity_types:
            demand[name].pools += most
            demand[name].pool_names.append(pool.name)
        if "spot" in pool.capacity_types:
            demand[name].spot_pools += most
            demand[name].spot_pool_names.append(pool.name)
    for graph in cfg.graphs:
        try:
            plan = plan_graph(cfg, graph)
        except CapacityError:
            continue  # config validation reports misfits; nothing to count here
        for role in plan.roles:
            if role.fit is None or role.node_count is None:
                continue
            name = quota_class(role.fit.instance.name)
            if name:
                demand[name].graphs += role.node_count * role.fit.instance.vcpu
    return demand


def check_quotas(cfg, clients: Clients, lines: list[Line]) -> None:
    quotas = clients.get("service-quotas", cfg.region)
    for name, need in vcpu_demand(cfg).items():
        if need.pools or need.graphs:
            _check_on_demand_quota(cfg, quotas, name, need, lines)
        if need.spot_pools:
            _check_spot_quota(cfg, quotas, name, need, lines)


def _read_quota(quotas, code: str, check: str, lines: list[Line]) -> float | None:
    from botocore.exceptions import ClientError

    try:
        return _quota_value(quotas, code)
    except ClientError as err:
        lines.append(Line("WARN", check, f"cannot read quota {code}: {err}",
                          "allow servicequotas:GetServiceQuota"))
        return None


def _check_on_demand_quota(cfg, quotas, name: str, need: VcpuDemand, lines: list[Line]) -> None:
    code = QUOTAS[name][0]
    check = f"quota {name}"
    value = _read_quota(quotas, code, check, lines)
    if value is None:
        return
    fix = (f"request an increase of 'Running On-Demand {name} instances' ({code}) in "
           f"{cfg.region} to at least {{n}} vCPUs (Service Quotas console)")
    pools = ", ".join(need.pool_names) or "none"
    if value < need.graphs:
        lines.append(Line("FAIL", check, f"{value:.0f} vCPUs < {need.graphs} the graphs need "
                                         "on-demand", fix.format(n=need.graphs)))
    elif value < need.pools:
        lines.append(Line("WARN", check, f"{value:.0f} vCPUs < {need.pools} that pools "
                                         f"{pools} may launch (graphs need {need.graphs})",
                          fix.format(n=need.pools)))
    else:
        lines.append(Line("PASS", check, f"{value:.0f} vCPUs >= {max(need.pools, need.graphs)} "
                                         f"(graphs {need.graphs}, pools {need.pools})"))


def _check_spot_quota(cfg, quotas, name: str, need: VcpuDemand, lines: list[Line]) -> None:
    """Spot is never required (Karpenter falls back to on-demand when spot is refused), so a
    short spot quota only warns: it quietly turns cheap capacity into on-demand capacity."""
    code = QUOTAS[name][1]
    check = f"quota {name} spot"
    value = _read_quota(quotas, code, check, lines)
    if value is None:
        return
    pools = ", ".join(need.spot_pool_names)
    if value < need.spot_pools:
        lines.append(Line(
            "WARN", check,
            f"{value:.0f} vCPUs < {need.spot_pools} that pools {pools} may launch as spot; "
            "Karpenter falls back to on-demand",
            f"request an increase of 'All {name} Spot Instance Requests' ({code}) in "
            f"{cfg.region} to at least {need.spot_pools} vCPUs (Service Quotas console)",
        ))
    else:
        lines.append(Line("PASS", check, f"{value:.0f} vCPUs >= {need.spot_pools} "
                                         f"(spot pools {pools})"))


def _quota_value(quotas, code: str) -> float:
    from botocore.exceptions import ClientError

    try:
        return quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "NoSuchResourceException":
            raise
    # Never changed in this account: the AWS default applies.
    return quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]


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
            lines.append(Line("FAIL", check, f"none of {', '.join(types)} is offered in "
                                             f"{', '.join(zones)}",
                              "use other zones (network.availability_zones) or instance types"))
        elif missing:
            lines.append(Line("WARN", check, f"not offered in {', '.join(zones)}: "
                                             f"{', '.join(missing)} (Karpenter skips them)",
                              "drop them from the pool or add zones that offer them"))
        else:
            plural = "s" if len(types) != 1 else ""
            lines.append(Line("PASS", check, f"{len(types)} type{plural} offered in {', '.join(zones)}"))
    for graph in cfg.graphs:
        for role in graph.worker_roles():
            if role.instance_type and graph.uses_gpus:
                zones = list(cfg.network.availability_zones)
                if not offered_zones(ec2, [role.instance_type], zones).get(role.instance_type):
                    lines.append(Line(
                        "FAIL", f"offerings {graph.name}", f"{role.name}.instance_type "
                        f"{role.instance_type} is not offered in {', '.join(zones)}",
                        "pick an instance type offered there or change the zones",
                    ))


def offered_zones(ec2, types: list[str], zones: list[str]) -> dict[str, set[str]]:
    offered: dict[str, set[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    pages = paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": types},
                 {"Name": "location", "Values": zones}],
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
        lines.append(Line("WARN", "kubernetes", f"cannot list EKS versions: {err}",
                          "allow eks:DescribeClusterVersions"))
        return
    found = [v for v in response.get("clusterVersions", []) if v["clusterVersion"] == version]
    if not found:
        lines.append(Line("FAIL", "kubernetes", f"EKS does not offer Kubernetes {version} in "
                                                f"{cfg.region}",
                          "set cluster.kubernetes_version to a version EKS lists there"))
        return
    status = found[0].get("versionStatus", "")
    end = found[0].get("endOfStandardSupportDate")
    until = f" until {end:%Y-%m-%d}" if hasattr(end, "strftime") else ""
    if status == "STANDARD_SUPPORT":
        lines.append(Line("PASS", "kubernetes", f"{version} in standard support{until}"))
    elif status == "EXTENDED_SUPPORT":
        lines.append(Line("WARN", "kubernetes", f"{version} is in extended support (6x the "
                                                "cluster-hour price)",
                          "move cluster.kubernetes_version to a standard-support version"))
    else:
        lines.append(Line("FAIL", "kubernetes", f"{version} is {status or 'not supported'}",
                          "set cluster.kubernetes_version to a supported version"))


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
            lines.append(Line("WARN", "add-ons", f"cannot list EKS add-on versions: {err}",
                              "allow eks:DescribeAddonVersions"))
            return
        if build not in offered:
            missing.append(name)
            newest = ", ".join(offered[:3]) or "none"
            lines.append(Line(
                "FAIL", f"add-on {name}", f"{build} is not offered for Kubernetes {version} "
                f"in {cfg.region} (newest: {newest})",
                f"set EKS_ADDONS[{version!r}][{name!r}] in config/versions.py to an offered build",
            ))
    if not missing:
        lines.append(Line("PASS", "add-ons", f"all {len(pinned)} pinned builds are offered for "
                                             f"Kubernetes {version}"))


def check_hf_token(cfg, clients: Clients, lines: list[Line]) -> None:
    from botocore.exceptions import ClientError

    from config.names import hf_token_secret_name

    name = hf_token_secret_name(cfg.cluster.name)
    fix = (f"aws secretsmanager put-secret-value --region {cfg.region} --secret-id {name} "
           "--secret-string hf_...")
    secrets = clients.get("secretsmanager", cfg.region)
    try:
        secrets.describe_secret(SecretId=name)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            lines.append(Line("WARN", "hf token", f"cannot read secret {name}: {err}",
                              "allow secretsmanager:DescribeSecret"))
            return
        lines.append(Line("WARN", "hf token", f"secret {name} does not exist yet (the Platform "
                                              "stack creates it)", f"after deploy: {fix}"))
        return
    try:
        value = secrets.get_secret_value(SecretId=name).get("SecretString", "")
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            lines.append(Line("WARN", "hf token", f"cannot read secret {name}: {err}",
                              "allow secretsmanager:GetSecretValue"))
            return
        value = ""
    if not value.strip():
        lines.append(Line("FAIL", "hf token", f"secret {name} has no value; model downloads "
                                              "(prefetch Jobs, workers) will fail", fix))
    elif value.lstrip().startswith("{"):
        lines.append(Line("FAIL", "hf token", f"secret {name} holds JSON; the cluster reads the "
                                              "whole string as the token", fix))
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
