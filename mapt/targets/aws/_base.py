"""What every resource of an AWS target program shares: the provider and the tags.

Imported only while a program runs (it imports ``pulumi_aws``), never by ``mapt --help``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import pulumi
import pulumi_aws as aws
import pulumiverse_time as time

from mapt.core import RunContext
from mapt.targets.aws._tags import (
    TAG_CREATED_AT,
    TAG_EXPIRES_AT,
    TAG_PROJECT,
    TAG_STACK,
    utc_timestamp,
)


@dataclass(frozen=True)
class Deployment:
    """The provider every resource uses (pinned to the allocated region) and its tags."""

    provider: aws.Provider
    tags: Mapping[str, pulumi.Input[str]]

    def opts(self, **kwargs: object) -> pulumi.ResourceOptions:
        """Resource options with this deployment's provider."""
        return pulumi.ResourceOptions(provider=self.provider, **kwargs)  # type: ignore[arg-type]

    def invoke_opts(self) -> pulumi.InvokeOutputOptions:
        """Invoke options that run a lookup in the allocated region."""
        return pulumi.InvokeOutputOptions(provider=self.provider)

    def named_tags(self, name: str) -> dict[str, pulumi.Input[str]]:
        """The tags plus ``Name``, which the EC2 console shows."""
        return {**self.tags, "Name": name}

    def asg_tags(self, name: str) -> list[aws.autoscaling.GroupTagArgs]:
        """The tags in Auto Scaling's shape, propagated to the instances it launches."""
        return [
            aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
            for key, value in sorted(self.named_tags(name).items())
        ]


def new_deployment(
    ctx: RunContext, *, region: str, stack: str, expires_at: datetime | None = None
) -> Deployment:
    """The provider for ``region`` and the tags for every taggable resource.

    ``mapt:created-at`` comes from a ``time.Static`` resource: its timestamp is taken
    when the stack first creates it and then kept in state, so re-running create does
    not re-tag (and so update) every resource with a new time. ``mapt:expires-at`` is
    the request's expiry, when it has one: ``mapt aws sweep --expired`` reads it.
    """
    provider = aws.Provider("aws", region=region)
    created = time.Static("created-at")
    tags: dict[str, pulumi.Input[str]] = dict(ctx.tags)
    tags[TAG_PROJECT] = ctx.project_name
    tags[TAG_STACK] = stack
    tags[TAG_CREATED_AT] = created.rfc3339
    if expires_at is not None:
        tags[TAG_EXPIRES_AT] = utc_timestamp(expires_at)
    return Deployment(provider=provider, tags=tags)
