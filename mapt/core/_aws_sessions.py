"""boto3 sessions that share one botocore loader, so a process parses each model once.

botocore gives every session a loader of its own, and a session's first client of a
service parses that service's model (EC2's: 4 MB of JSON, 0.15 s of CPU on an idle
machine) and the endpoint data through it. A host operation's worker makes several
sessions (the sandbox engine's, the launch and readiness checks', one per health or
address look-up) besides boto3's default one (the allocation's): each parsed the same
files again, and that was a quarter of a sandbox create's worker CPU. ``aws_session``
and ``default_aws_session`` give a session the process's one loader
(``shared_loader``, through botocore's public ``register_component``), and the workers'
forkserver parses the models into it once for every worker
(``mapt.targets.aws._worker_models``).

A session's further clients of a service reuse its first one's client class and
service model (``_reuse_client_classes``). botocore builds both afresh for every client:
a method and a docstring object per operation (EC2 has about 830) and the model's
per-operation look-ups, 11 to 13 ms of a further EC2 client's 14 ms and three
quarters of its objects, which the garbage collector then walks. A cold ranking whose
placement scores are refused makes 33 clients, so that was about 0.4 s of CPU on its
critical path. The class is the session's: it is built from the session's event
handlers (``creating-client-class``), as botocore builds it, once: a handler registered
after a session's first client of a service does not reach its later clients of that
service, where botocore's would (mapt registers none).

Every HTTPS connection of a client loads the CA bundle again: urllib3 calls
``SSLContext.load_verify_locations`` each time it wraps a socket (urllib3 issue 3623,
open), and OpenSSL 3 takes about 40 ms of CPU to parse certifi's bundle. A ranking
opens at least a connection per client (11 when the scores are answered, 36 when they
are refused): 0.45 to 2 s of CPU against AWS, which an HTTP simulator never shows.
``_trust_store_shared`` gives botocore's HTTP sessions that verify with a CA bundle
and use no client or proxy certificate one context per bundle file (its path, size and
modification time), loaded on the first HTTPS connection that needs it, instead of a
context per client loaded per connection. Verification is unchanged: the same bundle,
``CERT_REQUIRED``, urllib3's own host name check; a bundle rewritten on disk gets a new
context on the next client.

A session's exception classes (``client.exceptions``, built from the model's error
shapes, 10 ms for EC2) are built once (``_exceptions_built_once``): botocore keeps them
per session, but threads whose clients get their first error answer at the same moment
(a ranking's placement-score batches, all refused together) each built them, four times
per refused ranking, on its critical path. The model's index of error codes, which
botocore builds on the first error answer it parses (21 ms for EC2), is built once for
the same reason, and from the model's error shapes alone: botocore built every shape
of the model to find them (``_error_codes_indexed_once``).

Timestamps in answers are parsed without dateutil (``parse_aws_timestamp``): botocore
hands every one to ``dateutil.parser.parse``, 70 to 86 us each, and a refused ranking's
spot-price history holds about a thousand (one per item), a tenth of a second of CPU
on its critical path. AWS writes them in one ISO 8601 form (``2026-12-03T10:00:00.000Z``),
which ``datetime.fromisoformat`` reads in 2 us; anything else goes to botocore's
parser. It is set on the sessions handed out here (through the session's public
``response_parser_factory`` component): ``aws_session``'s, and boto3's default session
once ``default_aws_session`` has adopted it, whose later clients in the process read
the same values through it; never on a ``boto3.Session`` a caller makes.

The loader only reads botocore's data files, so sharing it shares no credentials,
region or configuration: each session keeps its own, read when the session first
needs them. The shared loader is no session's, so making it reads no AWS config file
(a forkserver that made boto3's default session would hand every worker a snapshot of
the config files as they were when it started). boto3 imports here, on first use.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_loader: Any = None
# The attribute of a session's botocore event emitter (which every ClientCreator of the
# session holds) where its clients' models and classes are kept: (service name, API
# version asked) -> service model, and service model -> its client class (a
# ServiceModel compares by identity). On the emitter, not in a table keyed by it: a
# class's docstrings refer to the emitter, so a weak-keyed table would never let a
# session go; kept on it, they go with the session (the service makes one per check).
_KEPT = "_mapt_kept_clients"


def shared_loader() -> Any:
    """The process's botocore loader for sessions that name no models of their own.

    Made on first use as botocore makes a session's (its data, ``~/.aws/models``),
    reading the files into plain dicts (``plain_json_loader``).
    """
    global _loader
    with _lock:
        if _loader is None:
            from botocore.loaders import create_loader

            _loader = plain_json_loader(create_loader())
        return _loader


def aws_session(**options: Any) -> Any:
    """A new ``boto3.Session(**options)`` whose botocore loader is ``shared_loader()``,
    unless its configuration names other models (``AWS_DATA_PATH``, a profile's
    ``data_path``): then a loader of its own, as botocore makes one."""
    import boto3

    session = boto3.Session(**options)
    _make_shared(session)
    return session


def default_aws_session() -> Any:
    """boto3's default session (made now, if there is none), its loader the shared one
    under the same rule as ``aws_session``."""
    import boto3

    session = boto3._get_default_session()
    _make_shared(session)
    return session


def _make_shared(session: Any) -> None:
    """What ``aws_session`` and ``default_aws_session`` do to a session they hand out."""
    _share_loader(session)
    _reuse_client_classes(session)
    session._session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_aws_timestamp
    )


def client_config(session: Any, **options: Any) -> Any:
    """A botocore ``Config(**options)`` for the clients mapt makes from ``session``,
    telling botocore, when the environment names no proxy, that there is none.

    Without ``proxies`` in its config, botocore asks urllib for every client it makes
    (``get_environ_proxies``): on Linux two scans of every environment variable, 0.15
    ms each with 40 variables and about 0.4 ms with a CI runner's hundred, for each of
    the 34 clients of a refused ranking. Read here once instead, with the urllib
    function botocore's answer comes from (``getproxies``); a proxy named in the
    environment, or in the session's default client config, leaves ``proxies`` unset,
    so botocore's own choice (``no_proxy`` and all) stands.
    """
    import urllib.request

    from botocore.config import Config

    if "proxies" not in options and not urllib.request.getproxies():
        default = session._session.get_default_client_config()
        if default is None or default.proxies is None:
            options["proxies"] = {}
    return Config(**options)


def parse_aws_timestamp(value: Any) -> Any:
    """``value``, a timestamp in an AWS answer, as botocore's ``parse_timestamp`` reads it.

    AWS's ISO 8601 form in UTC (``YYYY-MM-DDTHH:MM:SS[.fff]Z``) is read by
    ``datetime.fromisoformat``, in UTC (``dateutil``'s ``tzutc``, the zone botocore gives
    it on a machine whose local zone is not UTC); every other form (an offset, RFC 822,
    epoch seconds) and anything ``fromisoformat`` refuses go to botocore, which reads
    it, or raises, as it always did.
    """
    if isinstance(value, str) and len(value) >= 20 and value[10] == "T" and value[-1] == "Z":
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=_utc())
        except ValueError:
            pass
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


@functools.cache
def _utc() -> Any:
    """dateutil's UTC zone, imported on the first answer read (dateutil comes with
    botocore; importing it takes 12 ms, which ``mapt --help`` does not pay)."""
    from dateutil.tz import tzutc  # type: ignore[import-untyped]  # botocore's dependency

    return tzutc()


def _share_loader(session: Any) -> None:
    from botocore.exceptions import BotoCoreError

    core = session._session  # the botocore session (boto3 keeps its own, resources', loader)
    try:
        own_models = core.get_config_variable("data_path")
    except BotoCoreError:  # a profile that does not exist, a config file that does not parse
        return  # the session's first client raises it, where it always did
    if not own_models:
        core.register_component("data_loader", shared_loader())


def _reuse_client_classes(session: Any) -> None:
    """Let ``session``'s clients of a service share one service model and client class.

    botocore's ``ClientCreator`` (one per ``create_client``) loads the model and builds
    the class in two methods of its own; ``_client_class_reuse`` wraps them, once per
    process, to keep what they return per session. Sessions not made here (a user's
    ``boto3.Session()`` in the same process) are left to botocore as they were. The
    first session made here also installs ``process_wide_sharing``.
    """
    process_wide_sharing()
    if not _client_class_reuse():
        return
    emitter = session._session.get_component("event_emitter")
    with _lock:
        if getattr(emitter, _KEPT, None) is None:
            setattr(emitter, _KEPT, {})


@functools.cache
def _client_class_reuse() -> bool:
    """Wrap ``ClientCreator``'s model loading and class building (True), once.

    False, with a debug line, when this botocore has not the two methods (their names
    are botocore's own, not its public API): clients are then built as botocore builds
    them, only slower. ``tests/core/test_aws_sessions.py`` fails on such a botocore.
    """
    from botocore.client import ClientCreator

    load_model = getattr(ClientCreator, "_load_service_model", None)
    build_class = getattr(ClientCreator, "_create_client_class", None)
    if load_model is None or build_class is None:
        _log.debug("this botocore's ClientCreator changed: client classes are not reused")
        return False

    def _load_service_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        kept = getattr(self._event_emitter, _KEPT, None)
        if kept is None:
            return load_model(self, service_name, api_version)
        model = kept.get((service_name, api_version))
        if model is None:  # two threads may both load it: the first one kept serves
            loaded = load_model(self, service_name, api_version)
            model = kept.setdefault((service_name, api_version), loaded)
        return model

    def _create_client_class(self: Any, service_name: str, service_model: Any) -> Any:
        kept = getattr(self._event_emitter, _KEPT, None)
        if kept is None:
            return build_class(self, service_name, service_model)
        client_class = kept.get(service_model)  # only a model kept above is found
        if client_class is None:
            built = build_class(self, service_name, service_model)
            client_class = kept.setdefault(service_model, built)
        return client_class

    setattr(ClientCreator, "_load_service_model", _load_service_model)  # noqa: B010
    setattr(ClientCreator, "_create_client_class", _create_client_class)  # noqa: B010
    return True


def process_wide_sharing() -> None:
    """Install, once, what mapt shares among every botocore session of the process:
    exception classes built once per session and service, a model's error codes indexed
    once, event names aliased once, each CA bundle loaded once.

    Neither changes what a session does, so it reaches sessions mapt did not make: the
    first session mapt makes installs it, and so does a ranking given a caller's own
    ``boto3.Session`` (``mapt.allocation``), which gains the bundle loaded once too.
    """
    _exceptions_built_once()
    _error_codes_indexed_once()
    _event_names_aliased_once()
    _trust_store_shared()


@functools.cache
def _exceptions_built_once() -> None:
    """Serialize botocore's ``ClientExceptionsFactory.create_client_exceptions``, once.

    The factory (one per session) keeps what it builds per service, but a thread that
    asks while another builds builds too; under a lock, the second one finds the first
    one's. It is asked once per client, so the lock is seldom waited on, and it changes
    what no session gets: every session's factory still builds its own classes.
    """
    from botocore.errorfactory import ClientExceptionsFactory

    create = ClientExceptionsFactory.create_client_exceptions
    building = threading.Lock()

    def create_client_exceptions(self: Any, service_model: Any) -> Any:
        with building:
            return create(self, service_model)

    ClientExceptionsFactory.create_client_exceptions = create_client_exceptions  # type: ignore[method-assign]


@functools.cache
def _error_codes_indexed_once() -> None:
    """Serialize botocore's ``ServiceModel.shape_for_error_code``, once, and let its
    ``error_shapes`` build only the shapes that are errors.

    botocore reads an error answer's modeled fields through it, and its first call on a
    model indexes every error shape of the model, an index the model then keeps. Threads
    whose first error answers arrive together (a refused ranking's score batches) each
    built the index; under a lock, the later ones find the first one's. Only error
    answers ask, and each model indexes once.

    The index comes from ``error_shapes``, which botocore finds by building a ``Shape``
    for every shape of the model and keeping those whose definition says
    ``exception``: for EC2, 4,400 shapes built (12-21 ms) to find none. The same list in
    the same order comes from reading that flag in the definitions and building only
    the shapes that have it (``Shape.metadata`` is those definitions' keys); the
    exception classes a client's session builds read the list too.
    """
    from botocore.model import ServiceModel
    from botocore.utils import CachedProperty

    look_up = ServiceModel.shape_for_error_code
    indexing = threading.Lock()

    def shape_for_error_code(self: Any, error_code: Any) -> Any:
        with indexing:
            return look_up(self, error_code)

    def error_shapes(self: Any) -> list[Any]:
        definitions = self._service_description.get("shapes", {})
        return [
            self.shape_for(name)
            for name in self.shape_names
            if definitions[name].get("exception", False)
        ]

    setattr(ServiceModel, "shape_for_error_code", shape_for_error_code)  # noqa: B010
    setattr(ServiceModel, "error_shapes", CachedProperty(error_shapes))  # noqa: B010


@functools.cache
def _event_names_aliased_once() -> None:
    """Let a copy of a botocore ``EventAliaser`` share the original's cache of names.

    Every client's event emitter is a copy of its session's, and botocore starts each
    copy with an empty cache of aliased event names: each of a ranking's 34 clients
    worked out again the 37 names its calls emit (each a walk over botocore's alias
    table, with a debug line for each renamed one), 1,274 look-ups per refused ranking.
    A name's alias depends only on the alias table, which the copy gets equal; the cache
    is shared only when it is.
    """
    from botocore.hooks import EventAliaser

    copy_aliaser = EventAliaser.__copy__

    def __copy__(self: Any) -> Any:
        copied = copy_aliaser(self)
        if copied._event_aliases == self._event_aliases:
            copied._alias_name_cache = self._alias_name_cache
        return copied

    setattr(EventAliaser, "__copy__", __copy__)  # noqa: B010


@dataclass
class _SharedTrust:
    """One CA bundle file as it was (size, modification time), and the SSL context that
    holds it, loaded on its first HTTPS connection (a session that never makes one,
    such as botocore's container-credentials fetcher, never pays for the bundle)."""

    bundle: str
    version: tuple[int, int]
    context: Any
    loaded: bool = False

    def load(self) -> bool:
        """Load the bundle into the context, once; False if it cannot be read now."""
        if self.loaded:  # every request asks: no lock once it is
            return True
        with _trust_lock:
            if not self.loaded:
                try:
                    self.context.load_verify_locations(self.bundle)
                except (OSError, ValueError):  # urllib3 then loads it and raises, as always
                    return False
                self.loaded = True
            return True


# CA bundle path -> its shared trust, the newest version of the file seen; its lock,
# held while a bundle loads (40 ms), is not the loader's.
_trusted: dict[str, _SharedTrust] = {}
_trust_lock = threading.Lock()
# The attribute of a botocore HTTP session whose context is a shared trust's.
_SHARED = "_mapt_shared_trust"


@functools.cache
def _trust_store_shared() -> bool:
    """Wrap botocore's ``URLLib3Session`` context and certificate set-up (True), once.

    Process-wide, like the exception lock: what a session verifies does not change,
    only how often the bundle is parsed, so a caller's own sessions in the process
    gain it too. False, with a debug line, when this botocore has not the two methods
    (their names are botocore's own): then every connection loads the bundle, as before.
    """
    from botocore.httpsession import URLLib3Session

    make_context = getattr(URLLib3Session, "_get_ssl_context", None)
    set_up_cert = getattr(URLLib3Session, "_setup_ssl_cert", None)
    if make_context is None or set_up_cert is None:
        _log.debug("this botocore's URLLib3Session changed: the CA bundle loads per connection")
        return False

    @functools.wraps(make_context)  # ``__wrapped__``: botocore's, for tests to put back
    def _get_ssl_context(self: Any) -> Any:
        bundle = _shareable_bundle(self)
        if bundle is None:
            return make_context(self)
        try:
            stat = os.stat(bundle)
        except OSError:  # urllib3 raises it on the first connection, as it always did
            return make_context(self)
        version = (stat.st_size, stat.st_mtime_ns)
        with _trust_lock:
            trust = _trusted.get(bundle)
            if trust is None or trust.version != version:
                trust = _trusted[bundle] = _SharedTrust(bundle, version, make_context(self))
        setattr(self, _SHARED, trust)
        return trust.context

    @functools.wraps(set_up_cert)
    def _setup_ssl_cert(self: Any, conn: Any, url: str, verify: Any) -> None:
        set_up_cert(self, conn, url, verify)
        trust = getattr(self, _SHARED, None)
        if trust is not None and conn.ca_certs == trust.bundle and trust.load():
            conn.ca_certs = None  # in the context already: urllib3 would load it again

    setattr(URLLib3Session, "_get_ssl_context", _get_ssl_context)  # noqa: B010
    setattr(URLLib3Session, "_setup_ssl_cert", _setup_ssl_cert)  # noqa: B010
    return True


def load_ca_bundle(session: Any) -> None:
    """Load the CA bundle ``session``'s clients verify with into its shared context now.

    For an entry point that waits on something else first (``models_loading``: a
    subprocess), or a forkserver whose workers then inherit it loaded: the 40 ms move
    off the first HTTPS request. Only ahead of use: a bundle that cannot be read is
    left for the first connection to load and raise, as it always did.
    """
    if not _trust_store_shared():
        return
    from botocore.httpsession import URLLib3Session

    # botocore's own choice, when a client names none: the profile's or AWS_CA_BUNDLE's
    # ``ca_bundle``, else REQUESTS_CA_BUNDLE, else certifi's (EndpointCreator).
    verify = session._session.get_config_variable("ca_bundle")
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE", True)
    trust = getattr(URLLib3Session(verify=verify), _SHARED, None)
    if trust is not None:
        trust.load()


def _shareable_bundle(http_session: Any) -> str | None:
    """The CA bundle ``http_session`` verifies with, when its context may be shared:
    it verifies, and sets up no client certificate and no proxy TLS of its own (those
    go into the context, which would then be one client's)."""
    from botocore.httpsession import get_cert_path

    verify = getattr(http_session, "_verify", None)
    proxy = getattr(http_session, "_proxy_config", None)
    settings = getattr(proxy, "settings", None) or {}
    if (
        not verify
        or getattr(http_session, "_cert_file", None) is not None
        or settings.get("proxy_ca_bundle") is not None
        or settings.get("proxy_client_cert") is not None
    ):
        return None
    bundle = get_cert_path(verify)
    return bundle if isinstance(bundle, str) else None


def plain_json_loader(loader: Any) -> Any:
    """``loader`` (a botocore ``Loader``), reading its JSON files into plain dicts; returned.

    botocore's own file loader parses every model with ``OrderedDict`` pairs, which
    takes the EC2 model's 4.4 MB about twice as long as plain dicts (about 30 ms of a
    first client's 130 ms here, on the critical path of a cold ranking); dicts keep
    their order and botocore reads the data only as mappings. The loader's public
    ``file_loader`` (its constructor's ``file_loader`` argument) says how a file is
    read; the files searched, their order, the extras and the cache stay botocore's.
    """
    plain = plain_json_files()
    if not isinstance(loader.file_loader, plain):
        loader.file_loader = plain()
    return loader


@functools.cache
def plain_json_files() -> type:
    """The file loader of ``plain_json_loader`` (a class made once: botocore loads late).

    It reads the extensions botocore's ``JSONFileLoader`` reads, in its order
    (``tests/core/test_aws_sessions.py`` compares both over botocore's files).
    """
    from botocore.loaders import JSONFileLoader

    class PlainJsonFiles(JSONFileLoader):
        """botocore's ``JSONFileLoader`` (same files, same ``exists``), parsing to dicts."""

        def load_file(self, file_path: str) -> Any:
            for extension, opener in ((".json", open), (".json.gz", gzip.open)):
                if os.path.isfile(file_path + extension):
                    with opener(file_path + extension, "rb") as data:
                        return json.loads(data.read())
            return None

    return PlainJsonFiles
