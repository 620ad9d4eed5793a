"""How mapt prints: help as plain text, tables on one rich console.

Help is Click's plain text, not Typer's rich panels: it reads the same in a CI log
as on a terminal (no box drawing), and it loads neither ``typer.rich_utils`` nor the
``rich.markdown``/``rich.traceback`` it imports, about 0.09 s of CPU, half of what a
one-option Typer app's ``--help`` costs with them (``benchmarks/cli_startup.py``).

On a terminal, rich fits tables to its width. Anywhere else (a CI log, a pipe, a
file) nobody can widen the window, so nothing is cut: the console is as wide as the
widest line needs, whatever ``COLUMNS`` says. ``--output json`` stays the machine
interface; this is for people reading logs.

What the console prints is data (AWS tags, project folders, paths, error messages),
so it prints it as it is: no rich markup, no emoji codes, no highlighting. A tag
``Name=[/oops]`` is shown, not parsed (an unclosed tag raised after a sweep had
deleted what it named), and a folder ``[bold]q`` keeps its brackets. Table cells and
titles are rendered by the console that prints the table, so this covers them too.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

# Wide enough for any table mapt prints, so no cell is cut or wrapped off a terminal.
UNBOUNDED_WIDTH = 100_000


def console() -> Any:
    """A console on stdout that prints text literally: the terminal's width on a
    terminal, unbounded elsewhere."""
    from rich.console import Console

    return Console(
        file=sys.stdout,
        soft_wrap=False,
        width=None if sys.stdout.isatty() else UNBOUNDED_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
    )


def command_group(help: str, **settings: Any) -> typer.Typer:
    """A group of commands with mapt's help: plain text, and the group's help when it
    is called bare (``settings`` are Typer's, overriding these)."""
    return typer.Typer(help=help, **{"no_args_is_help": True, "rich_markup_mode": None, **settings})
