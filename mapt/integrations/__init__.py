"""Integrations: CI systems that use mapt's machines (GitHub Actions, GitLab runners).

It owns what a CI system needs on or around a host: runner registration tokens through
the CI's API, the bootstrap snippets that install and register a runner, and runner
deregistration on destroy. It may import ``mapt.core`` only; targets embed its
bootstrap snippets and the CLI wires its flags.
"""
