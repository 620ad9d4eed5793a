"""Allocation: where, and on what, a machine runs.

It owns the choice of region, availability zone, spot price and instance types for a
compute request: pure selection and ranking functions, the read-only AWS queries that
feed them (boto3, imported lazily), and the ``spotOption-<project>`` stack that keeps a
spot choice stable across re-runs. It may import ``mapt.stacks`` and ``mapt.core``,
never ``mapt.targets`` or ``mapt.cli``; it prints nothing.
"""

from mapt.allocation._allocation import (
    allocation,
    architecture_of,
    fail_over,
    instance_types_for,
    keep_on_demand_fallback,
    on_demand_allocation,
    on_demand_comparison,
    on_demand_hourly_price,
    resolve_architecture,
    spot_allocation,
    spot_offer_rows,
    spot_offers,
)
from mapt.allocation._ec2 import Ec2Queries, check_credentials, load_client_data, models_loading
from mapt.allocation._errors import (
    NoEligibleOfferError,
    NoMatchingInstanceTypesError,
    NoSupportedInstanceTypesError,
)
from mapt.allocation._models import (
    ARCHITECTURES,
    TOLERANCE_MIN_SCORE,
    AllocationArgs,
    AllocationResult,
    ComputeRequest,
    FailedOffer,
    Offer,
    SpotArgs,
)
from mapt.allocation._spot_stack import SPOT_STACK_NAME

__all__ = [
    "ARCHITECTURES",
    "SPOT_STACK_NAME",
    "TOLERANCE_MIN_SCORE",
    "AllocationArgs",
    "AllocationResult",
    "ComputeRequest",
    "Ec2Queries",
    "FailedOffer",
    "NoEligibleOfferError",
    "NoMatchingInstanceTypesError",
    "NoSupportedInstanceTypesError",
    "Offer",
    "SpotArgs",
    "allocation",
    "architecture_of",
    "check_credentials",
    "fail_over",
    "instance_types_for",
    "keep_on_demand_fallback",
    "load_client_data",
    "models_loading",
    "on_demand_allocation",
    "on_demand_comparison",
    "on_demand_hourly_price",
    "resolve_architecture",
    "spot_allocation",
    "spot_offer_rows",
    "spot_offers",
]
