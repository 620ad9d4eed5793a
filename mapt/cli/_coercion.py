"""Typer's option coercion, built for the first value that needs it, not for every flag seen.

Typer (0.29) coerces option values through pydantic ``TypeAdapter``\\ s and builds a
parameter's coercion the first time Click hands the parameter a value, even ``None``
(an option not given), which it then returns unchanged. Parsing ``mapt aws --help``
processes the root group's unset ``--help``, ``--install-completion`` and
``--show-completion`` before the subcommand's ``--help`` prints and exits, so every
help but the root's imported pydantic and built adapters it never used: a third of
its start-up time.

``defer_coercion`` gives each parameter a stand-in that builds typer's own coercion
on the first value that is not ``None`` and hands over to it: every value is coerced
by typer, exactly as before, only later. These are typer internals: if they change
shape, nothing is deferred (help only gets slower; ``tests/cli/test_startup.py``
says so by finding pydantic imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer.core import _TyperParameter
except ImportError:  # another typer: leave its coercion alone
    _DEFERRABLE = False
else:
    _DEFERRABLE = True

    @dataclass(frozen=True)
    class _DeferredCoercion(RuntimeParam):
        """Typer's coercion of one parameter, built on its first value that is not None.

        ``RuntimeParam.coerce`` answers ``None`` (and ``()`` for multiple values)
        itself; only a real value reaches ``_coerce_value``.
        """

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Any) -> Any:
            built = build_runtime_param(self.descriptor)
            param._runtime_param = built
            return built.coerce(value, param, ctx)


def defer_coercion(command: Any, parent: Any = None, name: str | None = None) -> None:
    """Defer the coercion of every parameter of ``command`` and of its subcommands.

    The parameters are those ``get_params`` returns for a context like the one
    parsing will create, so the help option Click adds (and caches) on first use is
    deferred too. Creating a context parses nothing and runs nothing.
    """
    if not _DEFERRABLE:
        return
    ctx = command.context_class(command, parent=parent, info_name=name, **command.context_settings)
    for param in command.get_params(ctx):
        if isinstance(param, _TyperParameter) and getattr(param, "_runtime_param", 0) is None:
            try:
                descriptor = param.type_descriptor
                stand_in = _DeferredCoercion(
                    parameter_info=descriptor.parameter_info,
                    annotation=descriptor.annotation,
                    descriptor=descriptor,
                )
            except (AttributeError, TypeError):  # typer's internals changed shape
                return
            param._runtime_param = stand_in
    for subcommand_name, subcommand in getattr(command, "commands", {}).items():
        defer_coercion(subcommand, ctx, subcommand_name)
