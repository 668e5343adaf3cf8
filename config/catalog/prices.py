"""EC2 On-Demand prices per region for the GPU catalog, from config/catalog/prices.json.

Each value names its source (with that source's date) in the data file. A region or type
the table lacks returns None: callers (`ops plan`) must then say the region has no price
rather than borrow another region's (On-Demand prices differ by region).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

PRICES_FILE = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class PriceSource:
    key: str
    date: str  # when the source read the AWS price list (YYYY-MM or YYYY-MM-DD)
    title: str
    url: str


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: PriceSource


@functools.cache
def _table() -> dict:
    return json.loads(PRICES_FILE.read_text())


@functools.cache
def _sources() -> dict[str, PriceSource]:
    return {
        key: PriceSource(key, item["date"], item["title"], item["url"])
        for key, item in _table()["sources"].items()
    }


def price(instance: str, region: str) -> Price | None:
    """The On-Demand price of `instance` in `region` with its source, or None if unknown."""
    row = _table()["prices"].get(region, {}).get(instance)
    if row is None:
        return None
    return Price(float(row["usd_per_hour"]), _sources()[row["source"]])


def has_region(region: str) -> bool:
    """Whether the table has any price for `region`."""
    return bool(_table()["prices"].get(region))


def on_demand_usd_per_hour(instance: str, region: str) -> float | None:
    found = price(instance, region)
    return found.usd_per_hour if found else None


def price_date(instance: str, region: str) -> str | None:
    found = price(instance, region)
    return found.source.date if found else None


def regions() -> tuple[str, ...]:
    """Regions with at least one price."""
    return tuple(region for region, rows in _table()["prices"].items() if rows)


# When the table was compiled; each value's own date is price_date().
TABLE_DATE: str = _table()["compiled"]
