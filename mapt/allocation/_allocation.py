"""``allocation()``: where, and on what, a machine runs (see specs/concepts/allocation.md).

The spot path queries AWS in two rounds: instance types and regions together, with a
shape's placement scores (asked by its requirements); then, all at once, image checks,
availability zones and spot prices (and on-demand prices for ``spot-price``) of the
regions those scores rank (and those a failed score batch left unscored, scored
again by their types), or of every usable region for named types and GPU requests;
and ranks the result with the pure functions of
``_selection``, over every matching type. The on-demand
path asks one region which of its zones offers the types.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from mapt.allocation._ec2 import (
    PRICING_REGION,
    Ec2Queries,
    ScoreAnswer,
    collection_paused,
    score_batches,
    warn_scores_unavailable,
)
from mapt.allocation._errors import (
    NoEligibleOfferError,
    NoMatchingInstanceTypesError,
    NoSupportedInstanceTypesError,
)
from mapt.allocation._models import (
    ARCHITECTURES,
    AllocationArgs,
    AllocationResult,
    ComputeRequest,
    Offer,
    SpotArgs,
)
from mapt.allocation._selection import (
    InstanceTypeInfo,
    PricePoint,
    Zone,
    nearest_sizes,
    newest_prices,
    rank_offers,
    score_requirements,
    select_instance_types,
)
from mapt.allocation._spot_stack import SPOT_STACK_NAME, read_spot_choice, spot_choice_program
from mapt.core import InputError, RunContext, get_logger, shown

if TYPE_CHECKING:
    from mapt.stacks import Engine

log = get_logger(__name__)

# Where account-wide questions (types, regions) are asked when no region is given.
DEFAULT_HOME_REGION = "us-east-1"
_ARCH_FILTER = "processor-info.supported-architecture"


def allocation(
    context: RunContext,
    args: AllocationArgs,
    *,
    engine: Engine | None = None,
    seed: int | None = None,
    keep: bool = True,
    reuse: bool = True,
    prefer_zone: str | None = None,
) -> AllocationResult:
    """Answer "where, and on what, does this machine run?".

    On spot (``args.spot`` set) the answer is kept in the ``spotOption-<project>``
    stack: when that stack exists its outputs are returned and no EC2 call is made;
    otherwise the market is ranked and the choice saved there through ``engine``
    (default: the Pulumi engine for ``context.backend_url``). ``keep`` False (a dry
    run) reads a kept choice the same way but keeps a new one nowhere. ``reuse`` False
    (a resize, whose shape the kept choice may not fit) ranks the market afresh and
    replaces the kept choice. On demand, the context's region is used, ``seed`` makes
    its random AZ order reproducible, and ``prefer_zone`` (where the project's host
    runs already) is kept when it still offers any of the types.
    """
    if args.spot is None:
        region = context.resolved_region()
        if not region:
            raise InputError("no region for an on-demand machine: pass --region or set AWS_REGION")
        return on_demand_allocation(
            args, region, queries=Ec2Queries(args.session), seed=seed, prefer_zone=prefer_zone
        )

    from mapt.stacks import StackRef

    engine = engine if engine is not None else _default_engine(context)
    ref = StackRef.for_context(context, SPOT_STACK_NAME)
    if reuse and engine.exists(ref):
        log.info("reusing the spot choice kept in stack %s", ref.stack_name)
        return read_spot_choice(ref.stack_name, context.project_name, engine.outputs(ref))
    result = spot_allocation(args, home_region=context.resolved_region())
    if keep:
        engine.up(ref, spot_choice_program(result))
    log.info(
        "chose %s (%s) at %.4f USD/h, max %.4f, score %s; %s stack %s",
        result.availability_zone,
        ", ".join(result.instance_types),
        result.spot_price or 0.0,
        result.max_price or 0.0,
        "unknown" if result.score is None else result.score,
        "kept in" if keep else "dry run: would keep it in",
        ref.stack_name,
    )
    return result


def fail_over(
    context: RunContext,
    current: AllocationResult,
    reason: str,
    *,
    engine: Engine,
    avoid_regions: Sequence[str] = (),
) -> AllocationResult | None:
    """Record that ``current`` could not launch and keep the next candidate instead.

    The spot stack then holds the runner-up as its choice, with ``current`` in its
    ``failed`` list, so a re-run goes on from there without a new price scan. When no
    candidate is left the stack is destroyed (the next create scans the market afresh,
    which may have moved) and None is returned. Candidates in ``avoid_regions`` are
    passed over (a region whose circuit breaker is open).
    """
    from mapt.stacks import StackRef

    ref = StackRef.for_context(context, SPOT_STACK_NAME)
    following = current.next_offer(reason, avoid_regions=avoid_regions)
    if following is None:
        log.warning(
            "no spot candidate left after %s; forgetting the spot choice", current.availability_zone
        )
        engine.destroy(ref)
        return None
    engine.up(ref, spot_choice_program(following))
    log.warning(
        "%s could not launch (%s); moving to %s",
        current.availability_zone,
        reason,
        following.availability_zone,
    )
    return following


def keep_on_demand_fallback(
    context: RunContext, fallback: AllocationResult, *, engine: Engine
) -> AllocationResult:
    """Keep an on-demand choice made after spot failed, so re-runs stay on it.

    ``fallback.failed`` must list the spot offers that failed: that is what tells a
    stored on-demand choice from a garbled spot one.
    """
    from mapt.stacks import StackRef

    if not fallback.failed or fallback.is_spot:
        raise ValueError("an on-demand fallback needs the failed spot offers and no spot price")
    engine.up(StackRef.for_context(context, SPOT_STACK_NAME), spot_choice_program(fallback))
    return fallback


def _default_engine(context: RunContext) -> Engine:
    from mapt.stacks import PulumiEngine

    return PulumiEngine(debug=context.debug)


def spot_allocation(
    args: AllocationArgs,
    *,
    home_region: str | None = None,
    queries: Ec2Queries | None = None,
    now: datetime | None = None,
) -> AllocationResult:
    """Rank the spot market and return the best offer with its runner-ups; with
    ``args.availability_zone``, the best offer in that zone, the others its runner-ups."""
    pinned = args.availability_zone
    market = _spot_market(args, home_region, queries, now, on_demand=False, pinned=pinned)
    offers = market.offers
    if pinned is not None and offers[0].availability_zone != pinned:
        raise NoSupportedInstanceTypesError(
            f"no spot offer in availability_zone {pinned} for the requested types",
            hint="Pin another zone, or leave availability_zone out.",
        )
    best, *runner_ups = offers
    return AllocationResult(**vars(best), candidates=tuple(runner_ups))


def spot_offers(
    args: AllocationArgs,
    *,
    home_region: str | None = None,
    queries: Ec2Queries | None = None,
    now: datetime | None = None,
) -> list[Offer]:
    """Every eligible AZ's spot offer for ``args``, best first (read-only)."""
    return _spot_market(args, home_region, queries, now, on_demand=False).offers


def spot_offer_rows(
    args: AllocationArgs,
    *,
    home_region: str | None = None,
    queries: Ec2Queries | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """``spot_offers`` as ``on_demand_comparison`` rows, in the same two rounds.

    The on-demand prices of every matching type in every usable region are asked for
    alongside the spot prices, not after the ranking.
    """
    market = _spot_market(args, home_region, queries, now, on_demand=True)
    return _comparison_rows(market.offers, market.on_demand)


@dataclass(frozen=True)
class _SpotMarket:
    offers: list[Offer]
    on_demand: dict[tuple[str, str], float] | None


def _spot_market(
    args: AllocationArgs,
    home_region: str | None,
    queries: Ec2Queries | None,
    now: datetime | None,
    *,
    on_demand: bool,
    pinned: str | None = None,
) -> _SpotMarket:
    """Rank the spot market in two rounds of parallel queries, one for named types;
    the offer of the ``pinned`` zone, when it has one, first (``rank_offers``).

    Round 1 asks for the types and the regions and what needs neither answer. For a
    shape that ``score_requirements`` expresses: the placement scores of every region
    of the partition that may be usable, by the shape's requirements; round 2 then
    asks the AZ names, image checks and prices of only the regions those scores rank
    (section 3 of the spec), and the scores by type list of the usable regions whose
    batch failed (every one when the regions every account has failed), unless it
    was refused permission: those are ranked on price alone, not asked again. For
    named types (and the few shapes without requirements): in the regions every
    account has (``always_enabled_regions``), the AZ names and image checks, and for
    named types also the scores and prices; round 2 asks the rest, for every usable
    region. A region's client is created by the first thread that needs it: a worker,
    which then sends its request while the next clients are built, or, when round 2
    asks every usable region, this thread, which builds the partition's clients while
    round 1 waits (a shape's round 2 asks only the scored regions and those of the
    failed batches: their clients are built as the batches fail, none that it
    does not ask).
    """
    spot = args.spot or SpotArgs()
    queries = queries or Ec2Queries(args.session)
    home = home_region or DEFAULT_HOME_REGION
    market = _MarketQueries(queries, args, now or datetime.now(timezone.utc), home, on_demand)
    named = sorted(set(args.compute_request.compute_sizes))
    requirements = score_requirements(args.compute_request)

    # The pause starts before the first client: ending a pause of its own would let
    # a collection scan the just-parsed model's objects before they are frozen.
    with collection_paused(), queries.executor(queries.max_workers) as pool:
        queries.client(home)  # the first queries use it: create it once, up front
        types_job = pool.submit(instance_types_for, queries, home, args.compute_request, True)
        regions_job = pool.submit(queries.regions, home)
        excluded = spot.excluded_regions
        certain = [r for r in queries.always_enabled_regions(home) if r not in excluded]
        certain.sort(key=lambda r: r != home)
        maybe = [r for r in queries.partition_regions(home) if r not in excluded]
        maybe.sort(key=lambda r: r not in certain)
        round_one: list[Future[Any]] = [regions_job]
        early = shape_scores = None
        if requirements is not None:
            others = [r for r in maybe if r not in certain]
            shape_scores = market.score_shape(pool, requirements, certain, others)
            round_one += [types_job, *shape_scores.futures()]
        else:
            market.describe(pool, certain)
            early = market.price(pool, certain, named) if named else None
        if on_demand and early is None:
            pool.submit(queries.client, PRICING_REGION, "pricing")  # built while waiting
        if shape_scores is None:
            # Round 2 asks every usable region: while round 1 waits, build the clients
            # of those that may be usable (the 17 regions' are being built by round 1).
            queries.build_clients_until(maybe, round_one)
        else:
            # Round 2 asks the usable regions of a failed batch again, with their types
            # (or, refused permission, their prices only; every usable region when the
            # regions every account has fail): as each batch fails, build its regions'
            # clients while the rest of round 1 waits.
            pending = set(round_one)
            while pending:
                _, pending = wait(pending, return_when=FIRST_COMPLETED)
                queries.build_clients_until(shape_scores.failed_regions(), round_one)

        usable, known = regions_job.result()
        unknown = [r for r in spot.excluded_regions if r not in known]
        if unknown:
            raise InputError(f"excluded region {unknown[0]!r} is not an AWS region")
        regions = [r for r in usable if r not in spot.excluded_regions]
        if not regions:
            raise InputError("every usable region is excluded by --spot-excluded-regions")
        every_region = list(regions)
        instance_types = types_job.result()

        # Round 2. The regions whose clients exist go first; the others' clients are
        # created one after another by the workers, while earlier requests wait on AWS.
        unscored: list[str] = []
        scores_by_zone: dict[str, tuple[str, int]] | None
        if shape_scores is not None:
            scores_by_zone, again, refused = shape_scores.of(regions)
            # With an image, the near misses too: the image may rule out the rest.
            regions = _regions_to_rank(
                regions,
                scores_by_zone,
                spot.min_score,
                [*again, *refused],
                near_misses=bool(args.ami_name),
            )
            regions.sort(key=lambda r: (r != home, not queries.has_client(r)))
            market.describe(pool, regions)
            kept = sorted({region for region, _ in scores_by_zone.values()} - set(again))
            otherwise = (
                f"ranking {', '.join(again)} on price alone; the other regions keep their scores"
                if kept
                else "ranking on price alone"
            )
            priced = [
                market.price(pool, regions, instance_types, scored=again, otherwise=otherwise)
            ]
            unscored = list(refused)  # ranked on price alone, any others' scores kept
            if again:
                rescored = priced[0].scores.result() if priced[0].scores else None
                if rescored is not None:
                    scores_by_zone.update(rescored)
                elif kept:
                    unscored += again
                else:
                    scores_by_zone = None  # no region has a score: price alone
            if refused and scores_by_zone is not None and not scores_by_zone:
                scores_by_zone = None  # every batch refused: price alone
        else:
            regions.sort(key=lambda r: (r != home, not queries.has_client(r)))
            market.describe(pool, regions)
            if early is not None and early.instance_types == instance_types:
                rest = [r for r in regions if r not in early.regions]
                priced = [early, *([market.price(pool, rest, instance_types)] if rest else [])]
            else:
                priced = [market.price(pool, regions, instance_types)]
            scores_by_zone = _merged([p.scores.result() for p in priced if p.scores])
        regions = market.with_image(pool, regions, every_region)
        if scores_by_zone is None:
            scores = None
            candidate_regions = regions
        else:
            scores = {zone_id: score for zone_id, (_, score) in scores_by_zone.items()}
            candidate_regions = _regions_to_rank(regions, scores_by_zone, spot.min_score, unscored)
        # Only the candidates' answers are read: a failure elsewhere changes nothing.
        candidate_regions.sort()
        prices_of = {r: p.prices[r] for p in priced for r in p.regions}
        zones = [zone for r in candidate_regions for zone in market.zones[r].result()]
        points = [point for r in candidate_regions for point in prices_of[r].result()]
        on_demand_prices = (
            _merged([p.on_demand.result()[0] for p in priced if p.on_demand is not None])
            if on_demand
            else None
        )
    offers = rank_offers(
        zones,
        newest_prices(points),
        scores,
        instance_types,
        spot.min_score,
        spot.increase_rate,
        unscored,
        pinned=pinned,
    )
    return _SpotMarket(offers, on_demand_prices)


def _regions_to_rank(
    regions: Sequence[str],
    scores_by_zone: Mapping[str, tuple[str, int]],
    min_score: int,
    unscored: Sequence[str] = (),
    *,
    near_misses: bool = False,
) -> list[str]:
    """The rule of section 3: ``regions`` with an AZ scoring ``min_score`` or more, else
    (or with ``near_misses``) those with any score; and the ``unscored`` ones."""
    passing = {region for region, score in scores_by_zone.values() if score >= min_score}
    scored = {region for region, _ in scores_by_zone.values()}
    ranked = (set() if near_misses else passing & set(regions)) or scored
    return [r for r in regions if r in ranked or r in unscored]


@dataclass(frozen=True)
class _PricedRegions:
    """The price queries of some regions for some types, in flight."""

    instance_types: list[str]
    regions: list[str]
    prices: dict[str, Future[list[PricePoint]]]
    scores: Future[dict[str, tuple[str, int]] | None] | None
    on_demand: Future[tuple[dict[tuple[str, str], float] | None, str | None]] | None


@dataclass(frozen=True)
class _ShapeScores:
    """Round 1's placement scores by requirements, in flight, one future per batch.

    The regions every account has are scored together, all or nothing, as type lists
    are; the partition's other regions, which the account may not have enabled, in
    batches of their own, each of which may fail alone. A failed batch costs only its
    own regions' scores by requirements: its usable regions are scored again with
    their types in round 2, unless the batch was refused permission (the account's
    answer, which the type list would get too): those are ranked on price alone at
    once. Failures are logged when the answers are used, not when they come: a
    ranking that round 1 refuses (an excluded region AWS does not know) says only that.
    """

    batches: list[tuple[list[str], Future[ScoreAnswer]]]

    def futures(self) -> list[Future[Any]]:
        return [future for _, future in self.batches]

    def failed_regions(self) -> list[str]:
        """The regions of the batches that have failed so far (none raised)."""
        return [
            region
            for batch, future in self.batches
            if future.done() and future.exception() is None and future.result().scores is None
            for region in batch
        ]

    def of(self, regions: Sequence[str]) -> tuple[dict[str, tuple[str, int]], list[str], list[str]]:
        """(AZ ID -> (region, score) within ``regions``; the ``regions`` to score again
        with their types: those of the failed batches, and any that botocore's endpoint
        data does not list; the ``regions`` of the batches refused permission, not to be
        asked again). A failed batch none of whose regions is in ``regions`` (one naming
        only regions the account has not enabled) is logged at debug level only."""
        wanted = set(regions)
        scores: dict[str, tuple[str, int]] = {}
        answered: set[str] = set()
        lost: list[str] = []
        refused: list[str] = []
        reasons: dict[str, None] = {}
        refusals: dict[str, None] = {}
        for batch, future in self.batches:
            answer = future.result()
            if answer.scores is None:
                usable = [r for r in batch if r in wanted]
                if not usable:
                    log.debug("placement scores of unusable regions %s: %s", batch, answer.reason)
                elif answer.refused:
                    refused += usable
                    refusals[answer.reason] = None
                else:
                    lost += usable
                    reasons[answer.reason] = None
                answered.update(batch if answer.refused else ())
                continue
            answered.update(batch)
            scores.update(
                (zone, entry) for zone, entry in answer.scores.items() if entry[0] in wanted
            )
        if refused:
            kept = {region for region, _ in scores.values()}
            alone = (
                f"ranking {', '.join(refused)} on price alone"
                if kept or lost
                else ("ranking on price alone")
            )
            warn_scores_unavailable(
                "; ".join(refusals),
                f"{alone} (a refusal is the account's: not asked again with the types)",
            )
        if lost:
            warn_scores_unavailable(
                "; ".join(reasons), f"scoring {', '.join(lost)} with their types instead"
            )
        return scores, [r for r in regions if r not in answered], refused


class _MarketQueries:
    """The per-region queries of one ranking, each region asked once, on a shared pool."""

    def __init__(
        self, queries: Ec2Queries, args: AllocationArgs, now: datetime, home: str, on_demand: bool
    ) -> None:
        self._queries, self._args, self._now = queries, args, now
        self._home, self._on_demand = home, on_demand
        self.zones: dict[str, Future[list[Zone]]] = {}
        self._images: dict[str, Future[bool]] = {}

    def describe(self, pool: ThreadPoolExecutor, regions: Sequence[str]) -> None:
        """Ask the AZ names (and whether the image exists) of regions not asked yet."""
        for region in regions:
            if region in self.zones:
                continue
            self.zones[region] = pool.submit(self._queries.zones, region)
        self._look_for_image(pool, regions)

    def _look_for_image(self, pool: ThreadPoolExecutor, regions: Sequence[str]) -> None:
        """Ask whether the named image exists in the regions not asked yet."""
        args = self._args
        for region in regions:
            if args.ami_name and region not in self._images:
                self._images[region] = pool.submit(
                    self._queries.has_image, region, args.ami_name, args.ami_owner, args.ami_arch
                )

    def score_shape(
        self,
        pool: ThreadPoolExecutor,
        requirements: Mapping[str, Any],
        certain: Sequence[str],
        others: Sequence[str],
    ) -> _ShapeScores:
        """Ask the scores of the shape's ``requirements`` in ``certain`` and ``others``."""
        queries, home = self._queries, self._home

        def scores_of(regions: list[str]) -> Future[ScoreAnswer]:
            # Asked where the regions every account has are: a batch of the others
            # may name regions the account has not enabled.
            return pool.submit(
                queries.placement_score_answer,
                (),
                regions,
                [home, *certain],
                requirements=requirements,
            )

        batches = ([list(certain)] if certain else []) + score_batches(others)
        return _ShapeScores([(batch, scores_of(batch)) for batch in batches])

    def price(
        self,
        pool: ThreadPoolExecutor,
        regions: Sequence[str],
        instance_types: Sequence[str],
        *,
        scored: Sequence[str] | None = None,
        otherwise: str = "ranking on price alone",
    ) -> _PricedRegions:
        """Ask the spot prices (and on-demand prices) of the types in ``regions``, and
        their scores in ``scored`` (default: all of ``regions``; none asked if empty);
        ``otherwise`` says what the ranking does when those scores fail."""
        queries, product = self._queries, self._args.ami_product_description
        types, regions = list(instance_types), list(regions)
        scored = regions if scored is None else list(scored)
        # First, as its worker builds the Pricing client (another service model).
        on_demand = (
            pool.submit(queries.on_demand_price_list, types, product, regions)
            if self._on_demand
            else None
        )
        scores = (
            pool.submit(queries.placement_scores, types, scored, [self._home, *scored], otherwise)
            if scored
            else None
        )
        prices = {
            region: pool.submit(queries.spot_prices, region, types, product, self._now)
            for region in regions
        }
        return _PricedRegions(types, regions, prices, scores, on_demand)

    def with_image(
        self,
        pool: ThreadPoolExecutor,
        regions: list[str],
        usable: Sequence[str],
    ) -> list[str]:
        """``regions`` where the image is found (all of them when none is named).

        Found in none of them: the other ``usable`` regions (those the scores left out)
        are looked at too, one more round on this failing path only. Found there, no
        zone where it exists has a placement score (``NoEligibleOfferError``, exit 4);
        found nowhere, the name is wrong (``InputError``, exit 2).
        """
        image_name = self._args.ami_name
        if not image_name:
            return regions
        found = [r for r in regions if self._images[r].result()]
        if found:
            return found
        left_out = [r for r in usable if r not in self._images]
        self._look_for_image(pool, left_out)
        elsewhere = [r for r in left_out if self._images[r].result()]
        if elsewhere:
            raise NoEligibleOfferError(
                f"image {image_name!r} exists only in regions where no availability zone "
                f"has a placement score: {', '.join(elsewhere)}",
                hint="Copy the image to a region whose zones score, or widen the compute request.",
            )
        raise InputError(f"image {image_name!r} is not found in any candidate region")


K = TypeVar("K")
V = TypeVar("V")


def _merged(parts: Sequence[dict[K, V] | None]) -> dict[K, V] | None:
    """The union of dicts answered per group of regions; None when any group got none."""
    merged: dict[K, V] = {}
    for part in parts:
        if part is None:
            return None
        merged.update(part)
    return merged


def instance_types_for(
    queries: Ec2Queries, region: str, request: ComputeRequest, spot: bool
) -> list[str]:
    """Every instance type that satisfies ``request``, sorted by name."""
    if request.compute_sizes:
        infos = queries.instance_types(region, names=request.compute_sizes)
        architecture_of(infos, request.arch)
        return sorted({i.name for i in infos})

    arch = request.arch or ARCHITECTURES[0]  # always set for a shape
    filters = {_ARCH_FILTER: arch}
    if request.nested_virt:
        filters["bare-metal"] = "true"
    elif not request.gpu_manufacturer and not request.gpus:
        filters["vcpu-info.default-vcpus"] = str(request.cpus)
        filters["memory-info.size-in-mib"] = str(round(request.memory_gib * 1024))
    names = select_instance_types(queries.instance_types(region, filters=filters), request, spot)
    if names:
        return names
    families = (
        f" in families {', '.join(request.compute_families)}" if request.compute_families else ""
    )
    if request.nested_virt:
        wanted = f"bare-metal {arch} instance type"
    elif request.gpu_manufacturer or request.gpus:
        maker = request.gpu_manufacturer or "any"
        wanted = (
            f"{arch} instance type with {request.gpus or 1}+ {maker} GPUs and {request.cpus}+ vCPUs"
        )
    else:
        wanted = f"{arch} instance type with {request.cpus} vCPUs and {request.memory_gib:g} GiB"
    nearest = nearest_sizes(queries.instance_types(region, filters={_ARCH_FILTER: arch}), request)
    raise NoMatchingInstanceTypesError(
        f"no {wanted}{families}",
        hint=f"Nearest sizes that exist: {'; '.join(nearest)}." if nearest else None,
    )


def architecture_of(infos: Sequence[InstanceTypeInfo], asked: str | None) -> str:
    """The architecture of the named types: ``asked`` if all run it, else theirs.

    Not asked (None): the types' one architecture, or an ``InputError`` saying which
    type is which when they mix. Asked, and a type does not run it: an ``InputError``
    naming the type and the ``--arch`` that would fit.
    """
    by_arch: dict[str, list[str]] = {}
    for info in sorted(infos, key=lambda i: i.name):
        archs = [a for a in ARCHITECTURES if a in info.architectures]
        if not archs:
            raise InputError(
                f"compute size {shown(info.name)} runs {', '.join(info.architectures)}, "
                f"none of {', '.join(ARCHITECTURES)}"
            )
        if asked in archs:
            continue
        by_arch.setdefault(archs[0], []).append(info.name)
    if asked is not None:
        if not by_arch:
            return asked
        (other, names), *_ = by_arch.items()
        raise InputError(
            f"compute size {shown(names[0])} is {other}, not {asked}",
            hint=f"Pass --arch {other}, or name {asked} instance types.",
        )
    if len(by_arch) > 1:
        which = "; ".join(f"{arch}: {', '.join(names)}" for arch, names in sorted(by_arch.items()))
        raise InputError(
            f"--compute-sizes mixes architectures ({which})",
            hint="Name instance types of one architecture.",
        )
    return next(iter(by_arch))


def resolve_architecture(
    request: ComputeRequest, *, region: str | None = None, session: Any = None
) -> ComputeRequest:
    """``request`` with its architecture settled before anything depends on it.

    A request that names types without ``arch`` takes theirs (one
    ``DescribeInstanceTypes`` call, in ``region``); any other is returned as it is.
    A host needs this before the allocation, to pick its image.
    """
    if request.arch is not None:
        return request
    queries = Ec2Queries(session)
    infos = queries.instance_types(region or DEFAULT_HOME_REGION, names=request.compute_sizes)
    return replace(request, arch=architecture_of(infos, None))


def on_demand_allocation(
    args: AllocationArgs,
    region: str,
    *,
    queries: Ec2Queries | None = None,
    seed: int | None = None,
    prefer_zone: str | None = None,
) -> AllocationResult:
    """The first AZ of ``region`` (in random, seedable order) offering any of the types,
    the other AZs that offer some as its ``candidates`` (in that order).

    ``prefer_zone`` comes first when it offers any of them: a re-run of a project
    keeps its host where it is, instead of moving it (a new subnet) to another zone.
    ``args.availability_zone`` pins the zone: it must be one of the region's and offer
    a type, else ``InputError`` / ``NoSupportedInstanceTypesError``.
    """
    queries = queries or Ec2Queries(args.session)
    instance_types = instance_types_for(queries, region, args.compute_request, False)
    with queries.executor(2) as pool:
        zones_job = pool.submit(queries.zones, region)
        offerings = queries.type_offerings(region, instance_types)
        zones = zones_job.result()
    pinned = args.availability_zone
    if pinned is not None and pinned not in {zone.name for zone in zones}:
        raise InputError(f"availability_zone {pinned!r} is not an availability zone of {region}")
    random.Random(seed).shuffle(zones)
    first = pinned or prefer_zone
    zones.sort(key=lambda zone: zone.name != first)  # stable: the rest stay shuffled
    offers = [
        Offer(
            region=region,
            availability_zone=zone.name,
            availability_zone_id=zone.zone_id,
            instance_types=tuple(t for t in instance_types if t in offerings[zone.name]),
            spot_price=None,
            max_price=None,
            score=None,
        )
        for zone in zones
        if offerings.get(zone.name)
    ]
    if pinned is not None and (not offers or offers[0].availability_zone != pinned):
        raise NoSupportedInstanceTypesError(
            f"availability_zone {pinned} offers none of {', '.join(instance_types)}",
            hint="Pin another zone of the region, or leave availability_zone out.",
        )
    if not offers:
        raise NoSupportedInstanceTypesError(
            f"no availability zone of {region} offers any of {', '.join(instance_types)}",
            hint="Try another --region, or --spot.",
        )
    best, *runner_ups = offers
    return AllocationResult(**vars(best), candidates=tuple(runner_ups))


def on_demand_comparison(
    offers: Sequence[Offer],
    product_description: str,
    *,
    session: Any = None,
    queries: Ec2Queries | None = None,
) -> list[dict[str, Any]]:
    """The offers as dicts, with on-demand prices and savings when the Pricing API answers.

    ``on_demand_price`` is the highest on-demand price among the offer's types in its
    region (the same "covers every type" basis as ``spot_price``) and
    ``saving_percent`` what the spot bid saves against it. Both keys are absent when
    the Pricing API does not answer or does not price every type of the offer.
    """
    queries = queries or Ec2Queries(session)
    types = {t for offer in offers for t in offer.instance_types}
    regions = sorted({offer.region for offer in offers})
    prices = queries.on_demand_prices(types, product_description, regions) if types else None
    return _comparison_rows(offers, prices)


def _comparison_rows(
    offers: Sequence[Offer], prices: dict[tuple[str, str], float] | None
) -> list[dict[str, Any]]:
    """The rows of ``on_demand_comparison``, from (region, type) -> on-demand price."""
    rows = []
    for offer in offers:
        row = offer.to_dict()
        known = [prices.get((offer.region, t)) for t in offer.instance_types] if prices else []
        if known and offer.spot_price is not None and all(p is not None for p in known):
            on_demand = max(p for p in known if p is not None)
            row["on_demand_price"] = on_demand
            row["saving_percent"] = round((1 - offer.spot_price / on_demand) * 100, 1)
        rows.append(row)
    return rows


def on_demand_hourly_price(
    chosen: Offer, product_description: str, *, session: Any = None
) -> tuple[float | None, str | None]:
    """The on-demand USD/hour of ``chosen`` from the Pricing API, or None and why not.

    The price is the highest among the offer's types in its region: the same "covers
    every type" basis as a spot bid.
    """
    queries = Ec2Queries(session)
    prices, reason = queries.on_demand_price_list(
        chosen.instance_types, product_description, [chosen.region]
    )
    if prices is None:
        return None, reason
    missing = [t for t in chosen.instance_types if (chosen.region, t) not in prices]
    if missing:
        return None, f"the Pricing API has no price for {missing[0]} in {chosen.region}"
    return max(prices[(chosen.region, t)] for t in chosen.instance_types), None
