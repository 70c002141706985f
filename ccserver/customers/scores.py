"""Value scores and tiers over SQL: the whole base (``recompute_all``), one customer (``rescore_customer``), and
the nightly schedule (``NightlyRecompute``).

**Facts** (``routing.value.CustomerFacts``) come from SQL aggregates, never from ORM objects, for a run of
customers at a time (keyset batches of ``batch_size`` ids; every aggregate is ``GROUP BY customer_id`` over
``customer_id BETWEEN first AND last`` of the batch, which the ``(customer_id, …)`` indexes serve):

- ``spend``: ``SUM(orders.amount)`` per order kind (``valuation.SPEND_CATEGORY``) with ``ordered_on`` in the
  window ``[as_of − window_days, as_of]``; orders after ``as_of`` are ignored.
- ``activity_count``: orders in the window + service visits opened in the window.
- ``last_activity``: the latest order day or visit day (local time) up to ``as_of``; None if neither.
- ``first_purchase``: the earliest vehicle ``purchase_date`` or order of a purchase kind (vehicle sale, used car,
  service, insurance) — tenure counts from the first time the customer paid the group for their car.
- ``vehicles``: vehicles on record. ``membership_level``: the customer row. ``open_complaints``: complaint
  tickets open / in progress.
- ``has_purchases`` (**decision**): a vehicle on record or any order of a purchase kind. Accessories alone (a
  test-drive deposit, a floor mat) leave a customer a ``prospect``, as the demo data has it.

**Tiers** are percentiles of the purchasing customers' scores (``routing.value.compute_cutoffs``; default 2 / 8 /
20 %). A run is two passes so nothing but three compact arrays (id, score, provisional tier: ~17 bytes a
customer) is held in memory: pass 1 streams facts → score → writes score, components and a *provisional* tier
(against the previous cut-offs); then the cut-offs are computed from all scores and pass 2 rewrites only the tiers
that the new cut-offs change (usually few). A ``value_cutoffs`` row records the cut-offs, the weights and the
shares; ``customers.updated_at`` is left alone (a rescore is not an edit of the customer).

**Single rescore** (an order, a visit, a ticket): the same aggregates for one id, scored with the weights of the
newest ``value_cutoffs`` row and placed against its cut-offs. **Fallback** when no recompute ever ran: cut-offs
from the scores already stored on the purchasing customers (one scan), saved as a ``value_cutoffs`` row
(``settings.source = "fallback:stored_scores"``) so it happens once.

Cut-offs that mean "nobody" (``inf``: too few customers) are stored as 999999.99 (the column is Numeric(8, 2))
and read back as ``inf`` (anything ≥ 1000; scores are ≤ 100).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time as _time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Connection, Date, Table, and_, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session

from ccserver.bridge import as_deferred, settle
from ccserver.customers.directory import OPEN_COMPLAINT_STATUSES
from ccserver.customers.valuation import (
    PURCHASE_ORDER_KINDS,
    SPEND_CATEGORY,
    settings_json,
    valuate,
    weights_from_settings,
)
from ccserver.db.models import CampaignAttempt, Customer, Order, ServiceVisit, Ticket, ValueCutoffs, Vehicle
from ccserver.db.types import UTCDateTime
from routing.value import TIERS, CustomerFacts, TierCutoffs, TierShares, ValueWeights, compute_cutoffs, tier_for

__all__ = [
    "recompute_all",
    "rescore_customer",
    "current_cutoffs",
    "facts_for_range",
    "NightlyRecompute",
    "DEFAULT_TIME_ZONE",
    "TIER_CODES",
    "record_cutoffs",
    "settle_tiers",
]

log = logging.getLogger(__name__)

DEFAULT_TIME_ZONE: Final = "Asia/Shanghai"
NOBODY: Final = 999_999.99  # stored for an infinite cut-off
_TIER_CODE: Final = {t: i for i, t in enumerate(TIERS)}
_PROSPECT: Final = _TIER_CODE["prospect"]

_c = cast(Table, Customer.__table__)
_o = cast(Table, Order.__table__)
_sv = cast(Table, ServiceVisit.__table__)
_vh = cast(Table, Vehicle.__table__)
_tk = cast(Table, Ticket.__table__)
_vc = cast(Table, ValueCutoffs.__table__)
_ca = cast(Table, CampaignAttempt.__table__)
# Campaign dispositions that were no conversation (ccserver/campaigns/service.py DISPOSITIONS).
_NOT_REACHED: Final = ("refused", "wrong_number", "no_answer", "busy")

Progress = Callable[[int, int], None]


def _to_db(x: float) -> float:
    return NOBODY if not math.isfinite(x) or x > NOBODY else round(x, 2)


def _from_db(x: float | None) -> float:
    return math.inf if x is None or x >= 1000 else float(x)


def _local_day_bounds(day: date, tz: tzinfo) -> datetime:
    """UTC instant of the local midnight that starts ``day``."""
    return datetime.combine(day, dtime(0), tz).astimezone(UTC)


# --- facts ------------------------------------------------------------------------------------------------


def facts_for_range(
    session: Session,
    first_id: int,
    last_id: int,
    *,
    as_of: date,
    weights: ValueWeights,
    tz: tzinfo,
    customers: Iterable[tuple[int, int]] | None = None,
) -> dict[int, CustomerFacts]:
    """CustomerFacts of every customer with ``first_id ≤ id ≤ last_id`` (five GROUP BY queries).

    ``customers``: (id, membership_level) rows already read for the range (else they are read here).
    """
    window_start = as_of - timedelta(days=weights.window_days)  # inclusive, as the demo generator counts
    day_end = _local_day_bounds(as_of + timedelta(days=1), tz)
    window_start_dt = _local_day_bounds(window_start, tz)
    rng = {"lo": first_id, "hi": last_id}
    lo_hi: tuple[BindParameter[int], BindParameter[int]] = (bindparam("lo"), bindparam("hi"))

    if customers is None:
        customers = session.execute(
            select(_c.c.id, _c.c.membership_level).where(_c.c.id.between(*lo_hi)), rng
        ).all()
    base = {int(cid): int(level or 0) for cid, level in customers}

    in_window = and_(_o.c.ordered_on >= window_start, _o.c.ordered_on <= as_of)
    orders = session.execute(
        select(
            _o.c.customer_id,
            _o.c.kind,
            func.sum(case((in_window, _o.c.amount), else_=0)),
            func.sum(case((in_window, 1), else_=0)),
            func.max(case((_o.c.ordered_on <= as_of, _o.c.ordered_on)), type_=Date()),
            func.min(_o.c.ordered_on, type_=Date()),
        )
        .where(_o.c.customer_id.between(*lo_hi))
        .group_by(_o.c.customer_id, _o.c.kind),
        rng,
    )
    spend: dict[int, dict[str, float]] = {}
    activities: dict[int, int] = {}
    last: dict[int, date] = {}
    first: dict[int, date] = {}
    purchased: set[int] = set()
    for cid, kind, amount, count, latest, earliest in orders:
        cid = int(cid)
        category = SPEND_CATEGORY.get(kind)
        if category is not None and amount:
            bucket = spend.setdefault(cid, {})
            bucket[category] = bucket.get(category, 0.0) + float(amount)
        activities[cid] = activities.get(cid, 0) + int(count or 0)
        if latest is not None and (cid not in last or latest > last[cid]):
            last[cid] = latest
        if kind in PURCHASE_ORDER_KINDS and earliest is not None and earliest <= as_of:
            purchased.add(cid)
            if cid not in first or earliest < first[cid]:
                first[cid] = earliest

    visit_in_window = and_(_sv.c.opened_at >= window_start_dt, _sv.c.opened_at < day_end)
    visits = session.execute(
        select(
            _sv.c.customer_id,
            func.sum(case((visit_in_window, 1), else_=0)),
            func.max(case((_sv.c.opened_at < day_end, _sv.c.opened_at)), type_=UTCDateTime()),
        )
        .where(_sv.c.customer_id.between(*lo_hi))
        .group_by(_sv.c.customer_id),
        rng,
    )
    for cid, count, latest_at in visits:
        cid = int(cid)
        activities[cid] = activities.get(cid, 0) + int(count or 0)
        if latest_at is not None:
            day = latest_at.astimezone(tz).date()
            if cid not in last or day > last[cid]:
                last[cid] = day

    vehicles: dict[int, int] = {}
    for cid, count, earliest in session.execute(
        select(_vh.c.customer_id, func.count(), func.min(_vh.c.purchase_date, type_=Date()))
        .where(_vh.c.customer_id.between(*lo_hi))
        .group_by(_vh.c.customer_id),
        rng,
    ):
        cid = int(cid)
        vehicles[cid] = int(count)
        purchased.add(cid)
        if earliest is not None and earliest <= as_of and (cid not in first or earliest < first[cid]):
            first[cid] = earliest

    complaints = {
        int(cid): int(count)
        for cid, count in session.execute(
            select(_tk.c.customer_id, func.count())
            .where(_tk.c.customer_id.between(*lo_hi), _tk.c.kind == "complaint",
                   _tk.c.status.in_(OPEN_COMPLAINT_STATUSES))
            .group_by(_tk.c.customer_id),
            rng,
        )
    }

    # Outbound campaign calls in the window, by the agent's disposition (reached / booked / refused).
    campaign: dict[int, tuple[int, int, int]] = {}
    attempt_in_window = and_(_ca.c.originated_at >= window_start_dt, _ca.c.originated_at < day_end,
                             _ca.c.disposition.is_not(None))
    for cid, reached, booked, refused in session.execute(
        select(
            _ca.c.customer_id,
            func.sum(case((_ca.c.disposition.not_in(_NOT_REACHED), 1), else_=0)),
            func.sum(case((_ca.c.disposition == "booked", 1), else_=0)),
            func.sum(case((_ca.c.disposition == "refused", 1), else_=0)),
        )
        .where(_ca.c.customer_id.between(*lo_hi), attempt_in_window)
        .group_by(_ca.c.customer_id),
        rng,
    ):
        campaign[int(cid)] = (int(reached or 0), int(booked or 0), int(refused or 0))

    return {
        cid: CustomerFacts(
            spend=spend.get(cid, {}),
            last_activity=last.get(cid),
            activity_count=activities.get(cid, 0),
            first_purchase=first.get(cid),
            vehicles=vehicles.get(cid, 0),
            membership_level=level,
            open_complaints=int(complaints.get(cid, 0)),
            has_purchases=cid in purchased,
            campaign_reached=campaign.get(cid, (0, 0, 0))[0],
            campaign_booked=campaign.get(cid, (0, 0, 0))[1],
            campaign_refused=campaign.get(cid, (0, 0, 0))[2],
        )
        for cid, level in base.items()
    }


# --- cut-offs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrentCutoffs:
    cutoffs: TierCutoffs
    weights: ValueWeights
    computed_at: datetime | None


def _cutoffs_from_row(row: ValueCutoffs) -> CurrentCutoffs:
    return CurrentCutoffs(
        TierCutoffs(_from_db(row.diamond), _from_db(row.gold), _from_db(row.silver), int(row.population or 0)),
        weights_from_settings(row.settings) or ValueWeights(),
        row.computed_at,
    )


def current_cutoffs(session: Session, *, create_fallback: bool = True) -> CurrentCutoffs | None:
    """The newest ``value_cutoffs`` row; without one, the documented fallback (saved), or None."""
    row = session.execute(
        select(ValueCutoffs).order_by(ValueCutoffs.computed_at.desc(), ValueCutoffs.id.desc()).limit(1)
    ).scalar()
    if row is not None:
        return _cutoffs_from_row(row)
    if not create_fallback:
        return None
    scores = [float(s) for s in session.execute(select(_c.c.value_score).where(_c.c.tier != "prospect")).scalars()]
    cut = compute_cutoffs(scores)
    weights, shares = ValueWeights(), TierShares()
    row = ValueCutoffs(
        computed_at=datetime.now(UTC), diamond=_to_db(cut.diamond), gold=_to_db(cut.gold), silver=_to_db(cut.silver),
        population=cut.population, settings=settings_json(weights, shares, source="fallback:stored_scores"),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return CurrentCutoffs(cut, weights, row.computed_at)


# --- one customer -----------------------------------------------------------------------------------------


def rescore_customer(
    session: Session,
    customer_id: int,
    *,
    as_of: date,
    weights: ValueWeights | None = None,
    tz: tzinfo | str = DEFAULT_TIME_ZONE,
) -> tuple[float, str]:
    """Rescore one customer now against the current cut-offs; updates the row in ``session`` (the caller
    commits). Returns (score, tier). LookupError when there is no such customer."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    current = current_cutoffs(session)
    assert current is not None
    w = weights or current.weights
    facts = facts_for_range(session, customer_id, customer_id, as_of=as_of, weights=w, tz=zone).get(customer_id)
    if facts is None:
        raise LookupError(f"no customer {customer_id}")
    v = valuate(facts, as_of, current.cutoffs, w)
    session.execute(
        update(_c)
        .where(_c.c.id == customer_id)
        .values(value_score=v.score, tier=v.tier, score_components=v.components,
                score_updated_at=datetime.now(UTC), updated_at=_c.c.updated_at)
    )  # fmt: skip
    return v.score, v.tier


# --- the whole base ---------------------------------------------------------------------------------------


def _write_batch(session: Session, rows: list[dict[str, Any]]) -> None:
    """executemany of one UPDATE (psycopg 3 pipelines it). Measured on PostgreSQL with 1 M customers: the
    server-side index maintenance dominates (customers has 7 indexes; value_score and tier are indexed, so
    updates are not HOT); a single UPDATE … FROM unnest(arrays) was no faster."""
    if not rows:
        return
    session.execute(
        update(_c)
        .where(_c.c.id == bindparam("b_id"))
        .values(value_score=bindparam("b_score"), tier=bindparam("b_tier"),
                score_components=bindparam("b_comp", type_=_c.c.score_components.type),
                score_updated_at=bindparam("b_at", type_=UTCDateTime()), updated_at=_c.c.updated_at)
        .execution_options(synchronize_session=False),
        rows,
    )  # fmt: skip


TIER_CODES: Final = _TIER_CODE  # tier → the one-byte code of the ``provisional`` arrays below


def settle_tiers(conn: Session | Connection, ids: Sequence[int], totals: Sequence[float], provisional: bytearray,
                 shares: TierShares) -> tuple[TierCutoffs, dict[str, int], int]:
    """Pass 2 of a full recompute, for anyone holding every customer's (id, score, provisional tier code): the
    cut-offs from the purchasers' scores, then the tiers those cut-offs change rewritten in ``conn`` (not
    committed). Returns (cut-offs, customers per tier, tiers rewritten). Used by ``recompute_all`` and by the
    demo-data load, whose scores are the value model's on the same facts."""
    scored = [totals[i] for i in range(len(ids)) if provisional[i] != _PROSPECT]
    cut = compute_cutoffs(scored, shares)
    del scored
    changed: dict[str, list[int]] = {}
    counts = dict.fromkeys(TIERS, 0)
    for i in range(len(ids)):
        code = provisional[i]
        tier = "prospect" if code == _PROSPECT else tier_for(totals[i], True, cut)
        counts[tier] += 1
        if _TIER_CODE[tier] != code:
            changed.setdefault(tier, []).append(ids[i])
    retiered = 0
    for tier, tier_ids in changed.items():
        for k in range(0, len(tier_ids), 1000):
            part = tier_ids[k : k + 1000]
            conn.execute(update(_c).where(_c.c.id.in_(part)).values(tier=tier, updated_at=_c.c.updated_at))
            retiered += len(part)
    return cut, counts, retiered


def record_cutoffs(conn: Session | Connection, cut: TierCutoffs, weights: ValueWeights, shares: TierShares, *,
                   computed_at: datetime, **settings: Any) -> None:
    """Add the ``value_cutoffs`` row of a full recompute (not committed): the newest row is the current one."""
    conn.execute(insert(_vc).values(
        computed_at=computed_at, diamond=_to_db(cut.diamond), gold=_to_db(cut.gold), silver=_to_db(cut.silver),
        population=cut.population, settings=settings_json(weights, shares, **settings),
    ))  # fmt: skip


def recompute_all(
    session_factory: Callable[[], Session],
    *,
    as_of: date,
    weights: ValueWeights | None = None,
    shares: TierShares | None = None,
    progress: Progress | None = None,
    batch_size: int = 5000,
    tz: tzinfo | str = DEFAULT_TIME_ZONE,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Rescore every customer as of ``as_of``, recompute the tier cut-offs, re-tier, record a ``value_cutoffs``
    row. Streams (see the module docstring). Returns a summary: customers, purchasers, tier counts, cut-offs,
    changed tiers in pass 2, seconds. ``progress(done, total)`` after every batch (pass 1) and at the end."""
    started = _time.perf_counter()
    if batch_size < 1:
        raise ValueError("batch_size must be ≥ 1")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    w = weights or ValueWeights()
    s = shares or TierShares()
    stamp = now()

    ids = array("q")
    totals = array("d")
    provisional = bytearray()
    with session_factory() as session:
        total = int(session.execute(select(func.count()).select_from(_c)).scalar_one())
        previous = current_cutoffs(session, create_fallback=False)
        session.rollback()
        guess = previous.cutoffs if previous is not None else TierCutoffs(math.inf, math.inf, math.inf, 0)
        if progress:
            progress(0, total)
        after = None
        done = 0
        while True:
            stmt = select(_c.c.id, _c.c.membership_level).order_by(_c.c.id).limit(batch_size)
            if after is not None:
                stmt = stmt.where(_c.c.id > after)
            chunk = session.execute(stmt).all()
            if not chunk:
                break
            first_id, last_id = int(chunk[0][0]), int(chunk[-1][0])
            facts = facts_for_range(session, first_id, last_id, as_of=as_of, weights=w, tz=zone, customers=chunk)
            rows = []
            for cid, _level in chunk:
                cid = int(cid)
                v = valuate(facts[cid], as_of, guess, w)
                ids.append(cid)
                totals.append(v.score)
                provisional.append(_TIER_CODE[v.tier])
                rows.append({"b_id": cid, "b_score": v.score, "b_tier": v.tier, "b_comp": v.components, "b_at": stamp})
            _write_batch(session, rows)
            session.commit()
            after = last_id
            done += len(chunk)
            if progress:
                progress(done, max(total, done))

        cut, counts, retiered = settle_tiers(session, ids, totals, provisional, s)
        record_cutoffs(session, cut, w, s, computed_at=stamp, source="recompute_all", as_of=as_of.isoformat(),
                       customers=len(ids))
        session.commit()
    if progress:
        progress(len(ids), len(ids))
    return {
        "as_of": as_of.isoformat(),
        "customers": len(ids),
        "purchasers": cut.population,
        "tiers": counts,
        "cutoffs": {"diamond": cut.diamond, "gold": cut.gold, "silver": cut.silver},
        "retiered": retiered,
        "seconds": round(_time.perf_counter() - started, 2),
    }


# --- the nightly run --------------------------------------------------------------------------------------


def _in_default_pool(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the running loop's default executor, as a Deferred."""
    return as_deferred(asyncio.to_thread(fn, *args))


class NightlyRecompute:
    """Runs ``recompute_all`` once a day at ``at`` local time (default 03:00 Asia/Shanghai) in a worker thread.

    ``clock``: an IReactorTime (the reactor; ``task.Clock`` in tests) for ``callLater``. ``wall``: epoch
    seconds now (default ``clock.seconds``). ``run_in_thread(fn, *args) -> Deferred`` (``ccserver run`` gives
    its ``BlockingPool``; default: the running loop's default executor).
    Runs never overlap: a run still going at the next slot (or a
    ``run_now`` while one runs) is skipped and logged. A failed run is logged; the schedule goes on.
    ``job(as_of)`` replaces the default ``recompute_all(session_factory, as_of=…, weights, shares)``.

    ``cluster`` (``ccserver.cluster.ClusterJobs``): every node schedules the run, one runs it — the occurrence
    is the job ``scores-recompute`` with the local date as its slot; the others log who ran it. ``after(result)``
    (a coroutine function: ``Invalidator.everything`` drops the cached customers) runs on the node that ran the
    recompute, before the run counts as done. With either, the run is driven on the asyncio loop (the
    reactor's).
    """

    JOB_NAME = "scores-recompute"

    def __init__(
        self,
        session_factory: Callable[[], Session] | None,
        *,
        clock: Any,
        at: dtime = dtime(3, 0),
        tz: str = DEFAULT_TIME_ZONE,
        weights: ValueWeights | None = None,
        shares: TierShares | None = None,
        run_in_thread: Callable[..., Any] | None = None,
        wall: Callable[[], float] | None = None,
        job: Callable[[date], Any] | None = None,
        cluster: Any = None,
        after: Callable[[Any], Awaitable[Any]] | None = None,
    ):
        if job is None and session_factory is None:
            raise ValueError("need a session_factory or a job")
        self.clock = clock
        self.at = at
        self.zone = ZoneInfo(tz)
        self.weights = weights
        self.shares = shares
        self._sessions = session_factory
        self._run_in_thread = run_in_thread
        self._wall = wall or clock.seconds
        self._job = job
        self._cluster = cluster
        self._after = after
        self._call: Any = None
        self.running = False
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.runs = 0
        self.skipped = 0
        self.elsewhere = 0  # occurrences another node ran

    def next_run_at(self, now: float) -> float:
        """Epoch seconds of the next ``at`` strictly after ``now`` (local wall time, DST-safe)."""
        local = datetime.fromtimestamp(now, self.zone)
        candidate = datetime.combine(local.date(), self.at, self.zone)
        if candidate.timestamp() <= now:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.at, self.zone)
        return candidate.timestamp()

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        now = self._wall()
        self._call = self.clock.callLater(max(0.0, self.next_run_at(now) - now), self._fire)

    def _fire(self) -> None:
        self._call = None
        self.run_now()
        self._schedule()

    def _default_job(self, as_of: date) -> dict[str, Any]:
        assert self._sessions is not None
        return recompute_all(self._sessions, as_of=as_of, weights=self.weights, shares=self.shares, tz=self.zone)

    def run_now(self) -> Any:
        """Start a run now (as of today's local date); returns its Deferred, or None when one is running."""
        if self.running:
            self.skipped += 1
            log.warning("score recompute still running; this run is skipped")
            return None
        as_of = datetime.fromtimestamp(self._wall(), self.zone).date()
        run = self._run_in_thread
        if run is None:
            run = _in_default_pool
        self.running = True
        job = self._job or self._default_job
        if self._cluster is None and self._after is None:
            d = run(job, as_of)
        else:
            d = as_deferred(self._once(run, job, as_of))
        d.addCallbacks(self._succeeded, self._failed)
        return d

    async def _once(self, run: Callable[..., Any], job: Callable[[date], Any], as_of: date) -> Any:
        """The run as an asyncio coroutine: in the worker thread, then ``after``; once per cluster if asked."""
        async def recompute() -> Any:
            result = await settle(run(job, as_of))
            if self._after is not None:
                await self._after(result)
            return result

        if self._cluster is None:
            return await recompute()
        outcome = await self._cluster.run(self.JOB_NAME, recompute, slot=as_of.isoformat())
        return outcome.result if outcome.ran else _RanElsewhere(outcome.holder)

    def _succeeded(self, result: Any) -> Any:
        self.running = False
        if isinstance(result, _RanElsewhere):
            self.elsewhere += 1
            log.info("score recompute: run by %s this time", result.holder)
            return result
        self.runs += 1
        self.last_result = result
        self.last_error = None
        log.info("score recompute done: %s", result)
        return result

    def _failed(self, failure: Any) -> None:
        self.running = False
        self.last_error = failure.value
        log.error("score recompute failed: %s", failure.getErrorMessage())
        return None


@dataclass(frozen=True)
class _RanElsewhere:
    holder: str | None
