"""Costs: what a host's instance cost on spot against on demand, and what else it held.

Pure functions price the intervals a host ran (each in one AZ on one placement) with
the AZ's spot price history, every change counted for the time it was in force, and
against the on-demand price (``_pricing``); network resources are shown apart at list
prices (``_list_prices``). The prices come from AWS through the allocation's queries
(``_aws``: boto3, imported lazily). A layer beside ``mapt.targets``: it may import
``mapt.allocation`` and ``mapt.core``; the service and the CLI import it.
"""

from mapt.costs._aws import AwsPrices, PriceSource, price_interval
from mapt.costs._list_prices import (
    LIST_PRICE_REGION,
    NAT_GATEWAY,
    NETWORK_LOAD_BALANCER,
    PUBLIC_IPV4,
    ListPrice,
    held_resources,
    list_priced,
)
from mapt.costs._pricing import (
    Cost,
    Placement,
    PriceChange,
    PriceUnknownError,
    clipped,
    interval_cost,
    microseconds,
    parse_day,
    shown,
    spot_cost,
    window,
)
from mapt.costs._report import CostReport, Interval, cost_report

__all__ = [
    "LIST_PRICE_REGION",
    "NAT_GATEWAY",
    "NETWORK_LOAD_BALANCER",
    "PUBLIC_IPV4",
    "AwsPrices",
    "Cost",
    "CostReport",
    "Interval",
    "ListPrice",
    "Placement",
    "PriceChange",
    "PriceSource",
    "PriceUnknownError",
    "clipped",
    "cost_report",
    "held_resources",
    "interval_cost",
    "list_priced",
    "microseconds",
    "parse_day",
    "price_interval",
    "shown",
    "spot_cost",
    "window",
]
