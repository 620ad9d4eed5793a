"""Targets: the Pulumi programs that build machines (networks, hosts) per cloud.

A target turns an allocation result plus target options into a Pulumi program, names
its stack, and says which outputs become connection files. It may import
``mapt.allocation``, ``mapt.stacks``, ``mapt.core`` and ``pulumi``/``pulumi_aws``; it
never parses flags or prints (that is ``mapt.cli``).
"""
