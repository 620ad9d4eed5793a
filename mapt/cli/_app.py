"""The root ``mapt`` app: version, debug switch and the error policy for every command."""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from mapt import __version__
from mapt.cli._aws import aws_app
from mapt.cli._coercion import defer_coercion
from mapt.cli._console import command_group
from mapt.cli._execution import execution_app
from mapt.cli._pool import pool_app
from mapt.cli._serve import serve_app
from mapt.cli._setup import setup_app
from mapt.core import (
    ExitCode,
    MaptError,
    aws_error,
    clip_values,
    configure_logging,
    filesystem_error,
    from_environment,
    is_aws_error,
    redact,
    stopping_on_signals,
    without_password,
)

if TYPE_CHECKING:
    # Typer's own copy of Click (typer >= 0.29 vendors it; Click is no dependency).
    from typer._click import Context, Parameter

_DEBUG_KEY = "mapt.debug"
_COMMAND_KEY = "mapt.command"


def set_debug(ctx: typer.Context, debug: bool) -> None:
    """Record ``--debug`` for the error handler (``ctx.meta`` is shared by the whole
    context chain) and set the log level."""
    if debug:
        ctx.meta[_DEBUG_KEY] = True
    configure_logging(debug=bool(ctx.meta.get(_DEBUG_KEY)))


class _CommandContext(typer.Context):
    """A context that records itself as the running command's for the error handler.

    Each group makes its subcommand's context before parsing its arguments, so the
    last one made is the command's whose callback or parameter failed, whether it
    failed while its values were parsed or checked, or once its body ran: the handler
    can tell which of its values came from the environment.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meta[_COMMAND_KEY] = self


def _record_command_contexts(command: Any) -> None:
    """Make every context of ``command`` and of its subcommands a ``_CommandContext``."""
    command.context_class = _CommandContext
    for subcommand in getattr(command, "commands", {}).values():
        _record_command_contexts(subcommand)


def error_line(
    message: str,
    ctx: Context | None,
    param: Parameter | None = None,
    *,
    bad_input: bool = True,
    error: MaptError | None = None,
) -> str:
    """The one ``Error:`` line for ``message``: values cut, and for bad input, the
    environment variable the bad value came from.

    ``param`` is the parameter a Click error is about. Without it, a parameter read
    from the environment counts when the error is about it: ``error`` (mapt's, whose
    ``message`` is the line's without its hint) names it as its ``field``
    (``InputError.field``: its name or a flag), the message names one of its flags
    exactly, or it quotes the variable's value. A word of the message (``region``,
    ``spot``) never counts, nor a flag a hint suggests (``or pass --force``): they
    may be another parameter's.
    """
    origin = None
    if ctx is not None and bad_input:
        subject = message if error is None else redact(error.message)
        field = getattr(error, "field", None)
        candidates = [param] if param is not None else ctx.command.params
        for candidate in candidates:
            found = _environment_value(ctx, candidate)
            if found is None:
                continue
            variable, raw = found
            if param is not None or _is_about(candidate, raw, subject, field):
                origin = from_environment(variable, raw)
                break
    line = clip_values(message)
    # The origin shows a variable's value: a secret one (MAPT_TOKEN) is masked there too.
    return f"Error: {redact(origin)}: {line}" if origin else f"Error: {line}"


def _environment_value(ctx: Context, param: Parameter) -> tuple[str, str] | None:
    """The variable ``param`` was read from and its value; None when it was not."""
    source = ctx.get_parameter_source(param.name) if param.name else None
    # Compared by name: Typer may bundle its own copy of Click's ParameterSource.
    if source is None or source.name != "ENVIRONMENT":
        return None
    envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    variable = next((name for name in envvars if os.environ.get(name)), None)
    return None if variable is None else (variable, os.environ[variable])


def _is_about(param: Parameter, raw: str, message: str, field: str | None) -> bool:
    """Whether an error is about ``param``, whose variable holds ``raw``: ``field`` is its
    name or one of its flags, ``message`` names a flag exactly (``--spot`` is not named by
    ``--spot-excluded-regions``), or it quotes the value (a URL's password masked)."""
    flags = [flag for flag in (*param.opts, *param.secondary_opts) if flag.startswith("-")]
    if field is not None and field in (param.name, *flags):
        return True
    quoted = {repr(value) for value in (raw, raw.strip(), without_password(raw.strip()))}
    if any(value in message for value in quoted):
        return True
    pattern = "|".join(re.escape(flag) for flag in flags)
    return bool(pattern) and re.search(rf"(?<![\w-])({pattern})(?![\w-])", message) is not None


class _MaptGroup(TyperGroup):
    """The root group: turns every failure into one line on stderr and its exit code.

    ``MaptError`` is caught where the command runs (so ``--debug`` can add the
    traceback); a botocore error or an ``OSError`` that no layer translated is turned
    into its ``MaptError`` there too (``_explained``), so a missing credential or a
    full disk never ends in a traceback. Click's own usage errors are printed as one
    plain line instead of a framed panel, so a CI log shows the bad value on the line
    that says ``Error``. SIGINT and SIGTERM stop the command as ``Interrupted``. Any
    other exception is a bug: it leaves with its traceback and exit 1. Everything
    printed passes through ``redact``, tracebacks included.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except Exception as raised:
            error = _explained(raised)
            if error is None:
                raise
            if ctx.meta.get(_DEBUG_KEY):
                _print_traceback(raised)
            line = error_line(
                redact(str(error)),
                ctx.meta.get(_COMMAND_KEY),
                bad_input=error.exit_code == ExitCode.USAGE,
                error=error,
            )
            typer.echo(line, err=True)
            raise typer.Exit(int(error.exit_code)) from raised

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        defer_coercion(self)
        _record_command_contexts(self)
        try:
            with stopping_on_signals():
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            exit_code = result if isinstance(result, int) else ExitCode.OK
        except MaptError as error:  # raised outside a command: a signal while parsing
            typer.echo(f"Error: {redact(str(error))}", err=True)
            exit_code = error.exit_code
            result = None
        except typer.TyperException as error:
            message = error.format_message().strip()
            if message:  # empty when Click already printed help for a bare group
                ctx = getattr(error, "ctx", None)
                where = f" Try '{ctx.command_path} --help'." if ctx is not None else ""
                line = error_line(
                    f"{message.rstrip('.')}.{where}", ctx, getattr(error, "param", None)
                )
                typer.echo(line, err=True)
            exit_code = error.exit_code
            result = None
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            exit_code = ExitCode.INTERRUPTED
            result = None
        except Exception as error:  # a bug: its traceback, but with secrets masked
            _print_traceback(error)
            exit_code = ExitCode.FAILED
            result = None
        if standalone_mode:
            sys.exit(int(exit_code))
        return result


def _explained(error: Exception) -> MaptError | None:
    """``error`` as the ``MaptError`` the user is shown, or None for a bug (a traceback)."""
    if isinstance(error, MaptError):
        return error
    # botocore is only asked when it is loaded: otherwise the error cannot be one of its.
    if "botocore" in sys.modules and is_aws_error(error):
        return aws_error(error)
    if isinstance(error, OSError):
        return filesystem_error(error)
    return None


def _print_traceback(error: BaseException) -> None:
    """The traceback of ``error`` (its causes included) on stderr, secrets masked."""
    typer.echo(redact("".join(traceback.format_exception(error))), err=True, nl=False)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mapt {__version__}")
        raise typer.Exit()


app = command_group(
    "Short-lived test machines on AWS, spot capacity first, for CI pipelines.",
    name="mapt",
    cls=_MaptGroup,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(aws_app, name="aws")
app.add_typer(setup_app, name="setup")
app.add_typer(serve_app, name="serve")
app.add_typer(execution_app, name="execution")
app.add_typer(pool_app, name="pool")


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print mapt's version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="MAPT_DEBUG",
            help="Verbose logs, and tracebacks with errors.",
        ),
    ] = False,
) -> None:
    set_debug(ctx, debug)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="mapt")
