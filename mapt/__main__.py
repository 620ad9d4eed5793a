"""``python -m mapt`` and the ``mapt`` console script: the CLI, started with the GC paused.

Starting the CLI imports some 350 modules (Typer, Rich, mapt's commands): objects
that live as long as the process, which the cyclic garbage collector would scan again
and again while they load (about a tenth of ``mapt --help``). So the collector is
paused while they load, and what they created is frozen out of later collections
(``gc.freeze``); it runs as usual for the command itself.
"""

import gc


def main() -> None:
    """Console-script entry point."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from mapt.cli import main as cli_main
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
