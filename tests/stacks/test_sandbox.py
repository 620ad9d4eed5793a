"""The sandbox engine against moto: real resources, real checkpoints, real deletes.

A small, test-local set of kinds (VPC, subnet, security group, SSM parameter and the
availability-zone invoke) stands in for mapt's own table, so what is checked here is
the engine: what it calls, in which order, what it writes, what a re-run and a
destroy do. The checkpoints it writes are read back with mapt's state reader.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest

from mapt.core import InputError, OperationError, PrerequisiteError, StateLockedError
from mapt.stacks import (
    PASSPHRASE_FILE_NAME,
    AppliedResource,
    DryRunEngine,
    SandboxAws,
    SandboxEngine,
    StackNotFoundError,
    StackRef,
    list_stacks,
)
from tests.harness.privileges import without_dac_override
from tests.harness.spot_market import ApiCallLog

REGION = "eu-west-1"
TAG = "mapt:project"
SECRET_VALUE = "s3cr3t-value-that-must-not-be-in-the-file"


def _tags(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (inputs.get("tags") or {}).items()]


def _ignoring_missing(call: Any, *codes: str) -> None:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] not in codes:
            raise


class Vpc:
    type_token = "aws:ec2/vpc:Vpc"

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        vpc = aws.client("ec2").create_vpc(
            CidrBlock=inputs["cidrBlock"],
            TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(inputs)}],
        )["Vpc"]
        return AppliedResource(
            vpc["VpcId"], {"arn": f"arn:aws:ec2:{aws.region}::vpc/{vpc['VpcId']}"}
        )

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        ec2 = aws.client("ec2")
        _ignoring_missing(lambda: ec2.delete_vpc(VpcId=id), "InvalidVpcID.NotFound")


class Subnet:
    type_token = "aws:ec2/subnet:Subnet"

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        subnet = aws.client("ec2").create_subnet(
            VpcId=inputs["vpcId"],
            CidrBlock=inputs["cidrBlock"],
            AvailabilityZone=inputs["availabilityZone"],
            TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags(inputs)}],
        )["Subnet"]
        return AppliedResource(subnet["SubnetId"], {"arn": subnet["SubnetArn"]})

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        ec2 = aws.client("ec2")
        _ignoring_missing(lambda: ec2.delete_subnet(SubnetId=id), "InvalidSubnetID.NotFound")


class SecurityGroup:
    """A group with a fixed name: replacing it needs the old one gone first."""

    type_token = "aws:ec2/securityGroup:SecurityGroup"

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        group = aws.client("ec2").create_security_group(
            GroupName=inputs["name"], Description=inputs["description"], VpcId=inputs["vpcId"]
        )
        return AppliedResource(group["GroupId"])

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        ec2 = aws.client("ec2")
        _ignoring_missing(lambda: ec2.delete_security_group(GroupId=id), "InvalidGroup.NotFound")


class Parameter:
    type_token = "aws:ssm/parameter:Parameter"

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        aws.client("ssm").put_parameter(
            Name=inputs["name"], Value=inputs["value"], Type=inputs["type"]
        )
        return AppliedResource(inputs["name"], {"version": 1})

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        ssm = aws.client("ssm")
        _ignoring_missing(lambda: ssm.delete_parameter(Name=id), "ParameterNotFound")


def availability_zones(aws: SandboxAws, args: Mapping[str, Any]) -> Mapping[str, Any]:
    zones = aws.client("ec2").describe_availability_zones()["AvailabilityZones"]
    return {"names": [z["ZoneName"] for z in zones], "zoneIds": [z["ZoneId"] for z in zones]}


KINDS = {kind.type_token: kind for kind in (Vpc(), Subnet(), SecurityGroup(), Parameter())}
INVOKES = {"aws:index/getAvailabilityZones:getAvailabilityZones": availability_zones}


def engine(kinds: Mapping[str, Any] = KINDS) -> SandboxEngine:
    return SandboxEngine(kinds, INVOKES)


def network(
    *,
    subnet_cidr: str = "10.0.2.0/24",
    with_subnet: bool = True,
    group_description: str | None = None,
    secret: bool = False,
) -> Any:
    """A program: a provider in REGION, a VPC, a subnet in its first zone, extras."""

    def program() -> None:
        import pulumi_aws as aws

        provider = aws.Provider("aws", region=REGION)
        opts = pulumi.ResourceOptions(provider=provider)
        tags = {TAG: "demo", "Name": "mapt-vpc"}
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", tags=tags, opts=opts)
        zones = aws.get_availability_zones_output(
            opts=pulumi.InvokeOutputOptions(provider=provider)
        )
        pulumi.export("vpc_id", vpc.id)
        if with_subnet:
            subnet = aws.ec2.Subnet(
                "subnet",
                vpc_id=vpc.id,
                cidr_block=subnet_cidr,
                availability_zone=zones.names[0],
                tags={TAG: "demo"},
                opts=opts,
            )
            pulumi.export("subnet_id", subnet.id)
        if group_description is not None:
            aws.ec2.SecurityGroup(
                "group",
                name="mapt-fixed-name",
                vpc_id=vpc.id,
                description=group_description,
                opts=pulumi.ResourceOptions(provider=provider, delete_before_replace=True),
            )
        if secret:
            aws.ssm.Parameter(
                "password",
                name="/mapt/demo/password",
                type="SecureString",
                value=pulumi.Output.secret(SECRET_VALUE),
                opts=opts,
            )
            pulumi.export("password", pulumi.Output.secret(SECRET_VALUE))

    return program


@pytest.fixture
def ec2(aws: ApiCallLog) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def ref(tmp_path: Path) -> StackRef:
    return StackRef("demo", "host", f"file://{tmp_path / 'state'}")


def checkpoint(ref: StackRef) -> dict[str, Any]:
    assert ref.backend_url is not None
    path = Path(ref.backend_url.removeprefix("file://")) / ".pulumi/stacks/demo/host-demo.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def tagged_vpcs(ec2: Any) -> list[str]:
    found = ec2.describe_vpcs(Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}])["Vpcs"]
    return [vpc["VpcId"] for vpc in found]


def subnets(ec2: Any) -> list[dict[str, Any]]:
    found = ec2.describe_subnets(Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}])
    return list(found["Subnets"])


def test_up_makes_the_resources_in_the_providers_region_and_returns_their_ids(
    ec2: Any, ref: StackRef
) -> None:
    outputs = engine().up(ref, network())

    assert tagged_vpcs(ec2) == [outputs["vpc_id"]]
    [subnet] = subnets(ec2)
    assert subnet["SubnetId"] == outputs["subnet_id"]
    assert subnet["VpcId"] == outputs["vpc_id"]
    # The zone came from the endpoint's answer to the invoke, in the provider's region.
    assert subnet["AvailabilityZone"] == "eu-west-1a"
    assert (
        boto3.client("ec2", region_name="us-east-1").describe_subnets(
            Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}]
        )["Subnets"]
        == []
    )


def test_the_state_is_a_pulumi_checkpoint_that_mapts_reader_lists(ec2: Any, ref: StackRef) -> None:
    outputs = engine().up(ref, network())

    document = checkpoint(ref)
    assert document["version"] == 3
    assert document["checkpoint"]["stack"] == "organization/demo/host-demo"
    resources = document["checkpoint"]["latest"]["resources"]
    by_type = {r["type"]: r for r in resources}
    stack_urn = "urn:pulumi:host-demo::demo::pulumi:pulumi:Stack::demo-host-demo"
    assert resources[0]["urn"] == stack_urn
    assert resources[0]["outputs"] == outputs
    provider = by_type["pulumi:providers:aws"]
    assert provider["inputs"]["region"] == REGION
    vpc, subnet = by_type["aws:ec2/vpc:Vpc"], by_type["aws:ec2/subnet:Subnet"]
    assert vpc["urn"] == "urn:pulumi:host-demo::demo::aws:ec2/vpc:Vpc::vpc"
    assert vpc["id"] == outputs["vpc_id"] and vpc["parent"] == stack_urn
    assert vpc["provider"] == f"{provider['urn']}::{provider['id']}"
    assert vpc["inputs"]["cidrBlock"] == "10.0.0.0/16"
    assert vpc["outputs"]["arn"].endswith(outputs["vpc_id"])
    assert subnet["dependencies"] == [vpc["urn"]]
    assert subnet["inputs"]["vpcId"] == outputs["vpc_id"]
    # Dependencies come before what depends on them, as Pulumi requires.
    order = [r["urn"] for r in resources]
    assert order.index(provider["urn"]) < order.index(vpc["urn"]) < order.index(subnet["urn"])

    [summary] = list_stacks(ref.backend_url)
    assert (summary.project, summary.stack_name, summary.unreadable) == ("demo", "host-demo", None)
    assert summary.outputs == outputs
    assert summary.resource_count == 3  # provider, VPC, subnet
    assert engine().exists(ref) and engine().outputs(ref) == outputs


def test_a_rerun_with_the_same_inputs_makes_nothing(
    ec2: Any, ref: StackRef, api_calls: ApiCallLog
) -> None:
    first = engine().up(ref, network())
    before = api_calls.count("CreateVpc") + api_calls.count("CreateSubnet")

    again = engine().up(ref, network())

    assert again == first
    assert api_calls.count("CreateVpc") + api_calls.count("CreateSubnet") == before
    assert api_calls.count("DeleteSubnet") == api_calls.count("DeleteVpc") == 0
    assert tagged_vpcs(ec2) == [first["vpc_id"]]
    assert engine().preview(ref, network()).changes == {"same": 2}


def test_changed_inputs_replace_the_resource_and_removed_ones_are_deleted(
    ec2: Any, ref: StackRef
) -> None:
    first = engine().up(ref, network())
    preview = engine().preview(ref, network(subnet_cidr="10.0.3.0/24"))
    assert preview.changes == {"same": 1, "replace": 1}
    assert [s["SubnetId"] for s in subnets(ec2)] == [first["subnet_id"]]  # preview changes nothing

    second = engine().up(ref, network(subnet_cidr="10.0.3.0/24"))

    assert second["vpc_id"] == first["vpc_id"]
    [subnet] = subnets(ec2)
    assert subnet["SubnetId"] == second["subnet_id"] != first["subnet_id"]
    assert subnet["CidrBlock"] == "10.0.3.0/24"

    third = engine().up(ref, network(with_subnet=False))

    assert subnets(ec2) == [] and "subnet_id" not in third
    types = [r["type"] for r in checkpoint(ref)["checkpoint"]["latest"]["resources"]]
    assert "aws:ec2/subnet:Subnet" not in types


def test_delete_before_replace_deletes_the_old_resource_first(ec2: Any, ref: StackRef) -> None:
    engine().up(ref, network(group_description="first"))

    # The group's name is fixed: creating the new one first would be refused (duplicate).
    engine().up(ref, network(group_description="second"))

    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["mapt-fixed-name"]}]
    )
    assert [g["Description"] for g in groups["SecurityGroups"]] == ["second"]


def test_destroy_deletes_in_reverse_dependency_order_and_removes_the_stack(
    ec2: Any, ref: StackRef, api_calls: ApiCallLog
) -> None:
    engine().up(ref, network())

    # moto refuses to delete a VPC that still has a subnet: the order is checked for real.
    assert engine().destroy(ref) is True

    assert tagged_vpcs(ec2) == [] and subnets(ec2) == []
    deletes = [c.operation for c in api_calls.calls if c.operation.startswith("Delete")]
    assert deletes == ["DeleteSubnet", "DeleteVpc"]
    assert not engine().exists(ref) and list_stacks(ref.backend_url) == []
    with pytest.raises(StackNotFoundError):
        engine().outputs(ref)
    assert engine().destroy(ref) is False


def test_destroy_of_a_stack_that_never_existed_writes_nothing(
    ec2: Any, tmp_path: Path, api_calls: ApiCallLog
) -> None:
    # A mistyped --backed-url: no lock, no folder, nothing asked of the endpoint.
    typo = StackRef("demo", "host", f"file://{tmp_path / 'typo' / 'state'}")
    assert engine().destroy(typo) is False
    assert not (tmp_path / "typo").exists()
    assert api_calls.calls == []


def test_a_meta_yaml_that_cannot_be_read_is_kept_not_rewritten(
    ec2: Any, ref: StackRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mapt.stacks import _inventory

    assert ref.backend_url is not None
    meta = Path(ref.backend_url.removeprefix("file://")) / ".pulumi" / "meta.yaml"
    meta.parent.mkdir(parents=True)
    meta.write_text("version: 1\n# kept by its owner\n")
    real_read = _inventory._FileStore.read

    def refusing(store: Any, key: str) -> bytes:
        if key == "meta.yaml":
            raise _inventory._Unreadable("cannot read it: Permission denied")
        return real_read(store, key)

    monkeypatch.setattr(_inventory._FileStore, "read", refusing)
    engine().up(ref, network())
    assert meta.read_text() == "version: 1\n# kept by its owner\n"


def test_a_refused_input_fails_up_with_awss_error_and_keeps_what_was_made(
    ec2: Any, ref: StackRef
) -> None:
    # A subnet outside the VPC's range: EC2 refuses it (InvalidSubnet.Range).
    with pytest.raises(OperationError) as caught:
        engine().up(ref, network(subnet_cidr="192.168.0.0/24"))

    message = str(caught.value)
    assert "CreateSubnet" in message and "InvalidSubnet.Range" in message
    assert "subnet" in message and caught.value.exit_code == 1
    assert len(tagged_vpcs(ec2)) == 1
    # The VPC made before the refusal is in the state, so destroy removes it.
    types = [r["type"] for r in checkpoint(ref)["checkpoint"]["latest"]["resources"]]
    assert "aws:ec2/vpc:Vpc" in types and "aws:ec2/subnet:Subnet" not in types
    assert engine().exists(ref)

    assert engine().destroy(ref) is True
    assert tagged_vpcs(ec2) == []


def test_sigterm_during_up_finishes_what_is_in_flight_and_keeps_it_in_the_state(
    ec2: Any, ref: StackRef
) -> None:
    from mapt.core import Terminated, stop, stopping_on_signals

    class StoppedDuringCreate(Vpc):
        def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
            made = super().create(aws, name, inputs)
            stop(signal.SIGTERM)  # as the CLI's handler does when CI cancels the job
            return made

    with stopping_on_signals(), pytest.raises(Terminated) as caught:
        engine({**KINDS, Vpc.type_token: StoppedDuringCreate()}).up(ref, network())

    assert caught.value.exit_code == 143
    # The VPC being made when the signal came is finished and recorded; nothing after it.
    assert len(tagged_vpcs(ec2)) == 1 and subnets(ec2) == []
    types = [r["type"] for r in checkpoint(ref)["checkpoint"]["latest"]["resources"]]
    assert "aws:ec2/vpc:Vpc" in types and "aws:ec2/subnet:Subnet" not in types
    assert engine().destroy(ref) is True and tagged_vpcs(ec2) == []


def test_a_type_without_a_kind_fails_up_naming_the_type(ec2: Any, ref: StackRef) -> None:
    without_subnets = {k: v for k, v in KINDS.items() if k != "aws:ec2/subnet:Subnet"}

    with pytest.raises(OperationError) as caught:
        engine(without_subnets).up(ref, network())

    assert "aws:ec2/subnet:Subnet" in str(caught.value)
    assert subnets(ec2) == []
    # What was made is recorded: the full engine can destroy it.
    assert engine().destroy(ref) is True and tagged_vpcs(ec2) == []


def test_secret_values_are_encrypted_with_the_stacks_passphrase(
    ec2: Any, ref: StackRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = engine().up(ref, network(secret=True))

    assert outputs["password"] == SECRET_VALUE
    state = tmp_path / "state"
    text = (state / ".pulumi/stacks/demo/host-demo.json").read_text()
    assert SECRET_VALUE not in text
    assert "4dabf18193072939515e22adb298388d" in text and "ciphertext" in text
    passphrase = state / PASSPHRASE_FILE_NAME  # made as for the Pulumi engine, private
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    ssm = boto3.client("ssm", region_name=REGION)
    stored = ssm.get_parameter(Name="/mapt/demo/password", WithDecryption=True)
    assert stored["Parameter"]["Value"] == SECRET_VALUE
    # Read back and re-run: the recorded secret input compares equal, nothing is remade.
    assert engine().outputs(ref)["password"] == SECRET_VALUE
    assert engine().preview(ref, network(secret=True)).changes == {"same": 3}
    # [summary] reads plain outputs only, without the passphrase.
    [summary] = list_stacks(ref.backend_url)
    assert "password" not in summary.outputs and "vpc_id" in summary.outputs

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not the one")
    assert engine().exists(ref)  # telling a stack exists decrypts nothing
    with pytest.raises(PrerequisiteError) as caught:
        engine().outputs(ref)
    assert caught.value.exit_code == 5 and "not the one" not in str(caught.value)


@pytest.mark.parametrize(
    ("corrupted", "message"),
    [
        ("v1:not*base64:AAAA", "a secret in the stack's state is not base64"),
        ("v1:AAAA:AAAAAAAAAAAAAAAAAAAAAA==", "has a 3-byte nonce, which AES-GCM cannot use"),
    ],
    ids=["not-base64", "short-nonce"],
)
def test_a_corrupted_secret_is_corrupt_state_not_another_passphrase(
    ec2: Any, ref: StackRef, tmp_path: Path, corrupted: str, message: str
) -> None:
    """No passphrase opens a ciphertext that is not one: exit 1, not "set another
    passphrase" (exit 5), which would send the user after a passphrase that is right."""
    engine().up(ref, network(secret=True))
    path = tmp_path / "state/.pulumi/stacks/demo/host-demo.json"
    document = json.loads(path.read_text())
    [stack] = [r for r in document["checkpoint"]["latest"]["resources"] if "Stack" in r["type"]]
    stack["outputs"]["password"]["ciphertext"] = corrupted
    path.write_text(json.dumps(document))

    with pytest.raises(OperationError) as caught:
        engine().outputs(ref)
    assert not isinstance(caught.value, PrerequisiteError)
    assert caught.value.exit_code == 1 and message in str(caught.value)


def test_a_kms_secrets_provider_is_refused_before_anything_is_made(ec2: Any, ref: StackRef) -> None:
    kms = SandboxEngine(KINDS, INVOKES, secrets_provider="awskms://alias/mapt")

    with pytest.raises(InputError) as caught:
        kms.up(ref, network(secret=True))

    assert "awskms://alias/mapt" in str(caught.value)


def test_a_stack_lock_refuses_the_run_until_force_unlock(ec2: Any, ref: StackRef) -> None:
    engine().up(ref, network(with_subnet=False))
    assert ref.backend_url is not None
    locks = (
        Path(ref.backend_url.removeprefix("file://")) / ".pulumi/locks/organization/demo/host-demo"
    )
    assert list(locks.glob("*.json")) == []  # the run's own lock is gone
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "left-by-a-killed-run.json").write_text("{}")

    with pytest.raises(StateLockedError):
        engine().up(ref, network())
    with pytest.raises(StateLockedError):
        engine().destroy(ref)
    [summary] = list_stacks(ref.backend_url)
    assert len(summary.locks) == 1
    # A dry run over the sandbox's state reports the lock it would remove, and keeps it.
    assert DryRunEngine(reader=engine()).force_unlock(ref) == list(summary.locks)
    assert len(list_stacks(ref.backend_url)[0].locks) == 1

    assert len(engine().force_unlock(ref)) == 1
    assert engine().destroy(ref) is True
    assert tagged_vpcs(ec2) == []


def test_a_uid_without_a_passwd_entry_runs_and_its_lock_names_the_uid(
    ec2: Any, ref: StackRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container's arbitrary uid has no passwd entry (``getpass.getuser`` raises
    ``KeyError``): the stack's lock note names it ``uid<N>``, as the project lock does."""
    import pwd

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # getpass.getuser reads these first
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert ref.backend_url is not None
    locks = (
        Path(ref.backend_url.removeprefix("file://")) / ".pulumi/locks/organization/demo/host-demo"
    )
    notes: list[dict[str, Any]] = []

    def program() -> None:  # runs while the run holds its lock
        notes.extend(json.loads(lock.read_text()) for lock in locks.glob("*.json"))
        network(with_subnet=False)()

    engine().up(ref, program)
    assert [note["username"] for note in notes] == [f"uid{os.getuid()}"]
    assert engine().destroy(ref) is True
    assert tagged_vpcs(ec2) == []


def test_an_unreadable_checkpoint_is_an_error_not_an_absent_stack(ec2: Any, ref: StackRef) -> None:
    engine().up(ref, network(with_subnet=False))
    assert ref.backend_url is not None
    path = Path(ref.backend_url.removeprefix("file://")) / ".pulumi/stacks/demo/host-demo.json"
    path.write_text("{not json")

    for operation in (engine().exists, engine().destroy):
        with pytest.raises(OperationError) as caught:
            operation(ref)
        assert str(path) in str(caught.value)
    with pytest.raises(OperationError):
        engine().up(ref, network())
    assert len(tagged_vpcs(ec2)) == 1  # nothing was made twice


def test_a_project_folder_that_cannot_be_listed_is_an_error_not_an_absent_stack(
    ec2: Any, ref: StackRef
) -> None:
    engine().up(ref, network(with_subnet=False))
    assert ref.backend_url is not None
    folder = Path(ref.backend_url.removeprefix("file://")) / ".pulumi/stacks/demo"

    def exists_error() -> str:
        with pytest.raises(OperationError) as caught:
            engine().exists(ref)
        return caught.value.message

    folder.chmod(0)
    try:
        message = without_dac_override(exists_error)
    finally:
        folder.chmod(0o755)
    assert message == f"cannot list the state in {folder}: Permission denied"
    assert engine().exists(ref)  # readable again: the stack was there all along


@pytest.fixture
def bucket(aws: ApiCallLog, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mapt-state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "shared by every runner")
    yield "mapt-state"


def test_state_in_an_s3_backend(ec2: Any, bucket: str) -> None:
    ref = StackRef("demo", "host", f"s3://{bucket}/ci")

    outputs = engine().up(ref, network(secret=True))

    s3 = boto3.client("s3", region_name="us-east-1")
    body = s3.get_object(Bucket=bucket, Key="ci/.pulumi/stacks/demo/host-demo.json")["Body"].read()
    assert SECRET_VALUE.encode() not in body
    [summary] = list_stacks(ref.backend_url)
    assert summary.outputs["vpc_id"] == outputs["vpc_id"]
    assert engine().outputs(ref)["password"] == SECRET_VALUE
    assert engine().destroy(ref) is True
    assert tagged_vpcs(ec2) == [] and list_stacks(ref.backend_url) == []


class RefreshableSubnet(Subnet):
    """A subnet kind that can say whether its subnet still exists (a refresh's read)."""

    def exists(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> bool:
        found = aws.client("ec2").describe_subnets(Filters=[{"Name": "subnet-id", "Values": [id]}])
        return bool(found["Subnets"])


def test_up_with_refresh_makes_again_what_the_endpoint_no_longer_has(
    ec2: Any, ref: StackRef
) -> None:
    refreshing = engine({**KINDS, Subnet.type_token: RefreshableSubnet()})
    before = refreshing.up(ref, network())
    ec2.delete_subnet(SubnetId=before["subnet_id"])  # behind the engine's back

    # Without refresh the state is believed, as Pulumi believes it.
    assert refreshing.up(ref, network()) == before
    assert subnets(ec2) == []

    after = refreshing.up(ref, network(), refresh=True)
    [subnet] = subnets(ec2)
    assert after["subnet_id"] == subnet["SubnetId"] != before["subnet_id"]
    assert after["vpc_id"] == before["vpc_id"]  # what still exists is kept
    ids = [r.get("id") for r in checkpoint(ref)["checkpoint"]["latest"]["resources"]]
    assert before["subnet_id"] not in ids and after["subnet_id"] in ids
