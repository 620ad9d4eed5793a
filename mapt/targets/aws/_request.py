"""What a host on AWS is asked to be: the operating system and its options, validated.

``HostRequest`` is the one typed input of the AWS host target besides the run context
and the allocation result. It is checked on construction, so a value that would end up
inside an AMI filter, a cloud-init document or a PowerShell script is refused with an
``InputError`` naming it before any stack is touched. It imports neither Pulumi nor
``pulumi_aws``: the CLI builds it while ``mapt --help`` stays light.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, cast

from mapt.allocation import ARCHITECTURES
from mapt.core import InputError, register_secret
from mapt.integrations.github import RunnerSpec

OperatingSystem = Literal["rhel", "fedora", "windows"]
OPERATING_SYSTEMS: tuple[OperatingSystem, ...] = ("rhel", "fedora", "windows")

DEFAULT_DISK_SIZE_GIB = 200
# gp3 volumes hold at most 16 TiB. Below the minimum the image itself does not fit: RHEL
# and Fedora images are 10 GiB, Amazon's Windows Server images 30 GiB.
MAX_DISK_SIZE_GIB = 16384
_MIN_DISK_SIZE_GIB: dict[OperatingSystem, int] = {"rhel": 10, "fedora": 10, "windows": 30}

DEFAULT_VERSIONS: dict[OperatingSystem, str] = {"rhel": "9.4", "fedora": "41"}

# AMI publishers: Red Hat's and the Fedora Project's AWS accounts, Amazon's alias.
RHEL_AMI_OWNER = "309956199498"
FEDORA_AMI_OWNER = "125523088429"
WINDOWS_DEFAULT_AMI_NAME = "Windows_Server-2022-English-Full-Base-*"
WINDOWS_DEFAULT_AMI_OWNER = "amazon"
WINDOWS_CUSTOM_AMI_OWNER = "self"
WINDOWS_DEFAULT_USERNAME = "ec2-user"

# Users the images come with: cloud-init creates them with the instance's key pair.
_LINUX_USERNAMES: dict[OperatingSystem, str] = {"rhel": "ec2-user", "fedora": "fedora"}

SERVICE_ENDPOINTS = ("s3", "ecr", "ssm")

SSH_PORT = 22
RDP_PORT = 3389

# Versions go into an AMI name filter: ASCII digits and dots only, so no wildcard or
# other character can widen the lookup to an image nobody asked for (``\d`` would take
# any script's digits: "٤").
_RHEL_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_FEDORA_VERSION = re.compile(r"[0-9]+")
# AMI names: letters, digits, spaces and ( ) [ ] . / - ' @ _ (EC2 RegisterImage), plus
# the filter wildcards * and ?.
_AMI_NAME = re.compile(r"[A-Za-z0-9 ()\[\]./\-'@_*?]{3,128}")
_AMI_OWNER = re.compile(r"[0-9]{12}|self|amazon|aws-marketplace")
# Windows local account names: at most 20 characters; these are safe inside a
# single-quoted PowerShell string and an OpenSSH user name.
_WINDOWS_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,19}")


@dataclass(frozen=True)
class ImageLookup:
    """How the host's AMI is found: the newest image matching all of these."""

    name: str
    owner: str
    architecture: str


@dataclass(frozen=True)
class HostRequest:
    """A host to create on AWS, besides where it runs (the allocation decides that).

    ``version`` None takes the OS default (RHEL 9.4, Fedora 41); Windows has no version,
    its image is chosen by ``ami_name``/``ami_owner``. ``airgap`` puts the host in a
    private subnet reached through a bastion. ``service_endpoints`` adds VPC endpoints
    (``s3``, ``ecr``, ``ssm``). The RHEL subscription password is a secret: it is
    registered for log redaction and left out of ``repr``.

    ``expires_at`` (timezone-aware) is when the machine removes itself: it powers off
    and is terminated, a spot group scales to zero, and every resource is tagged
    ``mapt:expires-at`` so ``mapt aws sweep --expired`` can remove the rest. It is
    kept in UTC and whole seconds, the precision of every place it is written to.
    Whether it lies in the future is the caller's to check: a request is built from
    the clock, not checked against it.

    ``runner`` installs a GitHub Actions runner at first boot; mapt registers it over
    SSH once the host is ready, so its token never reaches user data.

    ``dns_zone`` (a public Route53 hosted zone's name) gives the host the stable name
    ``<project>.<zone>``; ``dns_zone_id`` is that zone's id, which the target looks up
    before anything is created. With a zone, a spot host has no load balancer (its name
    follows the instance) unless ``spot_load_balancer`` keeps one.
    """

    os: OperatingSystem
    version: str | None = None
    arch: str = "x86_64"
    disk_size: int = DEFAULT_DISK_SIZE_GIB
    airgap: bool = False
    service_endpoints: tuple[str, ...] = ()
    ami_name: str | None = None
    ami_owner: str | None = None
    ami_username: str | None = None
    rh_subscription_username: str | None = None
    rh_subscription_password: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    runner: RunnerSpec | None = field(default=None, repr=False)
    dns_zone: str | None = None
    dns_zone_id: str | None = None
    spot_load_balancer: bool = False

    def __post_init__(self) -> None:
        if self.os not in OPERATING_SYSTEMS:
            raise InputError(
                f"operating system {self.os!r} is not supported: use one of "
                f"{', '.join(OPERATING_SYSTEMS)}"
            )
        if self.arch not in ARCHITECTURES:
            raise InputError(
                f"architecture {self.arch!r} is not supported: "
                f"use one of {', '.join(ARCHITECTURES)}"
            )
        self._check_version()
        self._check_disk_size()
        self._check_endpoints()
        self._check_image_overrides()
        self._check_subscription()
        self._check_expiry()
        self._check_dns_zone()
        if self.os == "windows":
            if self.arch != "x86_64":
                raise InputError(
                    f"architecture {self.arch!r} is not available for windows: "
                    "Windows Server on EC2 runs on x86_64 only"
                )
            if self.airgap:
                raise InputError(
                    "--airgap is not supported for windows: the host is made ready over the "
                    "NAT and cut off afterwards, which needs cloud-init's completion signal; "
                    "Windows' bootstrap (OpenSSH from Windows Update, then reboots) has none",
                    hint="Use --airgap with rhel or fedora.",
                )

    def _check_version(self) -> None:
        if self.version is None:
            return
        if self.os == "windows":
            raise InputError(
                f"--version {self.version!r} does not apply to windows",
                hint="Choose the image with --ami-name (and --ami-owner).",
            )
        pattern = _RHEL_VERSION if self.os == "rhel" else _FEDORA_VERSION
        if not pattern.fullmatch(self.version):
            example = "9.4" if self.os == "rhel" else "41"
            raise InputError(
                f"{self.os} version {self.version!r} is not a release number like {example} "
                "(digits and dots only)"
            )

    def _check_disk_size(self) -> None:
        size = self.disk_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise InputError(f"disk size {size!r} must be a whole number of GiB")
        minimum = _MIN_DISK_SIZE_GIB[self.os]
        if not minimum <= size <= MAX_DISK_SIZE_GIB:
            raise InputError(
                f"disk size {size} GiB is out of range for {self.os}: "
                f"use {minimum} to {MAX_DISK_SIZE_GIB} GiB"
            )

    def _check_endpoints(self) -> None:
        object.__setattr__(self, "service_endpoints", tuple(self.service_endpoints))
        for name in self.service_endpoints:
            if name not in SERVICE_ENDPOINTS:
                raise InputError(
                    f"service endpoint {name!r} is not supported: use any of "
                    f"{', '.join(SERVICE_ENDPOINTS)}"
                )
        if len(set(self.service_endpoints)) != len(self.service_endpoints):
            raise InputError(f"service endpoints {list(self.service_endpoints)} repeat a name")

    def _check_image_overrides(self) -> None:
        given = {
            "--ami-name": self.ami_name,
            "--ami-owner": self.ami_owner,
            "--ami-username": self.ami_username,
        }
        if self.os != "windows":
            for flag, value in given.items():
                if value is not None:
                    raise InputError(f"{flag} {value!r} applies to windows only, not {self.os}")
            return
        if self.ami_name is not None and not _AMI_NAME.fullmatch(self.ami_name):
            raise InputError(
                f"AMI name {self.ami_name!r} has a character AMI names cannot contain "
                "(letters, digits, spaces, ( ) [ ] . / - ' @ _ and the wildcards * ?)"
            )
        if self.ami_owner is not None and not _AMI_OWNER.fullmatch(self.ami_owner):
            raise InputError(
                f"AMI owner {self.ami_owner!r} is not an account id (12 digits), "
                "'self', 'amazon' or 'aws-marketplace'"
            )
        if self.ami_username is not None and not _WINDOWS_USERNAME.fullmatch(self.ami_username):
            raise InputError(
                f"AMI user name {self.ami_username!r} is not a Windows account name "
                "(up to 20 letters, digits, '.', '-', '_')"
            )

    def _check_subscription(self) -> None:
        user, password = self.rh_subscription_username, self.rh_subscription_password
        if user is None and password is None:
            return
        if self.os != "rhel":
            raise InputError(f"--rh-subscription-username/-password apply to rhel, not {self.os}")
        if not user or not password:
            raise InputError(
                "a RHEL subscription needs both --rh-subscription-username and "
                "--rh-subscription-password"
            )
        register_secret(password)
        if any(ch in password for ch in "\r\n"):
            # It is typed at subscription-manager's prompt, where a line break ends it.
            raise InputError("the RHEL subscription password holds a line break")

    def _check_expiry(self) -> None:
        moment = self.expires_at
        if moment is None:
            return
        if not isinstance(moment, datetime):
            raise InputError(f"expiry {moment!r} is not a date and time")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InputError(
                f"expiry {moment.isoformat()} has no timezone: give it in UTC or with an offset"
            )
        utc = moment.astimezone(timezone.utc).replace(microsecond=0)
        object.__setattr__(self, "expires_at", utc)

    def _check_dns_zone(self) -> None:
        if self.dns_zone is None:
            return
        from mapt.targets.aws._dns import check_zone_name

        object.__setattr__(self, "dns_zone", check_zone_name(self.dns_zone))
        if self.airgap:
            raise InputError(
                f"--dns-zone {self.dns_zone!r} cannot be used with --airgap: an air-gapped "
                "host has no public address for a public name to point at"
            )

    # What follows is derived from the request: the target's programs use it, and so
    # does the CLI to describe what it will create.

    def load_balanced(self, spot: bool) -> bool:
        """Whether a host of this request sits behind a network load balancer: a spot host
        does, unless it has a name (``dns_zone``) and ``spot_load_balancer`` is off."""
        return spot and (self.dns_zone is None or self.spot_load_balancer)

    @property
    def resolved_version(self) -> str | None:
        """The OS version used: the one asked for, else the default; None on Windows."""
        if self.os == "windows":
            return None
        return self.version or DEFAULT_VERSIONS[self.os]

    @property
    def username(self) -> str:
        """The account mapt's key logs in as."""
        if self.os == "windows":
            return self.ami_username or WINDOWS_DEFAULT_USERNAME
        return _LINUX_USERNAMES[self.os]

    @property
    def image(self) -> ImageLookup:
        """The AMI lookup for this host."""
        if self.os == "rhel":
            return ImageLookup(f"RHEL-{self.resolved_version}*", RHEL_AMI_OWNER, self.arch)
        if self.os == "fedora":
            version = cast(str, self.resolved_version)
            # The Fedora Project names images by architecture in its own spelling, and
            # changed the scheme with Fedora 40.
            fedora_arch = "aarch64" if self.arch == "arm64" else "x86_64"
            if int(version) >= 40:
                name = f"Fedora-Cloud-Base-AmazonEC2.{fedora_arch}-{version}-*"
            else:
                name = f"Fedora-Cloud-Base-{version}-*.{fedora_arch}-*"
            return ImageLookup(name, FEDORA_AMI_OWNER, self.arch)
        if self.ami_name is None:
            return ImageLookup(
                WINDOWS_DEFAULT_AMI_NAME, self.ami_owner or WINDOWS_DEFAULT_AMI_OWNER, self.arch
            )
        return ImageLookup(self.ami_name, self.ami_owner or WINDOWS_CUSTOM_AMI_OWNER, self.arch)

    @property
    def ports(self) -> tuple[int, ...]:
        """The TCP ports the host is reached on: SSH always, RDP on Windows."""
        return (SSH_PORT, RDP_PORT) if self.os == "windows" else (SSH_PORT,)

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"

    @property
    def has_subscription(self) -> bool:
        return self.rh_subscription_username is not None

    @property
    def has_secrets(self) -> bool:
        """Whether mapt hands the host secrets over SSH once ready (``awaited_secrets``)."""
        return bool(self.awaited_secrets)

    @property
    def awaited_secrets(self) -> tuple[str, ...]:
        """What the host waits for from mapt after boot, never from user data.

        ``windows-password``: the account's password, EC2's generated administrator
        password; ``rh-subscription``: the RHEL registration; ``github-runner``: the
        runner's registration. A machine that boots without them (a spot replacement)
        says so: see ``specs/concepts/targets.md``, "Secrets".
        """
        awaited = []
        if self.is_windows:
            awaited.append("windows-password")
        if self.has_subscription:
            awaited.append("rh-subscription")
        if self.runner is not None:
            awaited.append("github-runner")
        return tuple(awaited)
