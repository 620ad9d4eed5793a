"""One botocore data loader and one client class per service for the whole test run.

mapt makes a new ``boto3.Session()`` per command, and every spot allocation creates an
EC2 client per usable region (about twenty under moto). That is right for one CLI
run, but across ~600 tests it dominated the suite: each new session parsed the EC2
service model again (a 4 MB JSON), and each client built its class again (one method
per EC2 operation, about 800), with the garbage collection all those objects caused.

``shared_botocore()`` keeps both for the run, without changing what a client does (mapt
itself keeps the model and class per session, ``mapt.core.aws_session``; this keeps
them across the run's sessions):

- every botocore session gets the same ``Loader`` (its cache holds the parsed models),
  unless ``AWS_DATA_PATH`` asks for other models;
- a ``ServiceModel`` is made once per parsed model (read-only; it caches the operation
  models, which every client otherwise rebuilt to look for endpoint discovery);
- a client class is built once per (service model, class-creation handlers): the
  class holds only the operation methods, while credentials, region, endpoint, retry
  handlers and event hooks (moto's, the call log's, the market's) live on each client
  object and are created per client as before;
- the loaded models are moved out of the garbage collector's sight (``gc.freeze``):
  they live for the whole run, so scanning them again in every full collection is
  waste.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# The credentials every test's boto3 finds (moto accepts any); here, not in the
# conftest, so that a test server's worker processes get them without importing pytest.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# botocore's own two ClientCreator methods that ``shared_botocore`` replaces, as it
# found them: a test of mapt's per-session reuse (``mapt.core.aws_session``) puts them
# back, since the run-wide reuse here would hide what mapt's does.
SHIPPED_CLIENT_CREATOR: dict[str, Callable[..., Any]] = {}
# Services the suite's clients use; loading them up front lets gc.freeze() cover them.
PRELOADED = ("ec2", "s3", "sts", "autoscaling", "elbv2", "pricing")


class _UniquePaths(list):  # type: ignore[type-arg]
    """A loader's search paths: boto3 appends its data folder for every new session."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


def _class_key(creator: Any, service_model: Any) -> tuple[Any, ...]:
    """What a client class depends on: the model and the class-creation handlers."""
    event = f"creating-client-class.{service_model.service_id.hyphenize()}"
    emitter = getattr(creator._event_emitter, "_emitter", creator._event_emitter)
    return id(service_model), tuple(emitter._handlers.prefix_search(event))


@contextmanager
def shared_botocore(preloaded: tuple[str, ...] = PRELOADED) -> Iterator[None]:
    """Share the loader and client classes across sessions until the block ends
    (``preloaded``: the services whose model and client class are made up front)."""
    import botocore.client
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()
    loader._search_paths = _UniquePaths(loader.search_paths)
    session_class = botocore.session.Session
    creator_class = botocore.client.ClientCreator
    original_register: Callable[..., None] = session_class._register_data_loader
    original_model: Callable[..., Any] = creator_class._load_service_model
    original_class: Callable[..., type] = creator_class._create_client_class
    SHIPPED_CLIENT_CREATOR.setdefault("_load_service_model", original_model)
    SHIPPED_CLIENT_CREATOR.setdefault("_create_client_class", original_class)
    # Keyed by id() of objects the values keep alive, so an id is never reused.
    models: dict[tuple[str, int], Any] = {}
    classes: dict[tuple[Any, ...], tuple[Any, type]] = {}

    def register_data_loader(session: Any) -> None:
        def create() -> Any:
            data_path = session.get_config_variable("data_path")
            return botocore.loaders.create_loader(data_path) if data_path else loader

        session._components.lazy_register_component("data_loader", create)

    def load_service_model(creator: Any, service_name: str, api_version: Any = None) -> Any:
        # The call botocore makes (the loader caches by its arguments, as given).
        parsed = creator._loader.load_service_model(
            service_name, "service-2", api_version=api_version
        )
        key = (service_name, id(parsed))
        if key not in models:
            models[key] = original_model(creator, service_name, api_version)
        return models[key]

    def create_client_class(creator: Any, service_name: str, service_model: Any) -> type:
        key = _class_key(creator, service_model)
        if key not in classes:
            classes[key] = (service_model, original_class(creator, service_name, service_model))
        return classes[key][1]

    session_class._register_data_loader = register_data_loader
    creator_class._load_service_model = load_service_model
    creator_class._create_client_class = create_client_class
    # mapt's own shared loader (``mapt.core.shared_loader``) is this one meanwhile, so
    # the sessions mapt makes use the models parsed here too.
    import mapt.core._aws_sessions as mapt_sessions

    mapt_loader, mapt_sessions._loader = mapt_sessions._loader, loader
    try:
        _preload(loader, preloaded)
        yield
    finally:
        mapt_sessions._loader = mapt_loader
        session_class._register_data_loader = original_register
        creator_class._load_service_model = original_model
        creator_class._create_client_class = original_class
        gc.unfreeze()


def _preload(loader: Any, services: tuple[str, ...]) -> None:
    import boto3

    session = boto3.Session(region_name="us-east-1")
    for service in services:
        loader.load_service_model(service, "service-2")
        session.client(
            service, aws_access_key_id="preload", aws_secret_access_key="preload"
        ).close()
    gc.collect()
    gc.freeze()


def record_model_reads(patch: Callable[[Any, str, Any], None] = setattr) -> list[tuple[str, str]]:
    """(thread name, file) of every botocore data file read from now on: through
    botocore's file loader and through mapt's plain-dict one, which the shared loader
    and ``Ec2Queries``' sessions read with. ``patch`` sets the two readers' wrappers:
    a ``monkeypatch.setattr`` undoes them after the test; the default keeps them (a
    child process's script)."""
    import threading

    from botocore.loaders import JSONFileLoader

    from mapt.core._aws_sessions import plain_json_files

    reads: list[tuple[str, str]] = []
    for reader in (JSONFileLoader, plain_json_files()):

        def recorded(self: Any, file_path: str, load_file: Any = reader.load_file) -> Any:
            reads.append((threading.current_thread().name, str(file_path)))
            return load_file(self, file_path)

        patch(reader, "load_file", recorded)
    return reads


def botocore_as_shipped(patch: Callable[[Any, str, Any], None]) -> None:
    """botocore's ClientCreator as it ships, and mapt's reuse to be installed over it
    afresh (``patch``: a ``monkeypatch.setattr``): ``shared_botocore`` reuses client
    classes across every session of the run, which would hide what mapt does alone."""
    import functools

    from botocore.client import ClientCreator

    import mapt.core._aws_sessions as sessions

    assert set(SHIPPED_CLIENT_CREATOR) == {"_load_service_model", "_create_client_class"}
    for name, method in SHIPPED_CLIENT_CREATOR.items():
        patch(ClientCreator, name, method)
    fresh = functools.cache(sessions._client_class_reuse.__wrapped__)
    patch(sessions, "_client_class_reuse", fresh)


def record_class_builds(patch: Callable[[Any, str, Any], None]) -> list[str]:
    """The service names botocore builds a client class's methods for, from now on."""
    from botocore.client import ClientCreator

    built: list[str] = []
    build = ClientCreator._create_methods

    def recording(self: Any, service_model: Any) -> Any:
        built.append(service_model.service_name)
        return build(self, service_model)

    patch(ClientCreator, "_create_methods", recording)
    return built
