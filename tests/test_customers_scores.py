"""Value scores over SQL: the whole-base recompute, the single rescore, the change hooks, the nightly run."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select
from twisted.internet import defer, task

from ccserver.customers import changes
from ccserver.customers.cache import MemorySummaryCache
from ccserver.customers.changes import Invalidator
from ccserver.customers.directory import CustomerDirectory
from ccserver.customers.scores import NightlyRecompute, current_cutoffs, recompute_all, rescore_customer
from ccserver.customers.valuation import reasons_from_components
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Customer, Order, Ticket, ValueCutoffs
from ccserver.demo import generate
from routing.value import TierShares, tier_for

AS_OF = date(2026, 11, 23)



def snapshot(sessions):
    with sessions() as s:
        return {r.id: (r.value_score, r.tier, r.score_components)
                for r in s.execute(select(Customer.id, Customer.value_score, Customer.tier,
                                          Customer.score_components))}  # fmt: skip


def test_recompute_all_tiers_components_cutoffs(loaded):
    _, sessions = loaded
    seen = []
    summary = recompute_all(sessions, as_of=AS_OF, progress=lambda d, t: seen.append((d, t)), batch_size=64)
    assert summary["customers"] == 300
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and len(seen) >= 6
    tiers = summary["tiers"]
    n = summary["purchasers"]
    assert n == 300 - tiers["prospect"] and n > 150
    # 2 / 8 / 20 % of purchasers (ties go up, rounding at this size: ± 1 customer)
    assert abs(tiers["diamond"] - round(n * 0.02)) <= 1
    assert abs(tiers["gold"] - round(n * 0.08)) <= 1
    assert abs(tiers["silver"] - round(n * 0.20)) <= 1
    rows = snapshot(sessions)
    with sessions() as s:
        stored = {t: c for t, c in s.execute(select(Customer.tier, func.count()).group_by(Customer.tier))}
        cut = s.execute(select(ValueCutoffs).order_by(ValueCutoffs.id.desc())).scalars().first()
        updated = s.execute(select(func.count()).select_from(Customer)
                            .where(Customer.score_updated_at.is_not(None))).scalar_one()  # fmt: skip
    assert stored == {t: c for t, c in tiers.items() if c}
    assert updated == 300
    assert cut is not None and cut.population == n
    assert cut.diamond >= cut.gold >= cut.silver > 0
    assert math.isclose(cut.gold, summary["cutoffs"]["gold"], abs_tol=0.006)
    assert cut.settings["shares"] == {"diamond": 0.02, "gold": 0.08, "silver": 0.2}
    assert cut.settings["weights"]["window_days"] == 730 and cut.settings["as_of"] == "2026-11-23"
    for score, tier, components in rows.values():
        assert set(components) >= {"components", "basis"}
        assert math.isclose(sum(components["components"].values()), score, abs_tol=0.06)
        if tier != "prospect":
            floor = {"diamond": cut.diamond, "gold": cut.gold, "silver": cut.silver}.get(tier, 0.0)
            assert score >= floor - 0.01
    chen = rows[3]
    assert chen[2]["risk"] == ["open_complaints:1"]
    assert "1 open complaint (risk)" in reasons_from_components(chen[2], chen[0])
    assert rows[4][1] == "prospect"  # Wang Lei


def test_recompute_all_is_deterministic_and_matches_the_demo_model(loaded):
    _, sessions = loaded
    demo = snapshot(sessions)
    with sessions() as s:
        loaded_cut = s.execute(select(ValueCutoffs)).scalars().one()  # the demo load's own recompute
    first = recompute_all(sessions, as_of=AS_OF, batch_size=1000)
    after_first = snapshot(sessions)
    # The demo load ends where a full recompute does: every score, reason and tier, and the cut-offs.
    assert after_first == demo
    assert first["retiered"] == 0
    assert (first["cutoffs"]["diamond"], first["cutoffs"]["gold"], first["cutoffs"]["silver"]) == pytest.approx(
        (loaded_cut.diamond, loaded_cut.gold, loaded_cut.silver), abs=0.005)
    assert loaded_cut.settings["source"] == "demo-data" and loaded_cut.population == first["purchasers"]
    second = recompute_all(sessions, as_of=AS_OF, batch_size=37)
    assert snapshot(sessions) == after_first
    assert first["tiers"] == second["tiers"] and first["cutoffs"] == second["cutoffs"]
    assert second["retiered"] == 0  # the provisional tiers (previous cut-offs) were already right


def test_demo_tiers_agree_with_scores_and_the_recorded_cutoffs(loaded):
    """Issue #8: customer 1 was "diamond" at 66.0 while gold began at 74.5, and no cut-offs were recorded."""
    _, sessions = loaded
    with sessions() as s:
        current = current_cutoffs(s, create_fallback=False)
        rows = s.execute(select(Customer.id, Customer.value_score, Customer.tier)).all()
    assert current is not None
    for cid, score, tier in rows:
        if tier != "prospect":  # stored scores and cut-offs are both rounded to cents
            assert tier == tier_for(score + 0.005, True, current.cutoffs) or tier == tier_for(
                score - 0.005, True, current.cutoffs), (cid, score, tier)
    by_id = {cid: tier for cid, _, tier in rows}
    assert (by_id[1], by_id[2], by_id[3], by_id[4]) == ("diamond", "silver", "bronze", "prospect")


def test_small_base_has_empty_top_tiers(db_url):
    generate(db_url, customers=20, seed=3, as_of=AS_OF)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    summary = recompute_all(sessions, as_of=AS_OF, shares=TierShares(0.02, 0.08, 0.2))
    assert summary["tiers"]["diamond"] == 0  # 2 % of ~15 rounds to 0: nobody
    with sessions() as s:
        current = current_cutoffs(s, create_fallback=False)
    assert current is not None and current.cutoffs.diamond == math.inf
    engine.dispose()


def test_rescore_uses_current_cutoffs_and_fallback(loaded):
    _, sessions = loaded
    with sessions() as s:
        s.execute(delete(ValueCutoffs))  # a database loaded by other means: no recompute on record
        s.commit()
        assert s.execute(select(func.count()).select_from(ValueCutoffs)).scalar_one() == 0
        score, tier = rescore_customer(s, 2, as_of=AS_OF)  # no recompute yet: fallback from stored scores
        s.commit()
        rows = s.execute(select(ValueCutoffs)).scalars().all()
        assert len(rows) == 1 and rows[0].settings["source"] == "fallback:stored_scores"
        assert s.get(Customer, 2).value_score == score and s.get(Customer, 2).tier == tier
        rescore_customer(s, 2, as_of=AS_OF)
        s.commit()
        assert s.execute(select(func.count()).select_from(ValueCutoffs)).scalar_one() == 1  # made once
        with pytest.raises(LookupError):
            rescore_customer(s, 10**9, as_of=AS_OF)


def test_order_hook_rescores_and_invalidates_the_cache(loaded):
    _, sessions = loaded
    recompute_all(sessions, as_of=AS_OF)
    directory = CustomerDirectory(sessions)
    cache = MemorySummaryCache(100)
    invalidator = Invalidator(cache)

    async def main():
        wang = directory.identify("+8613600000002", store_id=1, line="sales", create_prospect=False)
        assert wang.customer is not None and wang.customer.tier == "prospect"
        await cache.store("+8613600000002", wang)
        assert (await cache.lookup("+8613600000002", 0.0))[0] == wang

        # Wang Lei buys a car today: the write path records it and calls the hook in the same transaction.
        with sessions() as s:
            s.add(Order(customer_id=4, kind="vehicle_sale", amount=Decimal("450000.00"), ordered_on=AS_OF, store_id=1))
            inv = changes.order_or_visit_recorded(s, 4, as_of=AS_OF)
            s.commit()
        assert inv.customer_ids == {4} and inv.rescored[0][0] == 4
        await invalidator.apply(inv)
        assert (await cache.lookup("+8613600000002", 1.0))[0] is None
        fresh = directory.identify("+8613600000002", store_id=1, line="sales", create_prospect=False)
        assert fresh.customer.tier != "prospect" and fresh.customer.score > wang.customer.score
        assert (fresh.customer.score, fresh.customer.tier) == inv.rescored[0][1:]
        with sessions() as s:
            comps = s.get(Customer, 4).score_components
        assert comps["basis"]["spend.vehicle"].startswith("vehicle purchases ¥450,000")

    asyncio.run(main())


def test_ticket_and_number_hooks(loaded):
    _, sessions = loaded
    recompute_all(sessions, as_of=AS_OF)
    with sessions() as s:
        for t in s.execute(select(Ticket).where(Ticket.customer_id == 3)).scalars():
            t.status = "closed"
        inv = changes.ticket_changed(s, 3, as_of=AS_OF)
        s.commit()
        assert "risk" not in s.get(Customer, 3).score_components
    assert inv.customer_ids == {3}
    with sessions() as s:
        inv = changes.numbers_changed(s, ["+8613800138000", "+8613311110000"])
        assert inv.numbers == {"+8613800138000", "+8613311110000"} and inv.customer_ids == {1}
        assert changes.numbers_changed(s, []) == changes.Invalidation()
        gone = changes.order_or_visit_recorded(s, 10**9, as_of=AS_OF)  # deleted customer: invalidate only
        assert gone.customer_ids == {10**9} and gone.rescored == ()
        both = inv | gone
        assert both.customer_ids == {1, 10**9} and bool(both)
    assert changes.customer_changed(None, 5).customer_ids == {5}  # type: ignore[arg-type]


def test_nightly_recompute_schedule_and_no_overlap():
    clock = task.Clock()
    # 2026-11-23 01:00 in Shanghai
    clock.advance(datetime(2026, 11, 22, 17, 0, tzinfo=UTC).timestamp())
    pending: list[defer.Deferred] = []
    ran: list[date] = []

    def in_thread(fn, *args):
        d: defer.Deferred = defer.Deferred()
        pending.append(d)
        d.addCallback(lambda _: fn(*args))
        return d

    nightly = NightlyRecompute(None, clock=clock, run_in_thread=in_thread, job=ran.append)
    assert nightly.next_run_at(clock.seconds()) - clock.seconds() == 2 * 3600
    nightly.start()
    clock.advance(2 * 3600 - 1)
    assert not pending
    clock.advance(1)  # 03:00
    assert len(pending) == 1 and nightly.running
    assert nightly.run_now() is None and nightly.skipped == 1  # never overlapping
    clock.advance(24 * 3600)  # next night while the first is still running: skipped
    assert len(pending) == 1 and nightly.skipped == 2
    pending[0].callback(None)
    assert ran == [date(2026, 11, 23)] and not nightly.running and nightly.runs == 1
    clock.advance(24 * 3600)
    assert len(pending) == 2
    pending[1].errback(RuntimeError("database down"))
    assert not nightly.running and isinstance(nightly.last_error, RuntimeError)
    clock.advance(24 * 3600)
    assert len(pending) == 3  # the schedule goes on after a failure
    nightly.stop()
    clock.advance(3 * 24 * 3600)
    assert len(pending) == 3


def test_nightly_recompute_without_a_runner_uses_the_loops_default_pool():
    """No ``run_in_thread``: the run goes to the loop's default executor — ``ccserver run`` makes that its one
    BlockingPool — not to Twisted's own thread pool."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ccserver.bridge import wait

    async def main() -> tuple[list[str], int]:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="the-one-pool")
        asyncio.get_running_loop().set_default_executor(pool)
        threads: list[str] = []
        clock = task.Clock()
        clock.advance(datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp())
        nightly = NightlyRecompute(None, clock=clock, job=lambda as_of: threads.append(
            threading.current_thread().name))
        await wait(nightly.run_now())
        pool.shutdown()
        return threads, nightly.runs

    threads, runs = asyncio.run(main())
    assert runs == 1 and len(threads) == 1 and threads[0].startswith("the-one-pool")


def test_nightly_recompute_runs_recompute_all(sqlite_url):
    generate(sqlite_url, customers=50, seed=2, as_of=AS_OF)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    clock = task.Clock()
    clock.advance(datetime(2026, 11, 22, 19, 0, tzinfo=UTC).timestamp())  # 03:00 Shanghai

    def inline(fn, *args):
        return defer.maybeDeferred(fn, *args)

    nightly = NightlyRecompute(sessions, clock=clock, run_in_thread=inline, at=dtime(3, 0))
    d = nightly.run_now()
    assert d is not None and nightly.last_result["customers"] == 50
    assert nightly.last_result["as_of"] == "2026-11-23"
    engine.dispose()
