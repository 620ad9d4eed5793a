"""The ``mapt`` command line (Typer): the only layer that parses flags and prints.

It turns flags and ``MAPT_*`` environment variables into validated requests, calls
``mapt.allocation``, ``mapt.targets`` and ``mapt.stacks``, and reports results on
stdout and logs on stderr. It maps every ``MaptError`` to one line on stderr and the
error's exit code. Commands import the heavy layers (Pulumi, pulumi-aws, boto3) inside
their bodies, never at module level, so ``mapt --help`` stays fast.
"""

from mapt.cli._app import app, main

__all__ = ["app", "main"]
