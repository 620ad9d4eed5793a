"""``mapt aws sweep``: remove what mapt runs left on AWS (orphaned, expired, old).

Which projects still have state comes from the backend (``--backed-url``): a mapt
resource whose project has no stack there is orphaned and always removed;
``--expired`` and ``--older-than`` add resources by their ``mapt:expires-at`` and
``mapt:created-at`` tags. Resources without ``mapt:project`` are never touched, nor
are those of a project whose state cannot be read (it may be live). See
``specs/features/reliability.md``.
"""

# Annotations stay objects here (no `from __future__ import annotations`): Typer reads
# every command's annotations at each start, and strings it would evaluate twice.

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mapt.cli._options import BackedUrl, Debug, Output, OutputFormat, Sandbox, option
from mapt.core import InputError, comma_list

if TYPE_CHECKING:
    from datetime import timedelta

    from mapt.stacks import StackSummary
    from mapt.targets.aws import SweepPlan, SweepReport

# AWS region names: a partition-area prefix, words, a number (us-east-1, us-gov-west-1).
# The region asked for the list of enabled regions when no region is configured.
_DEFAULT_HOME_REGION = "us-east-1"

Regions = Annotated[
    str | None,
    option(
        "--regions",
        "Regions to sweep, comma-separated (default: every region enabled for the account).",
    ),
]
OlderThan = Annotated[
    str | None,
    option(
        "--older-than",
        "Also remove resources created longer ago than this, state or not (6h, 90m, 2h30m).",
    ),
]
Expired = Annotated[
    bool,
    option("--expired", "Also remove resources whose expiry (mapt:expires-at) has passed."),
]
DryRun = Annotated[bool, option("--dry-run", "List what would be removed; remove nothing.")]


def sweep(
    ctx: typer.Context,
    regions: Regions = None,
    older_than: OlderThan = None,
    expired: Expired = False,
    dry_run: DryRun = False,
    backed_url: BackedUrl = None,
    output: Output = OutputFormat.text,
    sandbox: Sandbox = False,
    debug: Debug = False,
) -> None:
    """Remove mapt's resources whose project has no state, and expired or old ones.

    Finds every resource tagged mapt:project in the regions, then deletes the
    orphaned ones (no stack in the backend) and, when asked, expired or old
    ones, in the order AWS accepts. Untagged resources are never touched, nor are
    those of a project whose state cannot be read. Exits 1 if any deletion
    failed; the others still happen. --sandbox: only on a local AWS-compatible endpoint.
    """
    from datetime import datetime, timezone

    from mapt.cli._app import set_debug
    from mapt.core import OperationError, aws_session, check_region_name, parse_duration
    from mapt.stacks import list_stacks, resolve_backend
    from mapt.targets.aws import enabled_regions, execute_sweep, find_mapt_resources, plan_sweep

    set_debug(ctx, debug)
    chosen = comma_list("--regions", regions)
    for region in chosen:
        check_region_name(region, "--regions item")
    limit = None if older_than is None else parse_duration(older_than, flag="--older-than")
    resolve_backend(backed_url)  # a bad URL is refused before any AWS call

    session = aws_session()
    if sandbox:
        from mapt.cli._sandbox import enter_sandbox

        enter_sandbox(session, backed_url)
    swept = list(chosen) or enabled_regions(session, session.region_name or _DEFAULT_HOME_REGION)
    found = find_mapt_resources(session, swept)
    # Read the state after the resources: Pulumi records a stack before creating its
    # first resource, so a project created meanwhile is seen with its state, never as
    # an orphan.
    stacks = list_stacks(backed_url)
    unreadable = [stack for stack in stacks if stack.unreadable is not None]
    for stack in unreadable:
        if not stack.project:
            raise OperationError(
                f"cannot tell which project the unreadable state file {stack.location} "
                f"belongs to ({stack.unreadable}), so no project can be proven orphaned",
                hint="Repair or remove that file, then run the sweep again.",
            )
    plan = plan_sweep(
        found,
        now=datetime.now(timezone.utc),
        projects_with_state={stack.project for stack in stacks},
        expired=expired,
        older_than=limit,
        unreadable_projects={stack.project for stack in unreadable},
    )
    if not stacks and not dry_run:
        _check_empty_backend(plan, backed_url, limit)
    report = execute_sweep(session, plan, dry_run=dry_run)
    if output is OutputFormat.json:
        document = _as_json(report, swept, expired=expired, older_than=limit, kept=unreadable)
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_report(plan, report, swept, older_than=limit)
        for stack in unreadable:
            typer.echo(
                f"Kept every resource of project {stack.project}: its state is unreadable "
                f"({stack.location}: {stack.unreadable})."
            )
    if not report.ok:
        first = report.failures[0]
        raise OperationError(
            f"{len(report.failures)} of {len(report.actions)} resources could not be deleted; "
            f"first: {first.item.resource.kind} {first.item.resource.id} in "
            f"{first.item.resource.region}: {first.error}",
            hint="Run the sweep again once AWS has let go of what they depend on.",
        )


def _check_empty_backend(
    plan: "SweepPlan", backed_url: str | None, older_than: "timedelta | None"
) -> None:
    """Refuse to take every resource for an orphan because the backend holds nothing.

    An empty backend is more often the wrong ``--backed-url`` than an account whose
    state is lost. Resources selected by age or expiry were asked for explicitly
    ("state or not"), so ``--older-than`` is the override: it may remove them, after
    saying on stderr what will go. Any selected only as an orphan is refused.
    """
    from mapt.targets.aws import describe_reasons

    only_orphaned = [item for item in plan.items if item.reasons == ("orphaned",)]
    where = backed_url or "(local default)"
    if only_orphaned:
        projects = sorted({item.resource.project or "" for item in only_orphaned})
        raise InputError(
            f"the state backend {where} has no stacks, so {len(only_orphaned)} mapt "
            f"resources of project{'s' if len(projects) > 1 else ''} {', '.join(projects)} "
            "would count as orphaned",
            hint="Pass the --backed-url the mapt runs in this account use, --dry-run to see "
            "what would be removed, or --older-than DURATION (e.g. 1s) to remove what was "
            "created longer ago than that, state or not.",
        )
    for item in plan.items:
        resource = item.resource
        why = describe_reasons(item, older_than=older_than)
        typer.echo(
            f"The state backend {where} has no stacks; removing {resource.kind} {resource.id} "
            f"in {resource.region} (project {resource.project}: {why})",
            err=True,
        )


def _as_json(
    report: "SweepReport",
    regions: list[str],
    *,
    expired: bool,
    older_than: "timedelta | None",
    kept: "list[StackSummary]",
) -> dict[str, Any]:
    from mapt.core import format_duration

    return {
        "dry_run": report.dry_run,
        "regions": regions,
        "expired": expired,
        "older_than": None if older_than is None else format_duration(older_than),
        "resources": [
            {
                "region": action.item.resource.region,
                "kind": action.item.resource.kind,
                "id": action.item.resource.id,
                "name": action.item.resource.name,
                "project": action.item.resource.project,
                "reasons": list(action.item.reasons),
                "status": action.status,
                "error": action.error,
            }
            for action in report.actions
        ],
        "failed": len(report.failures),
        "unreadable_state": [
            {"project": stack.project, "location": stack.location, "reason": stack.unreadable}
            for stack in kept
        ],
    }


def _print_report(
    plan: "SweepPlan", report: "SweepReport", regions: list[str], *, older_than: "timedelta | None"
) -> None:
    from rich.table import Table

    from mapt.cli._console import console as shared_console
    from mapt.targets.aws import describe_reasons

    console = shared_console()
    where = f"{len(regions)} region{'s' if len(regions) != 1 else ''}"
    if not report.actions:
        console.print(f"Nothing to sweep in {where}.")
        return
    verb = "Would remove" if report.dry_run else "Removed"
    table = Table(title=f"{verb}: projects {', '.join(plan.projects)} ({where})")
    for column in ("region", "kind", "id", "name", "project", "why", "result"):
        table.add_column(column)
    for action in report.actions:
        resource = action.item.resource
        result = action.status if action.error is None else f"{action.status}: {action.error}"
        table.add_row(
            resource.region,
            resource.kind,
            resource.id,
            resource.name,
            resource.project or "",
            describe_reasons(action.item, older_than=older_than),
            result,
        )
    console.print(table)
