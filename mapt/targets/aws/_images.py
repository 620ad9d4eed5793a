"""The AMI lookup the programs invoke (``aws.ec2.getAmi``), answered from ``DescribeImages``.

A dry run answers it from the real region (``mapt aws host create --dry-run``) and the
sandbox engine from its endpoint; both answer as the provider would, through this one
function, so a lookup that finds nothing fails where a real run would. Imports boto3
only through the client it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapt.core import OperationError, translating_aws_errors

GET_AMI = "aws:ec2/getAmi:getAmi"


def ami_answer(client: Any, region: str, invoke_args: Mapping[str, Any]) -> dict[str, Any]:
    """What ``getAmi`` returns for ``invoke_args`` (owners, filters, mostRecent).

    The newest matching image when ``mostRecent``; without it, more than one match is
    an error, as the provider makes it. ``OperationError`` when nothing matches,
    naming the region, the owners and the filters.
    """
    filters = [
        {"Name": f["name"], "Values": list(f["values"])} for f in invoke_args.get("filters", [])
    ]
    owners = list(invoke_args.get("owners", []))
    described = ", ".join(f"{f['Name']}={','.join(f['Values'])}" for f in filters)
    with translating_aws_errors("DescribeImages", region=region):
        images = client.describe_images(Owners=owners, Filters=filters)["Images"]
    if not images:
        raise OperationError(
            f"no image in {region} owned by {', '.join(owners)} matches {described}"
        )
    if len(images) > 1 and not invoke_args.get("mostRecent", False):
        raise OperationError(
            f"{len(images)} images in {region} owned by {', '.join(owners)} match "
            f"{described}, and the lookup does not ask for the most recent one"
        )
    newest = max(images, key=lambda image: image.get("CreationDate", ""))
    return {
        "id": newest["ImageId"],
        "imageId": newest["ImageId"],
        "name": newest.get("Name", ""),
        "architecture": newest.get("Architecture", ""),
        "rootDeviceName": newest.get("RootDeviceName", "/dev/sda1"),
        "rootDeviceType": newest.get("RootDeviceType", "ebs"),
        "creationDate": newest.get("CreationDate", ""),
        "ownerId": newest.get("OwnerId", ""),
        "platform": newest.get("Platform", ""),
        "virtualizationType": newest.get("VirtualizationType", ""),
        "state": newest.get("State", ""),
        "owners": owners,
        "mostRecent": bool(invoke_args.get("mostRecent", False)),
    }
