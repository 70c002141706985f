"""The dialer's reserve: attempt rows written ahead of their Originates, off the send's path; the gate asked again
in memory at the moment of the send (a DNC entry or a refusal that arrives after the write stops it: the row is
``unsent``); released lines (pause, lost lease, stop); after a crash, rows written ahead without a send mark are
released and the ones with a mark reconciled — never a double dial. Injected ManualClock, real SQL and Redis."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update

from ccserver.campaigns.service import CampaignService
from ccserver.campaigns.settings import CampaignSettings
from ccserver.clock import ManualClock
from ccserver.db.models import Campaign, CampaignAttempt, CampaignTarget, Customer
from ccserver.dialer.engine import Dialer
from ccserver.dialer.leases import MemoryContactLeases, RedisContactLeases
from ccserver.dialer.store import DialerStore
from tests.dialer_support import MORNING, ScriptedOriginator, campaign, database, filled, inline, turns


def numbers(n: int, base: int = 0) -> list[str]:
    return [f"+86139{base + i:08d}" for i in range(n)]


def attempts(sessions: Any) -> list[tuple[str, int, str | None, bool]]:
    """(action id, target, outcome, sent) of every attempt row, in order."""
    with sessions() as s:
        return [(a.action_id, a.target_id, a.outcome, a.sent_at is not None)
                for a in s.scalars(select(CampaignAttempt).order_by(CampaignAttempt.id))]


def targets_state(sessions: Any) -> dict[int, tuple[str, int, str | None]]:
    with sessions() as s:
        return {t.id: (t.status, t.attempts, t.drop_reason) for t in s.scalars(select(CampaignTarget))}


class Recording:
    """A DialerStore that notes every call (in one log with the Originates), to see what is on the send's path."""

    def __init__(self, store: DialerStore, log: list[tuple[str, str]]) -> None:
        self._store, self._log = store, log

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append(("sql", name))
            return fn(*args, **kwargs)

        return call


class Logged(ScriptedOriginator):
    def __init__(self, clock: Any, log: list[tuple[str, str]], **kw: Any) -> None:
        super().__init__(clock, **kw)
        self.log = log

    def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
        self.log.append(("originate", server))
        return super().originate(server, channel, **kwargs)


def make(sessions: Any, clock: ManualClock, free: list[int], *, log: list[tuple[str, str]] | None = None,
         leases: Any = None, originator: Any = None, **kw: Any) -> Dialer:
    log = log if log is not None else []
    return Dialer(Recording(DialerStore(sessions), log), originator or Logged(clock, log, delay=20.0),  # type: ignore[arg-type]
                  leases or MemoryContactLeases(clock.monotonic), run_blocking=inline, clock=clock,
                  default_zone="Asia/Shanghai", floor=lambda queue, server, now: (free[0], []), **kw)


def test_lines_are_written_ahead_and_sent_without_sql_on_their_path(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, ids = campaign(sessions, numbers(30), max_attempts=1)

    async def run() -> tuple[list[tuple[str, str]], Dialer]:
        clock = ManualClock(MORNING)
        log: list[tuple[str, str]] = []
        free = [4]
        dialer = make(sessions, clock, free, log=log)
        assert await dialer.tick() == 4  # nothing written ahead yet: written in the tick, then sent
        await turns()  # the background fill writes the next lines ahead
        reserve = list(dialer.campaigns[cid].reserve)
        assert len(reserve) == 4
        with sessions() as s:
            ahead = {a.action_id: a.sent_at for a in s.scalars(select(CampaignAttempt))}
        assert all(ahead[r.action_id] is None for r in reserve)  # written, not sent
        log.clear()
        free[0] = 8  # four more agents free: the four lines written ahead go
        await clock.advance(0.1)
        assert await dialer.tick() == 4
        path = log[:log.index(("originate", "default"))] if ("originate", "default") in log else log
        assert ("sql", "prepare_attempts") not in path and ("sql", "begin_attempts") not in path
        assert [e for e in log if e[0] == "originate"] == [("originate", "default")] * 4
        await dialer.flush()
        return log, dialer

    _log, dialer = asyncio.run(run())
    rows = attempts(sessions)
    sent = [r for r in rows if r[3]]
    assert len(sent) == 8 and len(set(r[1] for r in sent)) == 8  # each target once
    assert {r[0] for r in sent} == set(dialer.sent)
    assert len(dialer.sent) == len(set(dialer.sent)) == 8
    state = targets_state(sessions)
    assert sum(1 for v in state.values() if v[0] == "active") == len(rows)  # in flight or written ahead
    assert set(ids) >= {r[1] for r in rows}


def test_a_dnc_entry_or_a_refusal_after_the_write_stops_the_send(sqlite_url: str) -> None:
    """Through the campaign service (the server's wiring): the row written ahead ends ``unsent``, the target is
    dropped with the reason, no Originate carries its number."""
    sessions = database(sqlite_url)
    cid, ids = campaign(sessions, numbers(8), type="insurance", max_attempts=1)  # a marketing type

    async def run() -> tuple[Dialer, ScriptedOriginator, list[str], int]:
        clock = ManualClock(MORNING)
        free = [2]
        originator = ScriptedOriginator(clock, delay=20.0)
        dialer = make(sessions, clock, free, originator=originator)
        service = CampaignService(sessions, inline, clock=clock, default_zone="Asia/Shanghai")
        service.on_forbid.append(dialer.forbid)
        assert await dialer.tick() == 2
        await turns()
        reserve = list(dialer.campaigns[cid].reserve)
        assert len(reserve) == 2
        blocked = dialer.campaigns[cid].contacts[reserve[0].target.id].e164
        refuser = reserve[1].target.customer_id
        assert refuser is not None

        class Who:
            user_id = None

        await service.dnc_add(Who(), blocked)  # type: ignore[arg-type]
        await service.refused(refuser)
        free[0] = 4
        await clock.advance(0.1)
        sent_now = await dialer.tick()
        await dialer.flush()
        return dialer, originator, [blocked], sent_now

    dialer, originator, blocked, sent_now = asyncio.run(run())
    dialled = [kw["variables"]["CC_DIAL"] for _aid, _ch, kw in originator.sent]
    assert not any(b in d for d in dialled for b in blocked)
    rows = {r[0]: r for r in attempts(sessions)}
    unsent = [r for r in rows.values() if r[2] == "unsent"]
    assert len(unsent) == 2 and not any(r[3] for r in unsent)
    state = targets_state(sessions)
    assert sorted(state[r[1]] for r in unsent) == [("dropped", 0, "dnc_number"), ("dropped", 0, "refused")]
    assert all(state[r[1]][1] == 0 for r in unsent)  # not counted as attempts
    # The two lines the tick wanted came from a fresh write instead (never the refused ones).
    assert len(originator.sent) == 2 + sent_now
    assert len({kw["variables"]["CC_TARGET_ID"] for _a, _c, kw in originator.sent}) == len(originator.sent)
    assert set(ids) >= {int(kw["variables"]["CC_TARGET_ID"]) for _a, _c, kw in originator.sent}


def test_a_customer_barred_by_another_path_is_not_dialled(sqlite_url: str) -> None:
    """``do_not_call`` set, or consent withdrawn, on the customer row itself (the customer page, a CRM import, an
    erasure — not the campaign service) after the dialer read its contacts: those customers' lines are never
    sent, their targets dropped with the reason, long before the next full refresh re-reads the contacts."""
    sessions = database(sqlite_url)
    cid, ids = campaign(sessions, numbers(8), type="insurance", max_attempts=1)  # a marketing type
    with sessions() as s:
        by_target = {t.id: (t.customer_id, t.e164) for t in s.scalars(select(CampaignTarget))}
    barred_target, unconsented_target = ids[-1], ids[-2]  # the last in order: not picked before the change

    async def run() -> ScriptedOriginator:
        clock = ManualClock(MORNING)
        free = [2]
        originator = ScriptedOriginator(clock, delay=1.0)
        dialer = make(sessions, clock, free, originator=originator)
        assert await dialer.tick() == 2
        await turns()
        with sessions.begin() as s:  # as the customer page or an import would
            s.execute(update(Customer).where(Customer.id == by_target[barred_target][0]).values(do_not_call=True))
            s.execute(update(Customer).where(Customer.id == by_target[unconsented_target][0]).values(consent=False))
        for _ in range(20):  # 10 s: well inside the 60 s full refresh
            await clock.advance(0.5)
            await dialer.tick()
            await turns()
        await dialer.flush()
        return originator

    originator = asyncio.run(run())
    dialled = {int(kw["variables"]["CC_TARGET_ID"]) for _a, _c, kw in originator.sent}
    assert barred_target not in dialled and unconsented_target not in dialled
    assert len(dialled) == 6  # everyone else was dialled
    state = targets_state(sessions)
    assert state[barred_target] == ("dropped", 0, "dnc_customer")
    assert state[unconsented_target] == ("dropped", 0, "no_consent")


def test_window_closing_after_the_write_releases_the_line_back_to_pending(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, _ids = campaign(sessions, numbers(6), max_attempts=2)
    evening = datetime(2026, 11, 24, 11, 59, 59, tzinfo=UTC).timestamp()  # 19:59:59 in Shanghai

    async def run() -> ScriptedOriginator:
        clock = ManualClock(evening)
        originator = ScriptedOriginator(clock, delay=20.0)
        free = [2]
        dialer = make(sessions, clock, free, originator=originator)
        assert await dialer.tick() == 2
        await turns()
        assert len(dialer.campaigns[cid].reserve) == 2
        free[0] = 4
        await clock.advance(1.5)  # 20:00:00.5: the window has closed
        assert await dialer.tick() == 0
        await dialer.flush()
        return originator

    originator = asyncio.run(run())
    assert len(originator.sent) == 2
    rows = attempts(sessions)
    unsent = [r for r in rows if r[2] == "unsent"]
    assert len(unsent) == 2
    state = targets_state(sessions)
    assert all(state[r[1]] == ("pending", 0, None) for r in unsent)  # back in the pool, nothing counted


def test_pause_stop_and_age_release_the_lines_written_ahead(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, _ = campaign(sessions, numbers(10), max_attempts=1)
    other, _ = campaign(sessions, numbers(10, base=100), max_attempts=1)

    async def run() -> Dialer:
        clock = ManualClock(MORNING)
        free = [2]
        dialer = make(sessions, clock, free, check=5.0)
        await dialer.tick()
        await turns()
        assert len(dialer.campaigns[cid].reserve) == 2 and len(dialer.campaigns[other].reserve) == 2
        with sessions.begin() as s:
            s.execute(update(Campaign).where(Campaign.id == cid).values(status="paused"))
        free[0] = 0  # no agent free: nothing sent, the other campaign's lines wait
        await clock.advance(5.0)
        await dialer.tick()  # the check sees the pause: its lines are released
        await dialer.flush()
        assert cid not in dialer.campaigns
        assert len(dialer.campaigns[other].reserve) == 2
        await clock.advance(5.0)  # older than max(5 s, 3 × prewrite_seconds): released
        await dialer.tick()
        await dialer.flush()
        assert len(dialer.campaigns[other].reserve) == 0
        free[0] = 4
        await dialer.tick()
        await turns()
        assert dialer.campaigns[other].reserve
        await dialer.stop()  # a stop releases what is left
        return dialer

    asyncio.run(run())
    rows = attempts(sessions)
    assert all(r[2] == "unsent" for r in rows if not r[3])
    state = targets_state(sessions)
    assert sum(1 for v in state.values() if v[0] == "active") == sum(1 for r in rows if r[3])


def test_prewrite_zero_writes_each_line_in_its_tick(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, _ = campaign(sessions, numbers(6))

    async def run() -> Dialer:
        clock = ManualClock(MORNING)
        dialer = make(sessions, clock, [3], settings=replace(CampaignSettings(), prewrite_seconds=0.0))
        assert await dialer.tick() == 3
        await turns()
        assert not dialer.campaigns[cid].reserve and dialer.campaigns[cid].filling is None
        await dialer.flush()
        return dialer

    asyncio.run(run())
    assert all(r[3] for r in attempts(sessions))


def test_after_a_crash_unmarked_rows_are_released_and_marked_ones_reconciled(sqlite_url: str,
                                                                             redis_url: str) -> None:
    """Node A writes lines ahead and sends some, then dies (no stop). Node B, later: the rows without a send mark
    are ``unsent`` (target pending, no attempt counted), the sent ones with no live call end ``failed`` — none is
    sent again."""
    sessions = database(sqlite_url)
    cid, _ = campaign(sessions, numbers(10), max_attempts=2)

    async def run() -> tuple[list[str], list[str]]:
        redis = aioredis.from_url(redis_url)
        clock = ManualClock(MORNING)
        a_orig = ScriptedOriginator(clock, delay=3600.0)
        a = make(sessions, clock, [3], leases=RedisContactLeases(redis), originator=a_orig, node_id="a")
        assert await a.tick() == 3
        await filled(a)
        assert len(a.campaigns[cid].reserve) == 3
        # A dies here: its reserve is never released, its calls never settle.
        for task in list(a._results):
            task.cancel()
        await clock.advance(120.0)
        b_orig = ScriptedOriginator(clock, delay=5.0)
        b = make(sessions, clock, [0], leases=RedisContactLeases(redis), originator=b_orig, node_id="b")
        await b.reconcile_orphans()
        await b.flush()
        await redis.aclose()
        return [aid for aid, _, _ in a_orig.sent], [aid for aid, _, _ in b_orig.sent]

    a_sent, b_sent = asyncio.run(run())
    assert b_sent == []
    rows = attempts(sessions)
    outcome = {r[0]: r[2] for r in rows}
    assert sorted(outcome[aid] or "" for aid in a_sent) == ["failed"] * 3
    ahead = [r for r in rows if r[0] not in a_sent]
    assert len(ahead) == 3 and all(r[2] == "unsent" and not r[3] for r in ahead)
    state = targets_state(sessions)
    assert all(state[r[1]] == ("pending", 0, None) for r in ahead)


def test_without_durable_marks_a_restart_reconciles_rows_written_ahead_as_sent(sqlite_url: str) -> None:
    """One node without Redis cannot tell after a restart whether a row written ahead left: it never releases
    it for a new dial (an attempt is counted; the retry matrix applies)."""
    sessions = database(sqlite_url)
    cid, _ = campaign(sessions, numbers(4), max_attempts=3)
    store = DialerStore(sessions)
    at = datetime.fromtimestamp(MORNING - 600, UTC)
    t = targets_state(sessions)
    first = min(t)
    assert store.prepare_attempts([(cid, first, None, "ahead-1", "n", "default", at)]) == {"ahead-1"}

    async def run() -> list[Any]:
        clock = ManualClock(MORNING)
        originator = ScriptedOriginator(clock)
        dialer = make(sessions, clock, [0], originator=originator)
        await dialer.reconcile_orphans()
        await dialer.flush()
        return originator.sent

    assert asyncio.run(run()) == []
    assert [r[2] for r in attempts(sessions)] == ["failed"]
    assert targets_state(sessions)[first][:2] == ("pending", 1)


def test_a_preview_call_never_disposed_is_released_after_its_call_ended(sqlite_url: str) -> None:
    """Dialled, answered by nobody's disposition: held while its call lives; once the call is gone and
    ``preview_disposition_seconds`` have passed, the attempt ends ``undisposed``, the hold goes and the target is
    retried after the matrix's spacing — or done at max attempts."""
    from ccserver.campaigns.compliance import check
    from ccserver.dialer.engine import plan_campaign
    from ccserver.state import StateTracker
    from ccserver.state.model import Call

    sessions = database(sqlite_url)
    cid, (first, second) = campaign(sessions, ["+8613800000031", "+8613800000032"], mode="preview",
                                    max_attempts=2)
    last, (third,) = campaign(sessions, ["+8613800000033"], mode="preview", max_attempts=1)
    store = DialerStore(sessions)
    at = datetime.fromtimestamp(MORNING, UTC)
    assert store.begin_attempts([(cid, first, None, "pv-1", "n", "default", at),
                                 (cid, second, None, "pv-2", "n", "default", at),
                                 (last, third, None, "pv-3", "n", "default", at)]) == {"pv-1", "pv-2", "pv-3"}
    with sessions.begin() as s:  # pv-2 was disposed by its agent: not the sweeper's
        s.execute(update(CampaignAttempt).where(CampaignAttempt.action_id == "pv-2").values(disposition="later"))
    tracker = StateTracker()
    tracker.calls[("default", "1795416969.70")] = Call(server="default", uniqueid="1795416969.70",
                                                       dialed_number="13800000031", up=True)
    tracker.calls[("default", "1795416969.71")] = Call(server="default", uniqueid="1795416969.71",
                                                       dialed_number="13800000033", up=True)
    settings = replace(CampaignSettings(), preview_disposition_seconds=300.0)

    async def run() -> list[int]:
        clock = ManualClock(MORNING + 60)
        dialer = make(sessions, clock, [0], tracker=tracker, settings=settings)
        released = [await dialer.sweep_preview()]  # both calls live
        del tracker.calls[("default", "1795416969.70")]
        del tracker.calls[("default", "1795416969.71")]  # both ended
        released.append(await dialer.sweep_preview())  # the disposition time starts now
        await clock.advance(299.0)
        released.append(await dialer.sweep_preview())
        await clock.advance(1.0)
        released.append(await dialer.sweep_preview())
        await clock.advance(300.0)
        released.append(await dialer.sweep_preview())  # nothing twice
        return released

    assert asyncio.run(run()) == [0, 0, 0, 2, 0]
    outcomes = {r[0]: r[2] for r in attempts(sessions)}
    assert outcomes == {"pv-1": "undisposed", "pv-2": None, "pv-3": "undisposed"}
    with sessions() as s:
        t1, t3 = s.get(CampaignTarget, first), s.get(CampaignTarget, third)
        assert t1 is not None and t3 is not None
        assert (t1.status, t1.attempts, t1.last_outcome, t1.held_by) == ("pending", 1, "undisposed", None)
        assert (t3.status, t3.attempts) == ("done", 1)  # its one attempt used
    # The retry matrix's spacing for undisposed applies: not callable at once, callable after it.
    row, = [r for r in store.running_campaigns() if r.id == cid]
    _queue, contacts, rules = plan_campaign(row, store.open_targets(cid), CampaignSettings(), "Asia/Shanghai")
    soon = datetime.fromtimestamp(MORNING + 1200, UTC)
    later = datetime.fromtimestamp(MORNING + 3 * 3600, UTC)
    assert check(contacts[first], rules.window, rules.policy, set(), soon).reason == "spacing"
    assert check(contacts[first], rules.window, rules.policy, set(), later).allowed
