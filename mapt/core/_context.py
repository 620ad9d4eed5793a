"""The run context: who this run is for and where its state lives.

A ``RunContext`` is built once per command from validated input and handed down to
every layer, so no layer re-reads flags or environment variables on its own.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mapt.core._errors import InputError
from mapt.core._text import from_environment, shown

# The project name becomes part of stack names (``spotOption-<project>``), S3 state
# prefixes and AWS resource names, several of which are short (a load balancer name is
# at most 32 characters), so keep it short and to characters every one of them accepts.
PROJECT_NAME_MAX_LENGTH = 40
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# mapt's own project: the event-intake stacks (``events-<region>-mapt-events``) live in
# it. A host project of this name would share their state, and its destroy would purge
# it, so no host project may take it (``validate_host_project_name``).
EVENTS_PROJECT = "mapt-events"

# AWS tag rules (EC2 User Guide, "Tag restrictions"): key 1-128 and value 0-256
# characters of letters, digits, spaces and _ . : / = + - @; the ``aws:`` prefix is
# AWS's own. ``mapt:`` is ours: mapt writes those tags itself.
_TAG_TEXT = re.compile(r"[\w .:/=+\-@]*")
_RESERVED_TAG_PREFIXES = ("aws:", "mapt:")


def validate_project_name(name: str) -> str:
    """Return ``name`` if it can name a mapt project, else raise ``InputError``."""
    if not name:
        raise InputError("project name is empty", hint="Pass --project-name NAME.")
    if len(name) > PROJECT_NAME_MAX_LENGTH:
        raise InputError(
            f"project name {name[:20]!r}... is {len(name)} characters long; "
            f"the limit is {PROJECT_NAME_MAX_LENGTH}"
        )
    if not _PROJECT_NAME.fullmatch(name):
        raise InputError(
            f"project name {name!r} is not allowed: use letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


def validate_host_project_name(name: str, flag: str = "--project-name") -> str:
    """Return ``name`` if a host project may take it, else raise ``InputError``.

    A valid project name (``validate_project_name``) that is not mapt's own
    ``EVENTS_PROJECT``; ``flag`` is what the user set it with.
    """
    validate_project_name(name)
    if name == EVENTS_PROJECT:
        raise InputError(
            f"{flag} {name!r} is reserved: it is mapt's event intake project; "
            "give the host another name"
        )
    return name


def parse_tags(text: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2`` into a dict, refusing anything AWS or mapt would not accept.

    An empty string means no tags. A value may contain ``=`` (only the first one
    separates key from value) but not ``,``, which separates pairs.
    """
    tags: dict[str, str] = {}
    if not text.strip():
        return tags
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise InputError(f"tag {item!r} has no '=': write tags as key=value,key2=value2")
        if not key:
            raise InputError(f"tag {item!r} has an empty key")
        if key in tags:
            raise InputError(f"tag key {key!r} is given more than once")
        if key.lower().startswith(_RESERVED_TAG_PREFIXES):
            raise InputError(f"tag key {key!r} uses a reserved prefix (aws: or mapt:)")
        if len(key) > 128 or len(value) > 256:
            raise InputError(f"tag {key!r} is too long: keys hold 128 characters, values 256")
        if not _TAG_TEXT.fullmatch(key) or not _TAG_TEXT.fullmatch(value):
            raise InputError(
                f"tag {item!r} has a character AWS does not allow in tags "
                "(letters, digits, spaces and _ . : / = + - @ only)"
            )
        tags[key] = value
    return tags


def check_region_name(name: str, what: str = "region") -> str:
    """Return ``name`` if it is a region of an AWS partition, else raise ``InputError``.

    The regions are botocore's endpoint data for every partition (aws, aws-cn,
    aws-us-gov, the ISO partitions, aws-eusc), so a region is known without an AWS
    call; ``what`` names the flag or variable in the message. Whether the account may
    use the region is for the caller to ask AWS (``DescribeRegions``).
    """
    if name not in known_regions():
        raise InputError(
            f"{what} {shown(name)} is not an AWS region",
            hint="Use a region name such as us-east-1 (a region newer than botocore "
            f"{_botocore_version()} needs a newer botocore).",
        )
    return name


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data.

    botocore is imported here, on first use, so ``mapt --help`` does not load it. The
    endpoint data is read through botocore's resolver alone: the session's
    ``get_available_regions`` parses EC2's whole service model first (4 MB, about
    0.15 s of CPU) to learn its endpoint prefix, which is ``ec2``.
    """
    import botocore.session
    from botocore.regions import EndpointResolver

    resolver = EndpointResolver(botocore.session.get_session().get_data("endpoints"))
    return frozenset(
        region
        for partition in resolver.get_available_partitions()
        for region in resolver.get_available_endpoints("ec2", partition)
    )


def _botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


@dataclass(frozen=True)
class RunContext:
    """What one mapt run is for: the project, where its state lives, tags and verbosity.

    ``backend_url`` is the Pulumi state backend (``file://...`` or ``s3://...``); ``None``
    lets the stacks layer choose its local default. ``region`` is the AWS region asked for
    on the command line, if any; ``resolved_region`` falls back to the AWS environment.
    """

    project_name: str
    backend_url: str | None = None
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    debug: bool = False

    def __post_init__(self) -> None:
        validate_project_name(self.project_name)
        if self.region is not None:
            check_region_name(self.region)
        # Freeze the tags too, so a context handed to several layers cannot drift.
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    def stack_name(self, name: str) -> str:
        """The Pulumi stack name for one of this project's stacks: ``<name>-<project>``."""
        return f"{name}-{self.project_name}"

    def resolved_region(self) -> str | None:
        """The region asked for, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``.

        A region from the environment is checked like one from the command line, and
        the message names the variable it came from.
        """
        return self.region or region_from_environment()


REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def region_from_environment() -> str | None:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION`` (as the AWS SDKs read them), checked."""
    for variable in REGION_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return check_region_name(value, from_environment(variable, value) + ": region")
    return None
