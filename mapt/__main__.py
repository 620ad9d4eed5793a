"""``python -m mapt``: the same entry point as the ``mapt`` console script."""

from mapt.cli import main

if __name__ == "__main__":
    main()
