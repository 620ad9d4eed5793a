"""Let pytest keep the modules it rewrites, plugins' included (a plugin, ``-p`` in addopts).

pytest rewrites the asserts of every test module and of every module of each installed
pytest plugin's distribution (hypothesis, schemathesis, anyio, ...: about 260 of them,
about 1.7 s of CPU), and caches the result in ``__pycache__`` unless
``PYTHONDONTWRITEBYTECODE`` is set, as it is on the CI machines; then every pytest
process (each xdist worker, each child pytest a test starts) paid it again. A
conftest runs too late for the plugins: pytest imports them before any conftest. This
module is named by ``-p`` in the project's addopts, which pytest imports before the
plugins it finds by entry point, so turning bytecode writing back on here reaches them
too. The tests run the same code either way.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = False
