"""Shared pieces of the config models: strict base class and reusable field types."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Shapes several sections (and the charts) check; one definition each.
ACCOUNT_ID = re.compile(r"^\d{12}$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # a Hugging Face repository: owner/name


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def _dns_label(value: str) -> str:
    if len(value) > 40 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label; use 1-40 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'dynamo-dev')"
        )
    return value


def _ipv4_network(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(
            f"'{value}' is not a valid IPv4 CIDR ({err}); write it as network/prefix, "
            "e.g. 10.0.0.0/16 with no host bits set"
        ) from None
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Ipv4Cidr = Annotated[str, AfterValidator(_ipv4_network)]
