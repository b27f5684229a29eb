"""The dated, sourced price table (temporaldb/data/prices.json), for the estimate and the program.

temporaldb/cost.py prices a plan from it; the Pulumi program reads one figure
from it, Aurora storage per GiB-month, to set the cluster volume's alarm at the
size a share of the stack's budget pays for. Nothing here imports Pulumi.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

PRICE_FILE: Final = "temporaldb/data/prices.json"
AURORA: Final = "aurora_postgresql"
REFERENCE_REGION: Final = "us-east-1"
"""The region every price family is recorded for."""


class PricingError(Exception):
    """The price table has no figure for something the stack would create."""


@cache
def _text() -> str:
    return resources.files("temporaldb").joinpath("data/prices.json").read_text(encoding="utf-8")


def load_prices() -> dict[str, Any]:
    """A fresh copy of the whole table."""
    prices: dict[str, Any] = json.loads(_text())
    return prices


def region_table(prices: dict[str, Any], region: str) -> dict[str, Any]:
    if region not in prices["regions"]:
        known = ", ".join(sorted(prices["regions"]))
        raise PricingError(
            f"no prices for region {region!r} in {PRICE_FILE} (dated {prices['retrieved']}; regions: {known}); "
            "add the region's figures from the AWS price pages rather than guess"
        )
    table: dict[str, Any] = prices["regions"][region]
    return table


def storage_key(io_optimized: bool) -> str:
    return "io_optimized" if io_optimized else "standard"


def aurora_storage_gb_month(region: str, io_optimized: bool) -> float:
    """Aurora storage per GiB-month in `region`, for the configuration (Standard or I/O-Optimized)."""
    table = region_table(load_prices(), region)
    return float(table[AURORA]["storage_gb_month"][storage_key(io_optimized)])
