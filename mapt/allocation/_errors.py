"""Errors the allocation raises, each a ``MaptError`` with its exit code."""

from __future__ import annotations

from mapt.core import InputError, NoCapacityError


class NoMatchingInstanceTypesError(InputError):
    """No instance type has the requested shape (cpus, memory, arch, GPUs, families)."""


class NoSupportedInstanceTypesError(NoCapacityError):
    """The chosen types exist, but no availability zone of the region offers any of them."""


class NoEligibleOfferError(NoCapacityError):
    """No availability zone has a good enough placement score and prices for the types."""
