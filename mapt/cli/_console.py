"""The one rich console every command prints tables on.

On a terminal, rich fits tables to its width. Anywhere else (a CI log, a pipe, a
file) nobody can widen the window, so nothing is cut: the console is as wide as the
widest line needs, whatever ``COLUMNS`` says. ``--output json`` stays the machine
interface; this is for people reading logs.
"""

from __future__ import annotations

import sys
from typing import Any

# Wide enough for any table mapt prints, so no cell is cut or wrapped off a terminal.
UNBOUNDED_WIDTH = 100_000


def console() -> Any:
    """A console on stdout: the terminal's width on a terminal, unbounded elsewhere."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(file=sys.stdout, soft_wrap=False)
    return Console(file=sys.stdout, soft_wrap=False, width=UNBOUNDED_WIDTH)
