"""Publishing AMIs under moto as their real owners do (Red Hat, Fedora, Amazon).

moto's ``RegisterImage`` always makes the caller the owner, and its bundled images are
turned off here (``MOTO_EC2_LOAD_DEFAULT_AMIS=false``), so a test that needs "RHEL 9.4
exists in eu-north-1" places that image itself, owned by the publisher's account.
"""

from __future__ import annotations

from datetime import datetime, timezone


def publish_image(
    region: str,
    name: str,
    owner: str,
    *,
    architecture: str = "x86_64",
    created: datetime | None = None,
    root_device_name: str = "/dev/sda1",
) -> str:
    """Make ``name`` visible in ``region`` as an image of ``owner``; return its id.

    moto is imported here, not at module level: it reads its settings (instance-type
    validation) on import, which must wait until the ``aws`` fixture has set them.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    image_id = random_ami_id()
    backend.amis[image_id] = Ami(
        backend,
        image_id,
        name=name,
        owner_id=owner if owner.isdigit() else None,
        owner_alias=None if owner.isdigit() else owner,
        public=True,
        architecture=architecture,
        creation_date=created or datetime(2026, 10, 1, tzinfo=timezone.utc),
        root_device_name=root_device_name,
        region_name=region,
    )
    return image_id
