"""The Click command tree of a Typer app, built once per run for in-process CLI tests.

``typer.testing.CliRunner.invoke`` turns the Typer app into Click commands on every
call: for mapt's tree that is an ``inspect.signature`` and ``typing.get_type_hints`` of
every command function (about 2,400 per invocation), a third of the CPU an in-process
CLI test took. A real ``mapt`` process builds the tree once and parses one command
line with it; ``built_once()`` makes the tests' invocations do the same, each parsing
its own arguments in its own Click context as before.

A tree is kept per shape of the app: the Typer objects, command and group
registrations and callbacks it is built from (kept alive as the key, so an identity is
never reused). A test that registers a command on a group (``tests/cli/test_app.py``)
gets a tree built with it, and the original again once it is removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _shape(typer_instance: Any) -> tuple[Any, ...]:
    """Everything ``typer.main.get_command`` reads from the app, by identity."""
    groups = tuple(
        (group, _shape(group.typer_instance)) for group in typer_instance.registered_groups
    )
    return (
        typer_instance,
        typer_instance.info,
        typer_instance.registered_callback,
        tuple(typer_instance.registered_commands),
        groups,
    )


@contextmanager
def built_once() -> Iterator[None]:
    """Make ``CliRunner.invoke`` reuse the Click tree of an app of the same shape."""
    import typer.testing

    original = typer.testing._get_command
    trees: dict[tuple[Any, ...], Any] = {}

    def get_command(typer_instance: Any) -> Any:
        shape = _shape(typer_instance)
        if shape not in trees:
            trees[shape] = original(typer_instance)
        return trees[shape]

    typer.testing._get_command = get_command
    try:
        yield
    finally:
        typer.testing._get_command = original
