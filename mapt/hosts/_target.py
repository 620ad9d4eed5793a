"""The AWS host target: create, update, destroy, status and list, answering typed records.

As SkyPilot's provisioner has one fixed set of verbs per cloud, a caller (the CLI, the
service, a test) drives a host through ``AwsHostTarget`` alone: it hands in the
``HostServices`` to act through and a validated request (``create_request``), and
gets a ``HostRecord``, ``DestroyRecord`` or ``HostStatus`` back. Each verb checks
its prerequisites (the engine's CLI, the state's secrets, AWS credentials) before any
AWS call or lock, and reports progress through the logs and, when given, a
``Progress`` callback for this call alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mapt.hosts._create import create_host, dry_run_host
from mapt.hosts._destroy import destroy_host
from mapt.hosts._progress import Progress, reporting_progress
from mapt.hosts._records import AddressChange
from mapt.hosts._requests import PRODUCT_DESCRIPTIONS, CreateHostRequest, DestroyHostRequest
from mapt.hosts._runner import GitHubAppCredentials, deregister_runner, register_runner
from mapt.hosts._services import HostServices
from mapt.hosts._status import host_status, list_hosts

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import boto3

    from mapt.allocation import AllocationArgs
    from mapt.hosts._records import DestroyRecord, HostRecord, HostStatus
    from mapt.hosts._replacement import ReplacementPlan
    from mapt.integrations.github import RegisteredRunner
    from mapt.stacks import Engine
    from mapt.targets.aws import GroupReplacement, HostHealth, HostRequest


class AwsHostTarget:
    """Hosts on AWS through ``services``; ``progress`` gets each verb's progress lines
    (those logged, and the Pulumi engine's per-resource lines)."""

    def __init__(self, services: HostServices | None = None, *, progress: Progress | None = None):
        chosen = services if services is not None else HostServices()
        self.services = chosen if progress is None else chosen.reporting_to(progress)
        self.progress = progress

    def create(self, request: CreateHostRequest) -> HostRecord:
        """Create the host, or bring an existing one of the project to ``request`` in place.

        The spot choice kept for the project is reused (same place, same machine);
        connection files are written to ``request.conn_dir``. See ``create_host``.
        """
        return self._deploy(request, reuse_choice=True)

    def update(self, request: CreateHostRequest) -> HostRecord:
        """Resize an existing host: a new allocation for ``request``'s shape, the machine
        replaced there, the new spot choice kept. ``HostNotFoundError`` without a host.

        ``request`` is the whole host as it should now be (the create's fields with the
        changes applied, through ``create_request``), not only the changes.
        """
        with reporting_progress(self.progress):
            engine = self.services.engine(request.secrets_provider, request.context.debug)
            host_status(engine, request.context.backend_url, request.project)
        return self._deploy(request, reuse_choice=False)

    def refresh_ip(self, request: CreateHostRequest) -> AddressChange:
        """Give the host a new public address and release the old one; the change.

        The address is a resource of the host stack (an on-demand host's Elastic IP), so
        it is exchanged through the engine, not behind its back: one ``up`` of the host's
        program with that resource to replace (``pulumi up --replace``), which makes and
        associates the new Elastic IP, then deletes (releases) the old one, and leaves the
        state naming what exists. The rest of the host is as ``request`` describes it:
        the whole host as created (like ``update``), with the spot choice kept; the
        command ends when the host answers at its new address.

        ``HostNotFoundError`` without a host; ``InputError`` for a host that has no
        public address of its own (``public_address_refusal``: air-gapped, or spot
        behind its load balancer), before anything changes.
        """
        from mapt.core import InputError, OperationError
        from mapt.stacks import StackRef
        from mapt.targets.aws import (
            HOST_STACK,
            OUTPUT_HOST,
            host_address_urn,
            public_address_refusal,
        )

        with reporting_progress(self.progress):
            engine = self.services.engine(request.secrets_provider, request.context.debug)
            host_status(engine, request.context.backend_url, request.project)
            ref = StackRef.for_context(request.context, HOST_STACK)
            before = engine.outputs(ref)
            refusal = public_address_refusal(before)
            if refusal is not None:
                raise InputError(f"host {request.project!r} cannot get a new address: {refusal}")
            old = str(before.get(OUTPUT_HOST) or "")
        record = self._deploy(request, reuse_choice=True, replaced=(host_address_urn(ref),))
        new = record.address or ""
        if not new or new == old:
            raise OperationError(
                f"host {request.project!r} still has the address {old or '(none)'}: the engine "
                "did not replace its Elastic IP"
            )
        return AddressChange(request.project, old, new, record)

    def repoint(self, request: CreateHostRequest) -> AddressChange:
        """Point the host's name at the machine it runs on now; the change (old, new).

        For a spot host without a load balancer, whose Auto Scaling group replaced the
        instance (an interruption, a rebalance): the create path runs again (the spot
        choice kept, ``request`` the whole host as created), and its launch check names
        the group's current instance, whose public address becomes the ``host`` output
        and the record's value (the provider UPSERTs it) in one ``up`` of the host's
        stack. Nothing changes when the name points there already (old == new). The
        command ends when the host answers at that address, and connection files are
        written again to ``request.conn_dir``.

        ``HostNotFoundError`` without a host; ``InputError`` for a request without
        ``dns_zone`` or a host whose stack has no name, before anything changes.
        """
        from mapt.core import InputError
        from mapt.stacks import StackRef
        from mapt.targets.aws import HOST_STACK, OUTPUT_DNS_NAME, OUTPUT_HOST

        with reporting_progress(self.progress):
            if request.host.dns_zone is None:
                raise InputError(
                    f"host {request.project!r} cannot be repointed without its --dns-zone"
                )
            engine = self.services.engine(request.secrets_provider, request.context.debug)
            host_status(engine, request.context.backend_url, request.project)
            before = engine.outputs(StackRef.for_context(request.context, HOST_STACK))
            if not before.get(OUTPUT_DNS_NAME):
                raise InputError(
                    f"host {request.project!r} has no DNS name in its state to repoint"
                )
            old = str(before.get(OUTPUT_HOST) or "")
        record = self._deploy(request, reuse_choice=True)
        return AddressChange(request.project, old, record.address or "", record)

    def dry_run(self, request: CreateHostRequest) -> HostRecord:
        """What ``create`` would do: the real choice and its price, the resources; nothing
        is created or written, and no engine CLI or passphrase is needed."""
        from mapt.stacks import DryRunEngine

        with reporting_progress(self.progress):
            session, engine, host, args = self._prepare(request, changes_state=False)
            return dry_run_host(
                request.context, args, host, engine=DryRunEngine(reader=engine), session=session
            )

    def destroy(self, request: DestroyHostRequest) -> DestroyRecord:
        """Destroy the host, its spot choice and runner, then the project's state.

        A project without stacks is nothing to destroy (found from state alone, with no
        prerequisite). See ``destroy_host``.
        """

        def deregister(registered: RegisteredRunner | None) -> str | None:
            return deregister_runner(
                project=request.project,
                registered=registered,
                requested=request.runner_scope,
                app=request.app,
            )

        with reporting_progress(self.progress):
            return destroy_host(
                request.context,
                engine=self.services.engine(request.secrets_provider, request.context.debug),
                force=request.force,
                keep_state=request.keep_state,
                lock_timeout=request.lock_timeout,
                prerequisites=self.services.check_engine,
                deregister=deregister,
                secrets_provider=request.secrets_provider,
            )

    def status(self, project: str, backend_url: str | None, *, debug: bool = False) -> HostStatus:
        """The project's host from state alone; ``HostNotFoundError`` when it has none."""
        with reporting_progress(self.progress):
            return host_status(self._reader(backend_url, debug), backend_url, project)

    def health(self, project: str, backend_url: str | None) -> HostHealth:
        """Whether the project's machine still runs, as AWS says (``HostServices.health``).

        ``HostNotFoundError`` when state has no host; an AWS failure is raised, never
        taken for a dead host.
        """
        status = self.status(project, backend_url)
        with reporting_progress(self.progress):
            return self.services.health(status)

    def replacement(
        self, project: str, backend_url: str | None, interrupted: str, *, since: datetime,
        timeout: float, abandon: Callable[[], bool] | None = None,
    ) -> GroupReplacement | None:  # fmt: skip
        """Wait up to ``timeout`` seconds for the project's spot group to replace
        instance ``interrupted`` (interrupted at ``since``) in place; what it did
        (``HostServices.replacement``), or None once ``abandon`` says to stop waiting.
        ``HostNotFoundError`` when state has no host; ``OperationError`` for a host that
        is not on spot, whose group nothing replaces.
        """
        from mapt.core import OperationError, RunContext
        from mapt.targets.aws import host_group_name

        status = self.status(project, backend_url)
        if not status.spot or status.region is None:
            raise OperationError(
                f"host {project!r} does not run on spot: no Auto Scaling group replaces it"
            )
        group_name = host_group_name(RunContext(project_name=project))
        with reporting_progress(self.progress):
            return self.services.replacement(
                status.region, group_name, interrupted, since, timeout, abandon
            )

    def move(self, request: CreateHostRequest, plan: ReplacementPlan) -> HostRecord:
        """Move a spot host off its kept offer as ``plan`` says (``plan_replacement``):
        the offer recorded failed in ``spotOption-<project>``, the host stack destroyed
        and deployed on the next choice, through the create path (readiness, setup,
        the connection). A plan that stays is the create itself."""
        return self._deploy(request, reuse_choice=True, move=plan)

    def list(self, backend_url: str | None, *, debug: bool = False) -> list[HostStatus]:
        """Every project of the backend, from state alone (no AWS call, no passphrase)."""
        with reporting_progress(self.progress):
            return list_hosts(self._reader(backend_url, debug), backend_url)

    def _reader(self, backend_url: str | None, debug: bool) -> Engine:
        from mapt.stacks import resolve_backend

        resolve_backend(backend_url)  # a bad URL is refused before anything is read
        return self.services.engine(None, debug)

    def _deploy(
        self,
        request: CreateHostRequest,
        *,
        reuse_choice: bool,
        replaced: tuple[str, ...] = (),
        move: ReplacementPlan | None = None,
    ) -> HostRecord:
        def retire(previous: RegisteredRunner) -> str | None:
            """Remove the runner of the machine this host no longer runs on."""
            app = request.runner.app if request.runner is not None else GitHubAppCredentials()
            return deregister_runner(
                project=request.project, registered=previous, requested=None, app=app
            )

        with reporting_progress(self.progress):
            _, engine, host, args = self._prepare(request, changes_state=True)
            return create_host(
                request.context,
                args,
                host,
                engine=engine,
                conn_dir=request.conn_dir,
                checks=self.services.checks(),
                lock_timeout=request.lock_timeout,
                max_attempts=request.max_attempts,
                fallback_on_demand=request.fallback_on_demand,
                reuse_choice=reuse_choice,
                replaced=replaced,
                move=move,
                retire_runner=retire,
                secrets_provider=request.secrets_provider,
            )

    def _prepare(
        self, request: CreateHostRequest, *, changes_state: bool
    ) -> tuple[boto3.Session, Engine, HostRequest, AllocationArgs]:
        """Prerequisites, then what AWS and GitHub answer before anything is created.

        First what a run that changes state needs (the engine's CLI, a passphrase or
        KMS key for s3 state), then the AWS credentials every run reads the market
        with; then the hosted zone of the host's name (``InputError`` when the account
        has no such public zone); then the runner's registration token, and the
        architecture of named types, which picks the image.
        """
        from mapt.allocation import (
            AllocationArgs,
            check_credentials,
            models_loading,
            resolve_architecture,
        )
        from mapt.core import aws_session
        from mapt.stacks import resolve_backend, secrets_setup

        context = request.context
        # The session is made and the EC2 model parsed while the checks wait (the
        # Pulumi CLI's version, a subprocess), not when the ranking's first request is
        # due; an error making it (a profile that does not exist) comes after theirs.
        # With the process's shared loader: a service worker finds the model parsed
        # by its forkserver (``mapt.targets.aws._worker_models``).
        with models_loading(aws_session) as made:
            if changes_state:
                self.services.check_engine()
                backend = resolve_backend(context.backend_url)
                if backend.kind == "s3":
                    secrets_setup(backend, request.secrets_provider)  # no passphrase or KMS key
        session = made.result()
        check_credentials(session)
        engine = self.services.engine(request.secrets_provider, context.debug)
        host = request.host
        if host.dns_zone is not None:
            from mapt.targets.aws import resolve_hosted_zone

            # A zone that does not exist is bad input (exit 2), found before any lock.
            zone = resolve_hosted_zone(session, host.dns_zone)
            host = replace(host, dns_zone_id=zone.id)
        if request.runner is not None:
            # Last of the checks: it asks GitHub for a token, once everything else is valid.
            host = replace(host, runner=register_runner(context.project_name, request.runner))
        # Types named without an arch run on their own architecture; the image follows it.
        compute = resolve_architecture(
            request.compute, region=context.resolved_region(), session=session
        )
        if compute.arch is not None and compute.arch != host.arch:
            host = replace(host, arch=compute.arch)
        image = host.image
        args = AllocationArgs(
            compute_request=compute,
            ami_product_description=PRODUCT_DESCRIPTIONS[host.os],
            ami_name=image.name,
            ami_owner=image.owner,
            ami_arch=image.architecture,
            spot=request.spot,
            session=session,
            availability_zone=request.availability_zone,
        )
        return session, engine, host, args
