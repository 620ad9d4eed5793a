"""``mapt serve``: run the control plane over HTTP, and manage its API tokens.

``mapt serve`` runs the server; ``mapt serve token create|list|revoke`` work on the same
database (``--database-url``, or ``MAPT_DATABASE_URL``); ``mapt serve setup|teardown``
make and remove the per-region event-intake stacks, in ``--events-backend``. FastAPI,
uvicorn and SQLAlchemy are imported inside the command bodies, so ``mapt --help``
loads none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from mapt.cli._console import command_group, console
from mapt.cli._options import (
    DnsZone,
    OutputFormat,
    Sandbox,
    option,
    whole_number,
)

T = TypeVar("T")

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mapt.service import (
        Database,
        EventIntakeSettings,
        InterruptionSettings,
        PoolSettings,
        RecoveryPolicy,
    )
    from mapt.stacks import Engine

_DATABASE_KEY = "mapt.serve.database_url"
_EVENTS_BACKEND_KEY = "mapt.serve.events_backend"
_EVENTS_SECRETS_KEY = "mapt.serve.events_secrets_provider"

serve_app = command_group(
    "The control plane over HTTP: hosts and executions for CI jobs holding a token.",
    no_args_is_help=False,
    invoke_without_command=True,
)
token_app = command_group("API tokens of the server: create, list, revoke.")
serve_app.add_typer(token_app, name="token")

DatabaseUrl = Annotated[
    str | None,
    option(
        "--database-url",
        "Where the records are: sqlite:///PATH (default: service.sqlite3 in mapt's data "
        "directory) or postgresql+psycopg://USER@HOST/DB. A password goes in "
        "MAPT_DATABASE_URL, PGPASSWORD or ~/.pgpass, never on the command line.",
        show_default=False,
    ),
]


# Where the event-intake stacks are: what servers sharing one database share.
EventsBackend = Annotated[
    str | None,
    option(
        "--events-backend",
        "State backend of the event-intake stacks (events-<region>, project mapt-events): "
        "file://PATH or s3://BUCKET[/PREFIX] (default: this machine's local state). Servers "
        "on different machines sharing one database give the same one.",
        show_default=False,
    ),
]
EventsSecretsProvider = Annotated[
    str | None,
    option(
        "--events-secrets-provider",
        "How the event-intake stacks' state secrets are encrypted: passphrase (default; "
        "PULUMI_CONFIG_PASSPHRASE[_FILE] for an s3 backend) or awskms://KEY?region=R.",
        show_default=False,
    ),
]


def _events_backend(ctx: typer.Context, value: str | None) -> str | None:
    """``--events-backend`` (this command's, else ``mapt serve``'s), as Pulumi gets it:
    parsed as ``--backend-url`` is (``mapt.stacks.parse_backend_url``)."""
    from mapt.stacks import parse_backend_url

    value = value if value is not None else ctx.meta.get(_EVENTS_BACKEND_KEY)
    if value is None:
        return None
    return _naming(ctx, "events_backend", parse_backend_url)(value).url


def _events_secrets(ctx: typer.Context, value: str | None) -> str | None:
    """``--events-secrets-provider`` (this command's, else ``mapt serve``'s), checked as
    a host's ``--secrets-provider`` is (``mapt.stacks.validate_secrets_provider``)."""
    from mapt.stacks import validate_secrets_provider

    value = value if value is not None else ctx.meta.get(_EVENTS_SECRETS_KEY)
    if value is None:
        return None
    return _naming(ctx, "events_secrets_provider", validate_secrets_provider)(value)


def _naming(ctx: typer.Context, name: str, check: Callable[[str], T]) -> Callable[[str], T]:
    """``check`` whose ``InputError`` is about the flag ``name``, before anything is
    called: a value given as the flag is named by it; one read from the flag's variable
    is named as every command names one (``error_line``: ``VAR=value (from the
    environment)``), the error's ``field`` saying which parameter it is about."""
    from mapt.core import InputError

    flag = "--" + name.replace("_", "-")
    source = ctx.get_parameter_source(name)
    from_variable = source is not None and source.name == "ENVIRONMENT"

    def checked(value: str) -> T:
        try:
            return check(value)
        except InputError as error:
            message = error.message if from_variable else f"{flag}: {error.message}"
            raise InputError(message, hint=error.hint, field=flag) from None

    return checked


def _events_engine(
    ctx: typer.Context,
    sandbox: bool,
    region: str | None,
    backend: str | None,
    secrets: str | None,
) -> Engine:
    """The engine of ``mapt serve setup|teardown``: the sandbox's (``region``: where it
    looks for on-demand hosts; None: the session's) or Pulumi's, its CLI checked."""
    from mapt.hosts import HostServices

    provider = _events_secrets(ctx, secrets)  # bad input first: exit 2 before exit 5
    services = HostServices()
    if sandbox:
        from mapt.cli._sandbox import sandbox_services

        services = sandbox_services(region=region, backend_url=backend)
    services.check_engine()
    return services.engine(provider, False)


def _checked_url(ctx: typer.Context, database_url: str | None) -> str:
    """The database URL of ``--database-url`` (given to this command or to ``mapt
    serve``) or the default; a password typed on the command line is refused."""
    from mapt.service import default_database_url, parse_database_url, refuse_password_in_arguments

    if database_url is None:
        database_url = ctx.meta.get(_DATABASE_KEY)
    if database_url is None:
        return default_database_url()
    url = parse_database_url(database_url)
    # `mapt serve --database-url` before a subcommand is checked by the serve callback.
    if _typed(ctx, "database_url"):
        refuse_password_in_arguments(url)
    return url.render_as_string(hide_password=False)


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was typed on this command line (where a password would
    show in process listings), not taken from its variable."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _existing_database_url(
    ctx: typer.Context, database_url: str | None, *, unknown: str, hint: str
) -> sa.URL:
    """The URL of ``--database-url`` (see ``_checked_url``); an ``InputError`` when it
    names a SQLite file that does not exist. Opening it would create an empty database,
    whose "no records" would answer for records that are unknown (``unknown`` says
    which, ``hint`` what to do)."""
    from mapt.core import InputError
    from mapt.service import parse_database_url

    url = parse_database_url(_checked_url(ctx, database_url))
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise InputError(
            f"no service database at {url.database}: {unknown}", hint=hint, field="database_url"
        )
    return url


def _open_tokens(ctx: typer.Context, database_url: str | None) -> Database:
    """The existing database of ``--database-url`` of ``token list|revoke``, migrated."""
    from mapt.service import open_database

    return open_database(
        _existing_database_url(
            ctx,
            database_url,
            unknown="cannot tell which tokens the server has",
            hint="Give the server's --database-url (or MAPT_DATABASE_URL).",
        )
    )


@serve_app.callback()
def serve(
    ctx: typer.Context,
    # Defaults are applied in the body, not by Typer: `mapt serve token --help` runs this
    # callback first, and a default value would make Typer build its coercion (pydantic).
    host: Annotated[
        str | None,
        option("--host", "The address to listen on (default 127.0.0.1: this machine only)."),
    ] = None,
    port: Annotated[
        str | None,
        option("--port", "The TCP port to listen on (default 8080; 0: any free port)."),
    ] = None,
    database_url: DatabaseUrl = None,
    workers: Annotated[
        str | None,
        option("--workers", "How many executions run at once, one process each (default 2)."),
    ] = None,
    reconcile_interval: Annotated[
        str | None,
        option(
            "--reconcile-interval",
            "How often the leader compares RUNNING hosts with AWS (default 1m).",
        ),
    ] = None,
    recovery_attempts: Annotated[
        str | None,
        option("--recovery-attempts", "Re-deployments of a failed host at most (default 3)."),
    ] = None,
    recovery_backoff: Annotated[
        str | None,
        option(
            "--recovery-backoff",
            "Wait after a failed recovery before the next; doubles each time, "
            "at most 15m (default 30s).",
        ),
    ] = None,
    pool_interval: Annotated[
        str | None,
        option("--pool-interval", "How often the leader converges every pool (default 30s)."),
    ] = None,
    pool_launches: Annotated[
        str | None,
        option(
            "--pool-launches-per-minute",
            "Members one pool may launch in a minute at most (default 10).",
        ),
    ] = None,
    breaker_interruptions: Annotated[
        str | None,
        option(
            "--breaker-interruptions",
            "Interruptions in one pool and region that stop spot launches there (default 2).",
        ),
    ] = None,
    breaker_window: Annotated[
        str | None,
        option(
            "--breaker-window",
            "How close together those interruptions must be (default 15m).",
        ),
    ] = None,
    breaker_cooldown: Annotated[
        str | None,
        option(
            "--breaker-cooldown",
            "How long spot launches stay stopped there (default 30m).",
        ),
    ] = None,
    replacement_timeout: Annotated[
        str | None,
        option(
            "--replacement-timeout",
            "How long an interrupted spot host's group may take to replace it in place "
            "before the host moves to the next candidate (default 5m).",
        ),
    ] = None,
    event_regions: Annotated[
        str | None,
        option(
            "--event-regions",
            "Regions whose EC2 events (interruptions) the leader takes in from the start, "
            "comma-separated, besides every region a managed host runs in (set up when a "
            "host first runs there); none: no event intake (default: the hosts' regions).",
        ),
    ] = None,
    event_poll_wait: Annotated[
        str | None,
        option(
            "--event-poll-wait",
            "How long one long poll of an event queue waits for a message, 1s..20s (default 20s).",
        ),
    ] = None,
    dns_zone: DnsZone = None,
    events_backend: EventsBackend = None,
    events_secrets_provider: EventsSecretsProvider = None,
    sandbox: Sandbox = False,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json, docs at /docs) until SIGTERM."""
    if ctx.invoked_subcommand is not None:
        server_only = ("host", "port", "workers", "reconcile_interval", "recovery_attempts",
                       "recovery_backoff", "pool_interval", "pool_launches", "sandbox",
                       "breaker_interruptions", "breaker_window", "breaker_cooldown",
                       "replacement_timeout", "event_regions", "event_poll_wait",
                       "dns_zone")  # fmt: skip
        # Typed only: a variable meant for the server (MAPT_PORT) may be set for these too.
        if any(_typed(ctx, name) for name in server_only):
            from mapt.core import InputError

            raise InputError(
                "--host, --port, --workers, --reconcile-interval, --recovery-*, --pool-*, "
                "--breaker-*, --replacement-timeout, --event-*, --dns-zone and --sandbox "
                f"belong to mapt serve itself, not to mapt serve {ctx.invoked_subcommand}"
            )
        events_flags = ("events_backend", "events_secrets_provider")
        if ctx.invoked_subcommand not in ("setup", "teardown") and any(
            _typed(ctx, name) for name in events_flags
        ):
            from mapt.core import InputError

            raise InputError(
                "--events-backend and --events-secrets-provider belong to mapt serve, "
                f"setup and teardown, not to mapt serve {ctx.invoked_subcommand}"
            )
        if database_url is not None and _typed(ctx, "database_url"):
            from mapt.service import parse_database_url, refuse_password_in_arguments

            refuse_password_in_arguments(parse_database_url(database_url))
        ctx.meta[_DATABASE_KEY] = database_url
        ctx.meta[_EVENTS_BACKEND_KEY] = events_backend
        ctx.meta[_EVENTS_SECRETS_KEY] = events_secrets_provider
        return
    from mapt.service import ServerSettings, run_server

    recovery = _recovery_policy(reconcile_interval, recovery_attempts, recovery_backoff)
    settings = ServerSettings(
        host=host or "127.0.0.1",
        port=_whole_number(port or "8080", "--port"),
        database_url=_checked_url(ctx, database_url),
        workers=_whole_number(workers or "2", "--workers"),
        recovery=recovery,
        pools=_pool_settings(pool_interval, pool_launches),
        interruptions=_interruption_settings(
            breaker_interruptions, breaker_window, breaker_cooldown, replacement_timeout
        ),
        events=_event_settings(
            event_regions,
            event_poll_wait,
            _events_backend(ctx, events_backend),
            _events_secrets(ctx, events_secrets_provider),
        ),
        dns_zone=dns_zone,
    )
    services = None
    if sandbox:
        from mapt.cli._sandbox import sandbox_services

        # Any host may keep its state in S3: the server checks that endpoint too.
        services = sandbox_services(region=None, backend_url=None, any_backend=True)
    run_server(settings, services=services)


def _whole_number(text: str, flag: str) -> int:
    """``whole_number`` of ``flag``'s value, an ``InputError`` naming ``flag`` when it is
    none: these values are read in the command's body, where Click's ``BadParameter``
    would not say which flag it is about (a subcommand must not fail on them)."""
    from mapt.core import InputError

    try:
        return whole_number(text)
    except typer.BadParameter as error:
        raise InputError(f"{flag} {error.message}", field=flag) from None


def _recovery_policy(
    interval: str | None, attempts: str | None, backoff: str | None
) -> RecoveryPolicy:
    """The reconciler's flags as a policy; a bad value is an ``InputError`` naming it."""
    from mapt.core import InputError, parse_duration
    from mapt.service import RecoveryPolicy

    default = RecoveryPolicy()
    count = default.attempts if attempts is None else _whole_number(attempts, "--recovery-attempts")
    if count < 1:
        raise InputError(f"--recovery-attempts {attempts} must be at least 1")
    every = default.interval
    if interval is not None:
        every = parse_duration(interval, flag="--reconcile-interval").total_seconds()
    wait = default.backoff
    if backoff is not None:
        wait = parse_duration(backoff, flag="--recovery-backoff").total_seconds()
    return RecoveryPolicy(
        interval=every, attempts=count, backoff=wait, backoff_max=max(wait, default.backoff_max)
    )


def _pool_settings(interval: str | None, launches: str | None) -> PoolSettings:
    """The pool loop's flags as settings; a bad value is an ``InputError`` naming it."""
    from mapt.core import parse_duration
    from mapt.service import PoolSettings

    default = PoolSettings()
    return PoolSettings(
        interval=default.interval
        if interval is None
        else parse_duration(interval, flag="--pool-interval").total_seconds(),
        launches_per_minute=default.launches_per_minute
        if launches is None
        else _whole_number(launches, "--pool-launches-per-minute"),
    )


def _interruption_settings(
    interruptions: str | None, window: str | None, cooldown: str | None, timeout: str | None
) -> InterruptionSettings:
    """The circuit breaker's and the replacement's flags; a bad value is an
    ``InputError`` naming its flag."""
    from mapt.core import InputError, parse_duration
    from mapt.hosts import BreakerPolicy
    from mapt.service import InterruptionSettings

    default = InterruptionSettings()
    count = default.breaker.interruptions
    if interruptions is not None:
        count = _whole_number(interruptions, "--breaker-interruptions")
        if count < 1:
            raise InputError(f"--breaker-interruptions {interruptions} must be at least 1")
    breaker = BreakerPolicy(
        interruptions=count,
        window=default.breaker.window
        if window is None
        else parse_duration(window, flag="--breaker-window"),
        cooldown=default.breaker.cooldown
        if cooldown is None
        else parse_duration(cooldown, flag="--breaker-cooldown"),
    )
    bound = default.replacement_timeout
    if timeout is not None:
        bound = parse_duration(timeout, flag="--replacement-timeout").total_seconds()
    return InterruptionSettings(breaker=breaker, replacement_timeout=bound)


def _regions(text: str, flag: str) -> tuple[str, ...]:
    """A comma-separated list of region names, each checked (the message names ``flag``)."""
    from mapt.core import InputError, check_region_name

    regions = tuple(dict.fromkeys(item.strip() for item in text.split(",")))
    if not all(regions):
        raise InputError(f"{flag} {text!r} has an empty region name")
    return tuple(check_region_name(region, f"{flag} item") for region in regions)


def _event_settings(
    regions: str | None, wait: str | None, backend: str | None, secrets_provider: str | None
) -> EventIntakeSettings:
    """The event intake's flags as settings; a bad value is an ``InputError`` naming it."""
    from mapt.core import InputError, parse_duration
    from mapt.service import EventIntakeSettings

    default = EventIntakeSettings()
    seconds = default.wait_seconds
    if wait is not None:
        waited = parse_duration(wait, flag="--event-poll-wait").total_seconds()
        if not waited.is_integer() or not 1 <= waited <= 20:
            raise InputError(f"--event-poll-wait {wait} must be whole seconds from 1s to 20s")
        seconds = int(waited)
    where = EventIntakeSettings(
        wait_seconds=seconds, backend_url=backend, secrets_provider=secrets_provider
    )
    if regions is not None and regions.strip().lower() == "none":
        return where
    watched = () if regions is None else _regions(regions, "--event-regions")
    return replace(where, regions=watched, follow_hosts=True)


# The output of the event-intake commands (setup, teardown).
EventsOutput = Annotated[OutputFormat, typer.Option("--output", "-o", help="text or json.")]


@serve_app.command("setup")
def serve_setup(
    ctx: typer.Context,
    regions: Annotated[
        str,
        typer.Option(
            "--regions",
            help="The regions to set up, comma-separated (e.g. us-east-1,eu-west-1).",
            show_default=False,
        ),
    ],
    events_backend: EventsBackend = None,
    events_secrets_provider: EventsSecretsProvider = None,
    output: EventsOutput = OutputFormat.text,
    sandbox: Sandbox = False,
) -> None:
    """Create (or reuse as they are) the event-intake stacks of these regions: the queue
    EventBridge puts EC2 events on, its dead-letter queue, the rule and its policy."""
    from mapt.targets.aws import ensure_event_intake

    wanted = _regions(regions, "--regions")
    backend = _events_backend(ctx, events_backend)
    engine = _events_engine(ctx, sandbox, wanted[0], backend, events_secrets_provider)
    found = ensure_event_intake(engine, wanted, backend_url=backend)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"regions": {r: q.__dict__ for r, q in found.items()}}, indent=2))
        return
    for region, queues in found.items():
        typer.echo(f"{region}: {queues.queue_url} (dead letters: {queues.dead_letter_url})")


@serve_app.command("teardown")
def serve_teardown(
    ctx: typer.Context,
    regions: Annotated[
        str | None,
        typer.Option(
            "--regions",
            help="The regions whose event intake to remove, comma-separated.",
            show_default=False,
        ),
    ] = None,
    all_regions: Annotated[
        bool,
        typer.Option(
            "--all-regions", help="Every region that has an event-intake stack in the backend."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remove even where the service database says managed hosts still run.",
        ),
    ] = False,
    events_backend: EventsBackend = None,
    events_secrets_provider: EventsSecretsProvider = None,
    database_url: DatabaseUrl = None,
    output: EventsOutput = OutputFormat.text,
    sandbox: Sandbox = False,
) -> None:
    """Remove the event-intake stacks of these regions: their queues, rule, target and
    policy, and their state. Refused where managed hosts still run, unless --force."""
    from mapt.core import InputError
    from mapt.targets.aws import event_intake_regions, events_stack_ref, remove_event_intake

    if (regions is None) == (not all_regions):
        raise InputError(
            "give --regions R1,R2 or --all-regions (one of the two): which event intakes to remove"
        )
    named = _regions(regions, "--regions") if regions is not None else ()
    backend = _events_backend(ctx, events_backend)
    where = backend or "the local state"
    engine = _events_engine(
        ctx, sandbox, named[0] if named else None, backend, events_secrets_provider
    )
    wanted = tuple(event_intake_regions(engine, backend)) if all_regions else named
    # Unreadable state raises here: it is never taken for "no stack".
    present = [region for region in wanted if engine.exists(events_stack_ref(region, backend))]
    if present and not force:
        _refuse_where_hosts_run(ctx, database_url, present)
    removed = remove_event_intake(engine, present, backend_url=backend)
    outcome = {region: "removed" if removed.get(region) else "absent" for region in wanted}
    if output is OutputFormat.json:
        typer.echo(json.dumps({"backend": where, "regions": outcome}, indent=2))
        return
    if not wanted:
        typer.echo(f"No event-intake stack in {where}: nothing to remove.")
    for region, what in outcome.items():
        if what == "removed":
            typer.echo(f"{region}: event intake removed (queues, rule, policy; state in {where})")
        else:
            typer.echo(f"{region}: no event-intake stack in {where}: nothing to remove")


def _refuse_where_hosts_run(
    ctx: typer.Context, database_url: str | None, regions: list[str]
) -> None:
    """``InputError`` (exit 2) when the service database has hosts running in ``regions``:
    their interruptions would go unheard, and a running leader would set it up again."""
    import sqlalchemy as sa

    from mapt.core import InputError, OperationError
    from mapt.service import hosts_by_region, open_database

    url = _existing_database_url(
        ctx,
        database_url,
        unknown="cannot tell whether hosts still run where the event intake would be removed",
        hint="Give the server's --database-url (or MAPT_DATABASE_URL), or pass --force.",
    )
    database = open_database(url, migrate=False)  # read it as it is: never migrate here
    try:
        with database.transaction() as connection:
            running = hosts_by_region(connection)
    except sa.exc.DBAPIError as error:
        raise OperationError(
            f"cannot read the hosts in {database.shown()}: {error.orig}",
            hint="Give the server's --database-url (or MAPT_DATABASE_URL), or pass --force.",
        ) from error
    finally:
        database.dispose()
    busy = {region: running[region] for region in regions if region in running}
    if busy:
        listed = "; ".join(f"{region}: {', '.join(names)}" for region, names in busy.items())
        raise InputError(
            f"managed hosts still run where the event intake would be removed ({listed})",
            hint="Delete those hosts first, or pass --force (a running leader sets a "
            "region's intake up again while hosts run there).",
        )


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token (who or what uses it).")],
    read_only: Annotated[
        bool, typer.Option("--read-only", help="The token may read, never change.")
    ] = False,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime: 30d, 12h, 1h30m (default: no expiry)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a token; it is printed once, alone on the last line of stdout.

    The database is made when it does not exist yet: a first token may come before
    the server's first start."""
    from mapt.service import check_token_name, create_token, open_database, parse_expiry

    check_token_name(name)  # bad input first: nothing is opened, or made
    lifetime = parse_expiry(expires) if expires is not None else None
    database = open_database(_checked_url(ctx, database_url))
    try:
        record, token = create_token(database, name, read_only=read_only, lifetime=lifetime)
    finally:
        database.dispose()
    scope = "read-only" if record.read_only else "read-write"
    typer.echo(
        f"Created {scope} token {record.name!r} (key {record.key_id}, expires "
        f"{_when(record.expires_at)}). It is shown once; keep it in a secret store:"
    )
    typer.echo(token)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="text (a table) or json.")
    ] = OutputFormat.text,
) -> None:
    """List every token (never their secrets): scope, state, expiry, last use."""
    from mapt.service import list_tokens

    database = _open_tokens(ctx, database_url)
    try:
        records = list_tokens(database)
    finally:
        database.dispose()
    now = datetime.now(timezone.utc)
    rows = [
        {
            "name": record.name,
            "key_id": record.key_id,
            "scope": "read-only" if record.read_only else "read-write",
            "state": record.state(now),
            "created_at": _when(record.created_at),
            "expires_at": _when(record.expires_at),
            "last_used_at": _when(record.last_used_at),
        }
        for record in records
    ]
    if output is OutputFormat.json:
        typer.echo(json.dumps({"tokens": rows}, indent=2))
        return
    if not rows:
        typer.echo("No tokens. Create one with: mapt serve token create NAME")
        return
    from rich.table import Table

    table = Table("NAME", "KEY", "SCOPE", "STATE", "CREATED", "EXPIRES", "LAST USED", box=None)
    for row in rows:
        table.add_row(*row.values())
    console().print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name (or its key id).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a token: requests bearing it are refused (401) from now on."""
    from mapt.service import revoke_token

    database = _open_tokens(ctx, database_url)
    try:
        record = revoke_token(database, name)
    finally:
        database.dispose()
    typer.echo(f"Revoked token {record.name!r} (key {record.key_id}).")
