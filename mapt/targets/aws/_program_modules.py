"""Importing this module loads everything the host program uses when it runs.

pulumi_aws imports its submodules lazily, on their first attribute used (``aws.ec2.Vpc``
loads ``pulumi_aws.ec2``: 180 modules, about a second of CPU), so importing
``pulumi_aws.ec2`` by name loads nothing yet; and ``mapt.targets.aws`` imports the
program's own modules only when a program runs. A process that forks the program's
runs from one parent (the service's workers, from a forkserver that imports each
operation's ``preload``) imports this module in the parent, and no run loads them again.
"""

from __future__ import annotations

import pulumi_aws as aws
import pulumi_tls as tls
import pulumiverse_time as time

from mapt.targets.aws import _base, _compute, _dns, _network

# A class of each pulumi_aws submodule the programs declare resources of (naming one
# loads its submodule), and the program's own modules.
LOADED = (
    aws.ec2.Vpc, aws.autoscaling.Group, aws.lb.TargetGroup, aws.route53.Record,
    tls.PrivateKey, time.Static, _base, _compute, _dns, _network,
)  # fmt: skip
