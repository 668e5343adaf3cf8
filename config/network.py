"""VPC layout: CIDR, zones, subnets, NAT and flow logs."""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from config.base import Ipv4Cidr, StrictModel


class NetworkConfig(StrictModel):
    vpc_cidr: Ipv4Cidr = Field("10.0.0.0/16", description="IPv4 range of the VPC, /16 to /24.")
    # Named explicitly so synth needs no AZ lookup (offline and deterministic).
    availability_zones: list[str] = Field(
        min_length=2, max_length=6, description="Zones of the region to use (2-6), e.g. us-west-2a."
    )
    # 1 is cheap (dev); one per zone survives a zone outage (prod).
    nat_gateways: int = Field(
        default=1, ge=1, le=6, description="NAT gateways: 1 for dev, one per zone for prod."
    )
    public_subnet_prefix: int = Field(
        default=24, ge=16, le=28, description="Prefix length of each public subnet (load balancers, NAT)."
    )
    # Pods take VPC IPs (VPC CNI): private subnets must be large.
    private_subnet_prefix: int = Field(
        default=19, ge=16, le=28, description="Prefix length of each private subnet (nodes and pods)."
    )
    flow_log_retention_days: int = Field(
        default=30,
        ge=1,
        le=3653,
        description="Days to keep VPC flow logs (rounded up to a CloudWatch period).",
    )

    @model_validator(mode="after")
    def _check_layout(self) -> NetworkConfig:
        zones = self.availability_zones
        if len(set(zones)) != len(zones):
            raise ValueError(
                f"availability_zones lists a zone twice ({', '.join(zones)}); name each zone once"
            )
        if self.nat_gateways > len(zones):
            raise ValueError(
                f"nat_gateways is {self.nat_gateways} but there are only {len(zones)} zones; "
                f"use at most {len(zones)} (one per zone)"
            )
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        if not 16 <= vpc.prefixlen <= 24:
            raise ValueError(f"vpc_cidr {self.vpc_cidr} has prefix /{vpc.prefixlen}; use /16 to /24")
        for name in ("public_subnet_prefix", "private_subnet_prefix"):
            if getattr(self, name) < vpc.prefixlen:
                raise ValueError(
                    f"{name} /{getattr(self, name)} is larger than the VPC /{vpc.prefixlen}; "
                    f"use a prefix of at least /{vpc.prefixlen}"
                )
        needed = len(zones) * (2 ** (32 - self.public_subnet_prefix) + 2 ** (32 - self.private_subnet_prefix))
        if needed > vpc.num_addresses:
            raise ValueError(
                f"{len(zones)} zones x (/{self.public_subnet_prefix} public + "
                f"/{self.private_subnet_prefix} private) need {needed} addresses but vpc_cidr "
                f"{self.vpc_cidr} has {vpc.num_addresses}; use a larger vpc_cidr or longer prefixes"
            )
        return self
