"""Fixtures of the library tests: the CLI tests' market and harness, driven without the CLI."""

from __future__ import annotations

from tests.cli.conftest import cli, market

__all__ = ["cli", "market"]
