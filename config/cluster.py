"""EKS control plane, access, and the small system node group."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from config import versions
from config.base import INSTANCE_TYPE, DnsLabel, Ipv4Cidr, StrictModel

_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")


class SystemNodesConfig(StrictModel):
    """Managed node group for cluster-critical pods only (tainted CriticalAddonsOnly)."""

    instance_types: list[str] = Field(
        default=["m7i.large", "m6i.large"],
        min_length=1,
        description="On-demand instance types, in order of preference.",
    )
    min_size: int = Field(default=2, ge=1, le=10, description="Minimum system nodes.")
    desired_size: int = Field(default=2, ge=1, le=10, description="System nodes at creation.")
    max_size: int = Field(default=4, ge=1, le=10, description="Maximum system nodes.")
    disk_size_gib: int = Field(default=50, ge=20, le=500, description="Encrypted gp3 root volume size.")

    @field_validator("instance_types")
    @classmethod
    def _types_look_like_ec2(cls, value: list[str]) -> list[str]:
        for item in value:
            if not INSTANCE_TYPE.match(item):
                raise ValueError(f"'{item}' is not an EC2 instance type; use e.g. m7i.large")
        return value

    @model_validator(mode="after")
    def _sizes_ordered(self) -> SystemNodesConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"need min_size <= desired_size <= max_size, got {self.min_size}, "
                f"{self.desired_size}, {self.max_size}; adjust them"
            )
        return self


class EndpointConfig(StrictModel):
    private_access: bool = Field(True, description="Reach the API from inside the VPC.")
    public_access: bool = Field(True, description="Reach the API from the internet (IAM-authenticated).")
    # The public endpoint is IAM-authenticated; the allow-list narrows who may even try.
    public_access_cidrs: list[Ipv4Cidr] = Field(
        default=["0.0.0.0/0"], description="CIDRs allowed to reach the public endpoint; narrow it."
    )

    @model_validator(mode="after")
    def _some_access(self) -> EndpointConfig:
        if not (self.private_access or self.public_access):
            raise ValueError("private_access and public_access are both false; enable at least one")
        if self.public_access and not self.public_access_cidrs:
            raise ValueError(
                "public_access is true but public_access_cidrs is empty; list the CIDRs that "
                "may reach the API (e.g. your VPN egress) or set public_access: false"
            )
        return self


class ClusterConfig(StrictModel):
    name: DnsLabel = Field(description="EKS cluster name (DNS-1123, also prefixes ECR repositories).")
    kubernetes_version: str = Field(
        versions.KUBERNETES_DEFAULT,
        description=f"Kubernetes minor version: {' or '.join(versions.KUBERNETES_SUPPORTED)}.",
    )
    service_ipv4_cidr: Ipv4Cidr = Field(
        "172.20.0.0/16", description="Kubernetes service range; must not overlap the VPC."
    )
    endpoint: EndpointConfig = Field(EndpointConfig(), description="API server endpoint access.")
    admin_principals: list[str] = Field(
        default_factory=list, description="IAM role/user ARNs that get cluster-admin (EKS access entries)."
    )
    system_nodes: SystemNodesConfig = Field(
        SystemNodesConfig(), description="Managed node group for system pods only."
    )
    # The stack owns /aws/eks/<name>/cluster and the kubectl and teardown-guard Lambdas' log
    # groups, so they expire and go with the stack (removal_policy) instead of outliving it.
    log_retention_days: int = Field(
        default=30,
        ge=1,
        le=3653,
        description="Days to keep EKS control-plane logs and the cluster's Lambda logs (rounded up to a CloudWatch period).",
    )

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _supported_version(cls, value: object) -> str:
        if isinstance(value, float):
            # YAML reads 1.30 as the number 1.3; only a quoted version survives.
            raise ValueError(
                f"Kubernetes version {value!r} was read as a number; quote it, e.g. "
                f'kubernetes_version: "{versions.KUBERNETES_DEFAULT}"'
            )
        text = str(value)
        if text not in versions.KUBERNETES_SUPPORTED:
            allowed = ", ".join(versions.KUBERNETES_SUPPORTED)
            raise ValueError(
                f"Kubernetes {text} is not supported; use one of {allowed} "
                "(older versions are in EKS extended support at 6x the hourly price)"
            )
        return text

    @field_validator("admin_principals")
    @classmethod
    def _principals_are_arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _PRINCIPAL_ARN.match(arn):
                raise ValueError(
                    f"'{arn}' is not an IAM role or user ARN; use "
                    "arn:aws:iam::<12-digit account>:role/<name> (roles from SSO work too)"
                )
        return value
