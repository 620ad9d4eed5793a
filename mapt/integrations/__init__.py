"""Integrations: CI systems that use mapt's machines (GitHub Actions, GitLab runners).

It owns what a CI system needs on or around a host: runner registration tokens through
the CI's API, the bootstrap snippets that install and register a runner, and runner
deregistration on destroy. It may import ``mapt.core`` only (plus ``httpx`` and
``jwt`` for the CI APIs, loaded lazily); targets embed its bootstrap snippets and the
CLI wires its flags.

Each CI system is a sub-package with its own public surface: ``mapt.integrations.github``.
"""

from mapt.integrations import github

__all__ = ["github"]
