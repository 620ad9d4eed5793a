"""What commands act through: the stacks engine, the readiness check, the launch check.

The defaults are the real ones (the Pulumi engine, SSH readiness, the Auto Scaling
launch check). A caller that runs the CLI in-process can hand in others as the root
context object, e.g. ``CliRunner().invoke(app, args, obj=Services(...))``: this is how
whole create/destroy flows run in tests on the in-memory engine. The choice is an
explicit argument, never an environment switch. ``Services`` is the library's
``mapt.hosts.HostServices``: the CLI and the service hand the lifecycle the same type.
"""

from __future__ import annotations

import typer

from mapt.hosts import (
    EngineFactory,
    HostServices,
    HostSetupStep,
    LaunchCheck,
    ReadinessCheck,
    auto_scaling_launch,
    pulumi_cli_present,
    pulumi_engine,
    ssh_readiness,
)

Services = HostServices

__all__ = [
    "EngineFactory",
    "HostSetupStep",
    "LaunchCheck",
    "ReadinessCheck",
    "Services",
    "auto_scaling_launch",
    "pulumi_cli_present",
    "pulumi_engine",
    "services",
    "ssh_readiness",
]


def services(ctx: typer.Context) -> Services:
    """The services handed to the root command, or the real ones."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, HostServices) else HostServices()
