"""mapt: short-lived test machines on AWS, spot capacity first, for CI pipelines.

The package is layered; each layer is a sub-package whose docstring says what it owns
and what it may import (see ``specs/concepts/architecture.md``):

``mapt.cli`` -> ``mapt.targets`` / ``mapt.allocation`` -> ``mapt.stacks`` -> ``mapt.core``.

Importing ``mapt`` itself is cheap: Pulumi, pulumi-aws and boto3 are imported only by
the modules that use them, so ``mapt --help`` stays fast.
"""

__version__ = "0.1.0"
