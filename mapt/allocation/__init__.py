"""Allocation: where, and on what, a machine runs.

It owns the choice of region, availability zone, spot price and instance types for a
compute request: pure selection and ranking functions, the read-only AWS queries that
feed them (boto3, imported lazily), and the ``spotOption-<project>`` stack that keeps a
spot choice stable across re-runs. It may import ``mapt.stacks`` and ``mapt.core``,
never ``mapt.targets`` or ``mapt.cli``; it prints nothing.
"""
