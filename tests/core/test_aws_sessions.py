"""``aws_session``: boto3 sessions of one process share a botocore loader, nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.utils import parse_timestamp
from hypothesis import given
from hypothesis import strategies as st

from mapt.core import aws_session, default_aws_session, process_wide_sharing, shared_loader
from mapt.core._aws_sessions import parse_aws_timestamp, plain_json_files
from tests.harness.boto import botocore_as_shipped as as_shipped
from tests.harness.boto import record_class_builds, record_model_reads


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_second_session_parses_no_model_the_first_one_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = aws_session(), aws_session()
    first.client("autoscaling", region_name="eu-west-1")
    assert second._session.get_component("data_loader") is shared_loader()
    assert default_aws_session()._session.get_component("data_loader") is shared_loader()
    read = record_model_reads(monkeypatch.setattr)
    second.client("autoscaling", region_name="eu-west-2")
    assert read == []


def test_each_session_keeps_its_own_region_and_credentials() -> None:
    paris = aws_session(region_name="eu-west-3", aws_access_key_id="a", aws_secret_access_key="b")
    virginia = aws_session(region_name="us-east-1")
    assert (paris.region_name, virginia.region_name) == ("eu-west-3", "us-east-1")
    assert paris.get_credentials().access_key == "a"
    assert virginia.get_credentials().access_key == "testing"


def test_many_sessions_leave_the_loaders_search_paths_as_they_were() -> None:
    """A server makes a session per health check: boto3 adds its folder to the loader's
    paths at each, which must not pile up."""
    aws_session()
    before = list(shared_loader().search_paths)
    for _ in range(20):
        aws_session()
    assert shared_loader().search_paths == before


def test_a_session_configured_with_other_models_gets_a_loader_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = aws_session()._session.get_component("data_loader")
    assert loader is not shared_loader()
    assert str(tmp_path) in loader.search_paths


def test_the_plain_reader_reads_what_botocores_reads_as_dicts() -> None:
    """The shared loader's reader parses botocore's files as botocore's own does, keys in
    the same order, and knows the same extensions: one botocore added would be a file
    ``exists`` finds and the plain reader does not read."""
    from collections import OrderedDict

    import botocore.loaders
    from botocore.loaders import JSONFileLoader

    assert tuple(botocore.loaders._JSON_OPEN_METHODS) == (".json", ".json.gz")
    data = Path(botocore.loaders.Loader.BUILTIN_DATA_PATH)
    stems = [
        data / name for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration")
    ]
    for service in ("ec2", "autoscaling", "elbv2", "route53", "sqs", "pricing"):
        for version in sorted((data / service).iterdir()):
            stems += [version / f.name.split(".")[0] for f in version.iterdir()]
    stems.append(data / "no-such-file")
    botocores, plain = JSONFileLoader(), plain_json_files()()
    for stem in stems:
        theirs, ours = botocores.load_file(str(stem)), plain.load_file(str(stem))
        assert ours == theirs, stem
        assert json.dumps(ours) == json.dumps(theirs), f"key order differs in {stem}"
        assert not isinstance(ours, OrderedDict)
    assert len(stems) > 30


@pytest.fixture
def botocore_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    as_shipped(monkeypatch.setattr)


@pytest.mark.usefixtures("botocore_as_shipped")
def test_a_sessions_further_clients_of_a_service_reuse_its_first_clients_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ranking makes one EC2 client per region: botocore built a class of ~830 methods
    for each (most of a further client's CPU); one is built per session and service."""
    from moto import mock_aws

    session = aws_session()
    built = record_class_builds(monkeypatch.setattr)
    with mock_aws():
        clients = [session.client("ec2", region_name=r) for r in ("eu-west-1", "us-east-2")]
        zones = [c.describe_availability_zones()["AvailabilityZones"][0] for c in clients]
    assert built == ["ec2"]
    assert type(clients[0]) is type(clients[1])
    assert [c.meta.region_name for c in clients] == ["eu-west-1", "us-east-2"]
    assert [zone["RegionName"] for zone in zones] == ["eu-west-1", "us-east-2"]
    session.client("s3", region_name="eu-west-1")
    assert built == ["ec2", "s3"]


@pytest.mark.usefixtures("botocore_as_shipped")
def test_a_client_class_is_built_from_its_own_sessions_event_handlers() -> None:
    def add_marker(class_attributes: dict[str, object], **_: object) -> None:
        class_attributes["mapt_marker"] = True

    marked, plain = aws_session(), aws_session()
    marked.events.register("creating-client-class.ec2", add_marker)
    assert marked.client("ec2", region_name="eu-west-1").mapt_marker is True
    assert marked.client("ec2", region_name="eu-west-2").mapt_marker is True
    assert not hasattr(plain.client("ec2", region_name="eu-west-1"), "mapt_marker")


@pytest.mark.usefixtures("botocore_as_shipped")
def test_sessions_not_made_by_mapt_build_their_clients_as_botocore_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    aws_session().client("ec2", region_name="eu-west-1")  # reuse is installed by now
    users = boto3.Session()
    built = record_class_builds(monkeypatch.setattr)
    first = users.client("ec2", region_name="eu-west-1")
    second = users.client("ec2", region_name="eu-west-1")
    assert built == ["ec2", "ec2"]
    assert type(first) is not type(second)


@pytest.mark.usefixtures("botocore_as_shipped")
def test_clients_made_in_parallel_threads_share_one_class_and_model() -> None:
    from concurrent.futures import ThreadPoolExecutor

    session = aws_session()
    regions = session.get_available_regions("ec2")[:12]
    with ThreadPoolExecutor(max_workers=6) as pool:
        clients = list(pool.map(lambda r: session.client("ec2", region_name=r), regions))
    assert len({type(c) for c in clients}) == 1
    assert len({id(c.meta.service_model) for c in clients}) == 1
    assert [c.meta.region_name for c in clients] == regions


@pytest.mark.usefixtures("botocore_as_shipped")
def test_a_session_no_longer_used_goes_with_its_kept_classes() -> None:
    """The service makes a session per health check: what each keeps must not stay."""
    import gc
    import weakref

    emitters = []
    for region in ("eu-west-1", "eu-west-2", "eu-west-3"):
        session = aws_session()
        session.client("ec2", region_name=region)
        emitters.append(weakref.ref(session._session.get_component("event_emitter")))
        del session
    gc.collect()
    assert [ref() for ref in emitters] == [None, None, None]


def _refused_at_once(count: int = 6) -> list[str]:
    """The error codes of ``count`` clients' placement-score calls, refused on the wire
    at one moment, one thread each, as a refused ranking's score batches are."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError

    from tests.harness.spot_market import SpotMarket, installed

    market = SpotMarket(rows=[], score_errors={"*": "UnauthorizedOperation"}, on_the_wire=True)
    with installed(market.handlers()):
        session = aws_session()
        regions = session.get_available_regions("ec2")[:count]
        clients = [session.client("ec2", region_name=region) for region in regions]
        together = threading.Barrier(count)

        def refused(client: Any) -> str:
            together.wait()
            with pytest.raises(ClientError) as raised:
                client.get_spot_placement_scores(TargetCapacity=1, InstanceTypes=["m5.large"])
            return str(raised.value.response["Error"]["Code"])

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(refused, clients))


@pytest.mark.usefixtures("botocore_as_shipped")
def test_threads_whose_first_errors_arrive_together_build_the_exceptions_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused ranking's score batches fail together, one thread each: the session's
    exception classes (EC2's take 10 ms) were built by every one of them."""
    import time

    from botocore.errorfactory import ClientExceptionsFactory

    built: list[str] = []
    build = ClientExceptionsFactory._create_client_exceptions

    def slow(self: ClientExceptionsFactory, service_model: object) -> object:
        built.append(service_model.service_name)  # type: ignore[attr-defined]
        time.sleep(0.05)  # long enough for every thread to ask meanwhile
        return build(self, service_model)

    monkeypatch.setattr(ClientExceptionsFactory, "_create_client_exceptions", slow)
    assert _refused_at_once() == ["UnauthorizedOperation"] * 6
    assert built == ["ec2"]


@pytest.mark.usefixtures("botocore_as_shipped")
def test_threads_whose_first_errors_arrive_together_index_the_error_codes_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore reads an error answer's modeled fields through the model's index of
    error codes, built on the first error it parses (21 ms for EC2): the refused score
    batches of a ranking, answered together, each built it."""
    import time

    from botocore.model import ServiceModel
    from botocore.utils import CachedProperty

    indexed: list[str] = []
    index = ServiceModel.__dict__["_error_code_cache"]._fget

    def _error_code_cache(self: ServiceModel) -> object:
        indexed.append(self.service_name)
        time.sleep(0.05)  # long enough for every thread to ask meanwhile
        return index(self)

    monkeypatch.setattr(ServiceModel, "_error_code_cache", CachedProperty(_error_code_cache))
    assert _refused_at_once() == ["UnauthorizedOperation"] * 6
    assert indexed == ["ec2"]


def _botocore_model_as_shipped() -> Any:
    """A fresh copy of ``botocore.model``: its ``ServiceModel`` as botocore ships it,
    whatever mapt has installed over the imported one."""
    import importlib.util

    spec = importlib.util.find_spec("botocore.model")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_models_error_shapes_are_found_without_building_its_other_shapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore built all 4,400 shapes of the EC2 model (about 12 ms) to find its error
    shapes (none), on the first error answer a session parses: a refused ranking's."""
    from botocore.model import ServiceModel, ShapeResolver

    process_wide_sharing()
    built: list[str] = []
    build = ShapeResolver.get_shape_by_name

    def recording(self: ShapeResolver, name: str, member_traits: Any = None) -> Any:
        built.append(name)
        return build(self, name, member_traits)

    monkeypatch.setattr(ShapeResolver, "get_shape_by_name", recording)
    definition = shared_loader().load_service_model("ec2", "service-2")
    assert ServiceModel(definition, "ec2").error_shapes == []
    assert built == []


@pytest.mark.parametrize(
    "service", ["ec2", "s3", "sts", "iam", "pricing", "autoscaling", "elbv2", "dynamodb"]
)
def test_a_models_error_shapes_are_botocores_in_its_order(service: str) -> None:
    from botocore.model import ServiceModel

    process_wide_sharing()
    shipped = _botocore_model_as_shipped().ServiceModel
    definition = shared_loader().load_service_model(service, "service-2")
    ours = ServiceModel(definition, service)
    theirs = shipped(definition, service)
    assert [(e.name, e.error_code) for e in ours.error_shapes] == [
        (e.name, e.error_code) for e in theirs.error_shapes
    ]
    codes = [e.error_code for e in theirs.error_shapes] + ["NotAModeledCode"]
    for code in codes:
        found, expected = ours.shape_for_error_code(code), theirs.shape_for_error_code(code)
        assert (found and found.name) == (expected and expected.name)


def test_answers_timestamps_are_read_without_dateutil_and_equal_botocores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused ranking reads about a thousand spot-price timestamps: dateutil took
    70 to 86 us for each, on the ranking's critical path."""
    import boto3
    import botocore.parsers
    from moto import mock_aws

    # botocore's answer parsers' default (dateutil's parse, for every form); moto's
    # serializer calls botocore.utils.parse_timestamp on its own side, not counted here.
    parse = botocore.parsers.DEFAULT_TIMESTAMP_PARSER
    parsed: list[str] = []

    def counted(value: str) -> object:
        parsed.append(value)
        return parse(value)

    monkeypatch.setattr(botocore.parsers, "DEFAULT_TIMESTAMP_PARSER", counted)
    with mock_aws():
        ours = aws_session(region_name="eu-west-1").client("ec2")
        ours.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2)
        launched = ours.describe_instances()["Reservations"][0]["Instances"]
        prices = ours.describe_spot_price_history()["SpotPriceHistory"]
        assert parsed == [] and len(launched) == 2 and prices
        plain = boto3.Session(region_name="eu-west-1").client("ec2")
        as_botocore = plain.describe_instances()["Reservations"][0]["Instances"]
        assert parsed  # botocore's own parser read these, for the comparison below
        assert [i["LaunchTime"] for i in launched] == [i["LaunchTime"] for i in as_botocore]
        assert [p["Timestamp"] for p in prices] == [
            p["Timestamp"] for p in plain.describe_spot_price_history()["SpotPriceHistory"]
        ]


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    digits=st.sampled_from([0, 3, 6]),
)
def test_aws_iso_timestamps_read_as_botocore_reads_them(moment: datetime, digits: int) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    value = parse_aws_timestamp(text + "Z")
    assert value == parse_timestamp(text + "Z")
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T10:00:00+01:00",
        "Thu, 03 Dec 2026 10:00:00 GMT",
        "1764756000",
        "2026-12-03T10:00:00.123456789Z",
        "2026-12-03 10:00:00Z",
    ],
)
def test_other_timestamp_forms_are_read_by_botocore(text: str) -> None:
    assert parse_aws_timestamp(text) == parse_timestamp(text)


@pytest.mark.parametrize("text", ["2026-13-03T10:00:00.000Z", "not a time at all, Z", ""])
def test_an_unreadable_timestamp_raises_as_botocore_raises(text: str) -> None:
    with pytest.raises(ValueError, match="Invalid timestamp"):
        parse_timestamp(text)
    with pytest.raises(ValueError, match="Invalid timestamp"):
        parse_aws_timestamp(text)


def test_a_sessions_further_clients_alias_no_event_name_its_first_one_aliased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each client's emitter is a copy of its session's: botocore started each copy's
    cache of aliased event names empty, so every client of a ranking worked them out."""
    from botocore.hooks import EventAliaser
    from botocore.stub import Stubber

    worked_out: list[str] = []
    alias = EventAliaser._alias_event_name

    def recording(self: EventAliaser, event_name: str) -> str:
        if event_name not in self._alias_name_cache:
            worked_out.append(event_name)
        return alias(self, event_name)  # type: ignore[no-any-return]

    monkeypatch.setattr(EventAliaser, "_alias_event_name", recording)
    session = aws_session()

    def a_call(region: str) -> None:
        client = session.client("ec2", region_name=region)
        with Stubber(client) as stubbed:
            stubbed.add_response("describe_availability_zones", {"AvailabilityZones": []})
            client.describe_availability_zones()

    a_call("eu-west-1")
    assert worked_out  # the first client worked its names out
    worked_out.clear()
    a_call("eu-west-2")
    assert worked_out == []
