"""Each harness fixture proves it works, so a broken fixture fails here, not everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest

from tests.harness.pulumi_mocks import FAKE_AMI_ID
from tests.harness.spot_market import (
    UNSUPPORTED_FOR_SCORES,
    ApiCallLog,
    SpotMarket,
    installed,
    market_echo,
)


def test_aws_fixture_serves_moto_with_strict_validation(aws: ApiCallLog) -> None:
    ec2 = boto3.client("ec2", region_name="eu-north-1")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert {z["ZoneName"] for z in zones} == {"eu-north-1a", "eu-north-1b", "eu-north-1c"}
    # Instance-type validation is on: an unknown type is refused as AWS would.
    image = ec2.register_image(Name="mapt-test-image", RootDeviceName="/dev/sda1")["ImageId"]
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidParameterValue|instance type"):
        ec2.run_instances(ImageId=image, InstanceType="m5.bogus", MinCount=1, MaxCount=1)
    assert aws.count("DescribeAvailabilityZones") == 1
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_moto_serializes_an_instance_type_answer_once_and_still_checks_each_request(
    aws: ApiCallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tests/harness/moto_instance_types.py``: the same request is answered from the
    kept answer, a different one is moto's own, and a bad one is still moto's error."""
    from moto.core.responses import ActionResult

    serialized: list[object] = []
    original = ActionResult.execute_result

    def counted(self: ActionResult, context: object) -> object:
        serialized.append(self.result)
        return original(self, context)  # type: ignore[arg-type]

    monkeypatch.setattr(ActionResult, "execute_result", counted)
    ec2 = boto3.client("ec2", region_name="us-east-1")

    def names(**filters: str) -> list[str]:
        wanted = [{"Name": name, "Values": [value]} for name, value in filters.items()]
        answer = ec2.describe_instance_types(Filters=wanted)
        return sorted(t["InstanceType"] for t in answer["InstanceTypes"])

    shape = {"vcpu-info.default-vcpus": "2", "memory-info.size-in-mib": "8192"}
    first = names(**shape)
    assert "m5.large" in first and names(**shape) == first
    assert len(serialized) == 1  # the second answer was the kept one
    bigger = names(**{**shape, "vcpu-info.default-vcpus": "4"})
    assert "m5.large" not in bigger and "m5.large" in names(**shape)
    assert len(serialized) == 2  # another request: moto's own answer
    with pytest.raises(ec2.exceptions.ClientError, match="InvalidParameterValue"):
        names(**{"no-such-filter": "1"})
    with pytest.raises(ec2.exceptions.ClientError, match="InvalidParameterValue"):
        names(**{"no-such-filter": "1"})
    assert aws.count("DescribeInstanceTypes") == 6


def test_market_serves_the_newest_price_of_a_known_row(spot_market: SpotMarket) -> None:
    # tests/data/spot-market.csv.gz: c5.12xlarge,,,48.0,96.0,,2.71932,1.012095,af-south-1,afs1-az1
    row = spot_market.row("c5.12xlarge", "afs1-az1")
    assert row.spot_price == "1.012095"
    ec2 = boto3.client("ec2", region_name="af-south-1")
    history = ec2.describe_spot_price_history(
        InstanceTypes=["c5.12xlarge"],
        ProductDescriptions=["Linux/UNIX"],
        StartTime=spot_market.now - timedelta(hours=1),
    )["SpotPriceHistory"]
    in_zone = [h for h in history if h["AvailabilityZone"] == spot_market.az_name("afs1-az1")]
    # Newest first; the point three hours old is outside the window asked for.
    assert [h["SpotPrice"] for h in in_zone] == ["1.012095", "1.265119"]
    assert spot_market.az_name("afs1-az1").startswith("af-south-1")


def test_market_paginates_like_aws(spot_market: SpotMarket) -> None:
    spot_market.page_size = 7
    ec2 = boto3.client("ec2", region_name="eu-north-1")
    pages = list(
        ec2.get_paginator("describe_spot_price_history").paginate(
            ProductDescriptions=["Linux/UNIX"], StartTime=spot_market.now - timedelta(hours=1)
        )
    )
    items = [item for page in pages for item in page["SpotPriceHistory"]]
    expected_rows = [r for r in spot_market.rows if r.region == "eu-north-1" and r.spot_price]
    assert len(pages) > 1
    assert len(items) == 2 * len(expected_rows)  # two points per row within the hour
    assert all(len(page["SpotPriceHistory"]) <= 7 for page in pages)


def test_market_filters_by_product_description(spot_market: SpotMarket) -> None:
    ec2 = boto3.client("ec2", region_name="eu-north-1")
    windows = ec2.describe_spot_price_history(ProductDescriptions=["Windows"])
    assert windows["SpotPriceHistory"] == []


def test_market_serves_given_placement_scores_best_first(spot_market: SpotMarket) -> None:
    spot_market.scores = {"eun1-az1": 9, "eun1-az2": 3, "use1-az4": 7}
    ec2 = boto3.client("ec2", region_name="us-east-1")
    scores = ec2.get_spot_placement_scores(
        InstanceTypes=["m5.large", "m6i.large", "c5.large"],
        TargetCapacity=1,
        SingleAvailabilityZone=True,
        RegionNames=["eu-north-1", "us-east-1"],
    )["SpotPlacementScores"]
    assert [(s["AvailabilityZoneId"], s["Score"]) for s in scores] == [
        ("eun1-az1", 9),
        ("use1-az4", 7),
        ("eun1-az2", 3),
    ]
    assert spot_market.calls_to("GetSpotPlacementScores")[0].region == "us-east-1"


def test_market_can_refuse_placement_scores_in_a_region(spot_market: SpotMarket) -> None:
    spot_market.score_errors = {"us-east-1": "UnauthorizedOperation"}
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with pytest.raises(ec2.exceptions.ClientError, match="UnauthorizedOperation"):
        ec2.get_spot_placement_scores(InstanceTypes=["m5.large"], TargetCapacity=1)


def _market_answers(market_rows: list, now: datetime, **market_options: object) -> list[object]:  # type: ignore[type-arg]
    """[request IDs, and the answers to] a spot price history, a placement score and a
    Pricing call, and a refused placement score call, asked of a market."""
    market = SpotMarket(rows=market_rows, scores={"eun1-az1": 9}, now=now, **market_options)
    with installed(market.handlers()):
        ec2 = boto3.client("ec2", region_name="eu-north-1")
        pricing = boto3.client("pricing", region_name="us-east-1")
        answers: list[object] = [
            ec2.describe_spot_price_history(
                InstanceTypes=["m5.large", "c5.large"],
                ProductDescriptions=["Linux/UNIX"],
                StartTime=market.now - timedelta(hours=1),
            ),
            ec2.get_spot_placement_scores(
                InstanceTypes=["m5.large"], TargetCapacity=1, SingleAvailabilityZone=True
            ),
            pricing.get_products(
                ServiceCode="AmazonEC2",
                Filters=[{"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large"}],
            ),
        ]
        market.score_errors = {"*": "UnauthorizedOperation"}
        with pytest.raises(ec2.exceptions.ClientError) as refused:
            ec2.get_spot_placement_scores(InstanceTypes=["m5.large"], TargetCapacity=1)
        answers.append(refused.value.response)
    ids = [answer.pop("ResponseMetadata", {}).get("RequestId") for answer in answers]  # type: ignore[attr-defined]
    return [ids, *answers]


def test_the_market_on_the_wire_answers_what_it_answers_in_process(
    aws: ApiCallLog,
    market_rows: list,  # type: ignore[type-arg]
) -> None:
    """``on_the_wire``: botocore parses the market's answers from EC2's XML and Pricing's
    JSON (their request IDs say so) into what the in-process market hands it, errors
    included."""
    now = datetime.now(timezone.utc).replace(microsecond=0)  # AWS's stamps end at ms
    in_process = _market_answers(market_rows, now)
    on_the_wire = _market_answers(market_rows, now, on_the_wire=True)
    assert on_the_wire[0] == ["market"] * 4 and in_process[0] == [None] * 4
    assert on_the_wire[1:] == in_process[1:]
    history = on_the_wire[1]["SpotPriceHistory"]  # type: ignore[index]
    assert history and all(item["Timestamp"].tzinfo for item in history)
    assert on_the_wire[2]["SpotPlacementScores"]  # type: ignore[index]
    assert on_the_wire[3]["PriceList"]  # type: ignore[index]
    assert on_the_wire[4]["Error"]["Code"] == "UnauthorizedOperation"  # type: ignore[index]


def test_the_market_over_http_sends_each_request_and_answers_what_it_answers_in_process(
    market_rows: list,  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``over_http``: each request reaches a server (on 127.0.0.1) whose ``market_echo``
    answers with the status and the length the market's answer has; botocore parses the
    market's answer in its place, so the client pays for the connection and the bytes."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    echoed: list[tuple[str, int]] = []

    def nothing_else(environ: dict[str, object], start_response: object) -> list[bytes]:
        raise AssertionError(f"not a market request: {environ.get('HTTP_X_AMZ_TARGET')}")

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        def started(status: str, headers: list[tuple[str, str]]) -> Any:
            echoed.append((status, int(dict(headers)["Content-Length"])))
            return start_response(status, headers)

        return market_echo(nothing_else)(environ, started)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, recording, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        in_process = _market_answers(market_rows, now)
        over_http = _market_answers(market_rows, now, on_the_wire=True, over_http=True)
    finally:
        server.shutdown()
        server.server_close()
    assert over_http[0] == ["market"] * 4
    assert over_http[1:] == in_process[1:]
    assert [status.split()[0] for status, _ in echoed] == ["200", "200", "200", "400"]
    assert all(length > 100 for _, length in echoed)  # the answers' bytes went over the wire
    with pytest.raises(ValueError, match="needs on_the_wire"):
        SpotMarket(rows=market_rows, over_http=True)


def test_call_log_counts_every_call(aws: ApiCallLog) -> None:
    ec2 = boto3.client("ec2", region_name="us-west-2")
    ec2.describe_regions()
    ec2.describe_regions()
    assert aws.count("DescribeRegions") == 2
    assert aws.calls[-1].region == "us-west-2"


def test_pulumi_mocks_record_resources_invokes_and_outputs(pulumi_mocks) -> None:  # type: ignore[no-untyped-def]
    def program() -> None:
        import pulumi_aws as aws

        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=["309956199498"],
            filters=[{"name": "name", "values": ["RHEL-9.4*"]}],
        )
        vpc = aws.ec2.Vpc("network", cidr_block="10.0.0.0/16")
        pulumi.export("vpc_id", vpc.id)
        pulumi.export("ami", ami.id)
        pulumi.export("password", pulumi.Output.secret("not-shown"))

    run = pulumi_mocks.run(program)
    assert [(r.type, r.name) for r in run.resources] == [("aws:ec2/vpc:Vpc", "network")]
    assert run.resources[0].inputs["cidrBlock"] == "10.0.0.0/16"
    assert run.invocations[0].token == "aws:ec2/getAmi:getAmi"
    assert run.invocations[0].args["owners"] == ["309956199498"]
    assert run.plain_outputs() == {
        "vpc_id": "network-id",
        "ami": FAKE_AMI_ID,
        "password": "not-shown",
    }
    assert run.outputs["password"].secret and not run.outputs["vpc_id"].secret


def test_pulumi_mocks_fail_an_unanswered_invoke(pulumi_mocks) -> None:  # type: ignore[no-untyped-def]
    def program() -> None:
        import pulumi_aws as aws

        pulumi.export("zones", aws.get_availability_zones_output().names)

    with pytest.raises(Exception, match="getAvailabilityZones"):
        pulumi_mocks.run(program)


def test_pulumi_runs_are_independent(pulumi_mocks) -> None:  # type: ignore[no-untyped-def]
    def program() -> None:
        pulumi.export("n", 1)

    def other() -> None:
        pulumi.export("m", 2)

    assert pulumi_mocks.run(program).plain_outputs() == {"n": 1}
    assert pulumi_mocks.run(other).plain_outputs() == {"m": 2}


def test_sessions_share_one_loader_and_client_class_but_not_client_state(
    aws: ApiCallLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = boto3.Session(), boto3.Session()
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    assert loader.search_paths.count(loader.search_paths[-1]) == 1  # boto3 appends per session
    west = first.client("ec2", region_name="us-west-2")
    north = second.client("ec2", region_name="eu-north-1")
    assert type(west) is type(north) and west.meta.service_model is north.meta.service_model
    # Region, endpoint and event hooks stay per client: a hook on one is not on the other.
    seen: list[str] = []
    west.meta.events.register("before-call.ec2.DescribeRegions", lambda **_: seen.append("west"))
    north.describe_regions()
    west.describe_regions()
    assert seen == ["west"] and "eu-north-1" in north.meta.endpoint_url
    assert [c.region for c in aws.calls[-2:]] == ["eu-north-1", "us-west-2"]
    # Other service models (AWS_DATA_PATH) get a loader of their own.
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    assert boto3.Session()._session.get_component("data_loader") is not loader


def test_refusing_moto_refuses_launches_in_the_listed_zones_as_aws_words_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mapt.targets.aws import launch_failure
    from tests.conftest import FAKE_CREDENTIALS
    from tests.harness.refusing_moto import _expect
    from tests.harness.sandbox_service import sandbox_endpoint

    zones = tmp_path / "refused-zones"
    zones.write_text("us-east-1a\n")
    with sandbox_endpoint(zones) as endpoint:
        for name, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(name, value)
        session = boto3.Session(region_name="us-east-1")
        ec2, autoscaling = session.client("ec2"), session.client("autoscaling")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        image = ec2.describe_images()["Images"][0]  # the sandbox's images
        template = ec2.create_launch_template(
            LaunchTemplateName="refusal",
            LaunchTemplateData={"ImageId": image["ImageId"], "InstanceType": "m5.large"},
        )["LaunchTemplate"]["LaunchTemplateId"]

        def group(name: str, zone: str, cidr: str) -> list[str]:
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"][
                "SubnetId"
            ]
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=1, MaxSize=1, DesiredCapacity=1,
                VPCZoneIdentifier=subnet, LaunchTemplate={"LaunchTemplateId": template},
            )  # fmt: skip
            [found] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
                "AutoScalingGroups"
            ]
            return [i["InstanceId"] for i in found["Instances"]]

        # The listed zone launches nothing, and says why as AWS does: mapt reads a
        # capacity refusal from it.
        assert group("refused", "us-east-1a", "10.0.1.0/24") == []
        refusal = launch_failure(session, "us-east-1", "refused")
        assert refusal is not None and refusal.capacity_failure
        assert refusal.reason_code == "InsufficientInstanceCapacity"
        # Another zone launches, with no failed activity; until the file lists it too.
        [launched] = group("served", "us-east-1b", "10.0.2.0/24")
        assert launch_failure(session, "us-east-1", "served") is None
        zones.write_text("us-east-1a\nus-east-1b\n")
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=launched, ShouldDecrementDesiredCapacity=False
        )
        [served] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["served"])[
            "AutoScalingGroups"
        ]
        assert served["Instances"] == []
        assert launch_failure(session, "us-east-1", "served") is not None
    # A moto whose structure changed stops the harness, instead of launching everywhere.
    with pytest.raises(RuntimeError, match="changed the groups' launch"):
        _expect(lambda self, count: None, ["self", "count_needed"], "the groups' launch")


def test_the_market_refuses_the_score_fields_the_ec2_model_documents_as_unsupported() -> None:
    """``UNSUPPORTED_FOR_SCORES`` is what botocore's EC2 model says of GetSpotPlacementScores:
    a field AWS refuses there is refused by the replayed market too, and no other."""
    import re

    import botocore.session

    shape = (
        botocore.session.get_session()
        .get_service_model("ec2")
        .shape_for("InstanceRequirementsRequest")
    )
    documented = {
        name
        for name, member in shape.members.items()
        if re.search(
            r"not supported for\s+GetSpotPlacementScores",
            re.sub(r"<[^>]+>", "", member.documentation),
        )
    }
    assert documented == UNSUPPORTED_FOR_SCORES
