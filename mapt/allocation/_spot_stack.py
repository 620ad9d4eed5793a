"""The ``spotOption-<project>`` stack: a spot choice made once and kept.

The stack has no resources, only outputs: the chosen offer, its ranked runner-ups and
the offers that failed to launch before it (``failed``; see ``fail_over``). While it
exists, ``allocation()`` returns its outputs and asks EC2 nothing, so a second
``create`` can never move a machine to another region under its existing stacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mapt.allocation._models import AllocationResult
from mapt.core import OperationError

SPOT_STACK_NAME = "spotOption"

# Output names of the stack -> AllocationResult fields (mapt's short ``az`` names kept).
_OUTPUT_FIELDS = {
    "region": "region",
    "az": "availability_zone",
    "az_id": "availability_zone_id",
    "instance_types": "instance_types",
    "spot_price": "spot_price",
    "max_price": "max_price",
    "score": "score",
    "candidates": "candidates",
    "failed": "failed",
}


def spot_choice_outputs(result: AllocationResult) -> dict[str, Any]:
    """The stack outputs that record ``result``."""
    data = result.to_dict()
    return {output: data[field] for output, field in _OUTPUT_FIELDS.items()}


def spot_choice_program(result: AllocationResult) -> Callable[[], None]:
    """The inline Pulumi program of the spot stack: it only exports the choice."""

    def program() -> None:
        import pulumi

        for name, value in spot_choice_outputs(result).items():
            pulumi.export(name, value)

    return program


def read_spot_choice(stack_name: str, project: str, outputs: Mapping[str, Any]) -> AllocationResult:
    """Rebuild the stored choice, or say clearly that the stack is unusable."""
    try:
        data = {
            field: outputs[output] for output, field in _OUTPUT_FIELDS.items() if output in outputs
        }
        if data.get("spot_price") is None and not data.get("failed"):
            # Only an on-demand fallback after failed spot offers has no spot price.
            raise ValueError("spot_price is missing")
        return AllocationResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise OperationError(
            f"stack {stack_name} exists but its outputs are missing or garbled ({error})",
            hint=f"Destroy it with 'mapt aws host destroy --project-name {project}' "
            "and create again.",
        ) from error
