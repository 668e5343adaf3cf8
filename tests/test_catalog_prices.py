"""config/catalog/prices.json: per-region On-Demand prices, each value with a dated source."""

from __future__ import annotations

import re

from config.catalog import instances, prices
from config.catalog.regions import ZONE_LETTERS


def test_every_catalog_type_has_a_us_west_2_price():
    missing = [
        name for name in instances.INSTANCE_TYPES if prices.on_demand_usd_per_hour(name, "us-west-2") is None
    ]
    assert missing == []


def test_every_value_names_a_dated_source():
    table = prices._table()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.TABLE_DATE)
    for key, source in table["sources"].items():
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", source["date"]), key
        assert source["title"] and source["url"], key
    for region, rows in table["prices"].items():
        assert region in ZONE_LETTERS, region  # only regions the config accepts
        for name, row in rows.items():
            assert name in instances.INSTANCE_TYPES, (region, name)
            assert row["source"] in table["sources"], (region, name)
            assert 0 < row["usd_per_hour"] < 200, (region, name)


def test_unknown_region_or_type_has_no_price():
    assert prices.on_demand_usd_per_hour("g6e.xlarge", "eu-west-1") is None
    assert prices.price_date("g6e.xlarge", "eu-west-1") is None
    assert prices.on_demand_usd_per_hour("g9.xlarge", "us-west-2") is None
    # p5e is not sold On-Demand in us-east-1 (absent from the AWS price list there).
    assert prices.on_demand_usd_per_hour("p5e.48xlarge", "us-east-1") is None


def test_values_and_dates():
    assert prices.on_demand_usd_per_hour("p5.48xlarge", "us-east-1") == 55.04
    assert prices.price_date("p5.48xlarge", "us-east-1") == "2026-07-20"
    assert prices.price("g6e.2xlarge", "us-east-1").source.url.startswith(
        "https://github.com/aws/karpenter-provider-aws/blob/"
    )
    assert prices.price_date("g6e.xlarge", "us-west-2") == "2025-06"
    assert set(prices.regions()) == {"us-east-1", "us-west-2"}
