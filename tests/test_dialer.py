"""The dialer over the AMI replay peer (ami-originate-results: answered → queue → agent, busy, no answer, bad
context), an injected ManualClock, real SQL and Redis: what is sent and in which order, outcomes written, the
gate applied at the moment of dialing, a connection lost mid-Originate (reconciled, never re-sent), two nodes on
one Redis (never the same contact twice at once), the dialer's cluster lease."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update

from ccserver.campaigns.settings import CampaignSettings
from ccserver.clock import ManualClock
from ccserver.db.models import CampaignAttempt, CampaignTarget, DncNumber
from ccserver.dialer.engine import AmiOriginator, Dialer
from ccserver.dialer.leases import MemoryContactLeases, RedisContactLeases
from ccserver.dialer.store import DialerStore
from ccserver.events import EventHub
from ccserver.events.types import Resynced
from ccserver.state import StateTracker
from tests.dialer_support import MORNING, OneClient, ScriptedOriginator, campaign, database, inline, turns
from tests.test_ami_client import Net

NUMBERS = ["+8613811112222", "+8613900000001", "+8613911111111", "+8613911111112"]


def outcomes(sessions: Any) -> list[tuple[int, str | None]]:
    with sessions() as s:
        return [(a.target_id, a.outcome) for a in s.scalars(select(CampaignAttempt).order_by(CampaignAttempt.id))]


def replay_dialer(sessions: Any, clock: ManualClock, transcript: str = "ami-originate-results",
                  free: int = 4) -> tuple[Dialer, Net, EventHub, StateTracker]:
    hub = EventHub()
    tracker = StateTracker(publish=hub.publish, clock=clock.time)
    net = Net(transcript)
    client = net.client("default")
    client.on_any(lambda msg: tracker.handle(msg, msg.arrival))
    client.start()
    net.accept()
    dialer = Dialer(DialerStore(sessions), AmiOriginator(OneClient(client)), MemoryContactLeases(clock.monotonic),
                    run_blocking=inline, clock=clock, tracker=tracker, default_zone="Asia/Shanghai",
                    floor=lambda queue, server, now: (free, []))
    dialer.subscribe(hub)
    return dialer, net, hub, tracker


def test_replayed_outcomes_and_what_is_sent(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, targets = campaign(sessions, NUMBERS)

    async def run() -> tuple[Any, ...]:
        clock = ManualClock(MORNING)
        dialer, net, hub, tracker = replay_dialer(sessions, clock)
        hub.start()
        records: list[Any] = []
        hub.subscribe("records", lambda e: records.append(e.record) if hasattr(e, "record") else None)
        sent = await dialer.tick()
        net.flush()
        await turns()
        await dialer.drain()
        await hub.stop(1.0)
        return sent, net, dialer, records

    sent, net, dialer, records = asyncio.run(run())
    assert sent == 4
    originates = [a for a in net.peer.actions if a.get("Action") == "Originate"]
    assert [a["Channel"] for a in originates] == [f"Local/{n}@ccserver-outbound" for n in NUMBERS]
    first = originates[0]
    assert first["Async"] == "true" and first["Context"] == "ccserver-campaign" and first["Exten"] == "s"
    assert first["CallerID"] == '"Shanghai Volvo" <4008001000>'  # the store's DID
    assert f"CC_CAMPAIGN_ID={cid}" in first.getall("Variable") and "CC_QUEUE=sales" in first.getall("Variable")
    assert [a["ActionID"] for a in originates] == dialer.sent  # announced ids went out unchanged
    # answered → the queue → agent 8001 (reached); busy; no answer; the bad context failed
    assert outcomes(sessions) == list(zip(targets, ["reached", "busy", "no_answer", "failed"], strict=True))
    with sessions() as s:
        rows = {t.id: (t.status, t.attempts, t.last_outcome) for t in s.scalars(select(CampaignTarget))}
        reached = s.scalar(select(CampaignAttempt).where(CampaignAttempt.target_id == targets[0]))
    assert rows[targets[0]] == ("done", 1, "reached") and rows[targets[1]] == ("pending", 1, "busy")
    assert reached is not None and reached.agent_interface == "Local/8001@agent-phones/n" and reached.uniqueid
    # the tracker knew every Originate before Asterisk answered it: outbound records with the campaign
    outbound = [r for r in records if r is not None and r.get("direction") == "outbound"]
    assert {r.get("campaign_id") for r in outbound} == {str(cid)} and len(outbound) == 4
    assert dialer.live == {}


def test_gate_is_applied_when_dialing(sqlite_url: str) -> None:
    """Marketing without consent, a customer's do-not-call, the number DNC list, outside the window: no Originate,
    and the permanent refusals are written on the target."""
    sessions = database(sqlite_url)
    no_consent, _ = campaign(sessions, ["+8613800000001"], type="insurance", consent=False)
    dnc_customer, _ = campaign(sessions, ["+8613800000002"], dnc=True)
    listed, _ = campaign(sessions, ["+8613800000003"])
    with sessions.begin() as s:
        s.add(DncNumber(e164="+8613800000003", source="api"))

    async def run() -> tuple[int, int, ScriptedOriginator]:
        clock = ManualClock(MORNING - 3 * 3600)  # 07:00 in Shanghai
        originator = ScriptedOriginator(clock)
        dialer = Dialer(DialerStore(sessions), originator, MemoryContactLeases(clock.monotonic),
                        run_blocking=inline, clock=clock, default_zone="Asia/Shanghai", floor=lambda *a: (5, []))
        early = await dialer.tick()
        await clock.advance(3 * 3600)
        later = await dialer.tick()
        return early, later, originator

    early, later, originator = asyncio.run(run())
    assert early == later == 0 and originator.sent == []
    with sessions() as s:
        reasons = {t.campaign_id: (t.status, t.drop_reason) for t in s.scalars(select(CampaignTarget))}
    assert reasons == {no_consent: ("dropped", "no_consent"), dnc_customer: ("dropped", "dnc_customer"),
                       listed: ("dropped", "dnc_number")}


def test_connection_lost_mid_originate_is_reconciled_never_resent(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    _, targets = campaign(sessions, NUMBERS[:2])

    async def run() -> tuple[Any, ...]:
        clock = ManualClock(MORNING)
        dialer, net, hub, tracker = replay_dialer(sessions, clock, free=2)
        net.peer.silent = True  # Asterisk takes the actions but answers nothing…
        hub.start()
        assert await dialer.tick() == 2
        net.flush()
        net.peer.connections[0].transport.loseConnection()  # …and the connection drops
        net.flush()
        await turns()
        unknown = sorted(live.target.id for live in dialer.live.values() if live.unknown)
        # Ticks before the resync: the two contacts are still held; nothing is dialled again.
        for _ in range(5):
            await clock.advance(1.0)
            await dialer.tick()
        # The resync: the first call is alive (answered, in the queue), the second is not.
        first = next(v for v in dialer.live.values() if v.target.id == targets[0])
        hub.publish(Resynced("default", 99, clock.time(), ({
            "uniqueid": "1795416969.18", "campaign_id": str(first.campaign_id), "dialed_number": "13811112222",
            "answered_at": clock.time(), "up": True},), (), (), False))
        await turns()
        await hub.stop(1.0)
        return unknown, net, dialer

    unknown, net, dialer = asyncio.run(run())
    assert unknown == targets
    assert [a.get("Action") for a in net.peer.actions].count("Originate") == 2  # never re-sent
    assert outcomes(sessions) == [(targets[0], None), (targets[1], "failed")]
    assert [v.uniqueid for v in dialer.live.values()] == ["1795416969.18"]  # adopted: its CallEnded will settle it


def test_two_dialers_on_one_redis_never_dial_a_contact_twice(sqlite_url: str, redis_url: str) -> None:
    sessions = database(sqlite_url)
    _, targets = campaign(sessions, [f"+86139{n:08d}" for n in range(40)], max_attempts=3)

    async def run() -> tuple[list[Any], list[Any], int]:
        redis = aioredis.Redis.from_url(redis_url)
        clock = ManualClock(MORNING)
        nodes = []
        for name in ("a", "b"):
            originator = ScriptedOriginator(clock, outcome="busy", delay=7.0)
            # No dialer lease (both dial): the contact leases and the attempt rows alone keep them apart.
            dialer = Dialer(DialerStore(sessions), originator, RedisContactLeases(redis), run_blocking=inline,
                            clock=clock, node_id=name, default_zone="Asia/Shanghai", refresh=0.0,
                            settings=CampaignSettings(), floor=lambda *a: (6, []))
            nodes.append((dialer, originator))
        overlap = 0
        for _ in range(3 * 3600 // 5):
            for dialer, _ in nodes:
                await dialer.tick()
            held: dict[int, int] = {}
            for dialer, _ in nodes:
                for live in dialer.live.values():
                    held[live.target.id] = held.get(live.target.id, 0) + 1
            overlap += sum(1 for n in held.values() if n > 1)
            await clock.advance(5.0)
        for dialer, _ in nodes:
            await dialer.drain()
        await redis.aclose()
        return nodes[0][1].sent, nodes[1][1].sent, overlap

    a, b, overlap = asyncio.run(run())
    assert a and b and overlap == 0  # both dialled, never the same contact at the same time
    assert not {x[0] for x in a} & {x[0] for x in b}
    by_target: dict[str, int] = {}
    for _aid, channel, _kw in a + b:
        by_target[channel] = by_target.get(channel, 0) + 1
    assert len(by_target) == 40 and set(by_target.values()) == {3}  # 3 attempts each (busy), spaced, no more
    with sessions() as s:
        assert {t.status for t in s.scalars(select(CampaignTarget))} == {"done"}


def test_cluster_lease_one_dialer_then_takeover(sqlite_url: str, redis_url: str) -> None:
    sessions = database(sqlite_url)
    campaign(sessions, [f"+86139{n:08d}" for n in range(60)])

    async def until(condition: Any) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0)  # Redis answers over a real socket
        await asyncio.wait_for(poll(), timeout=5)

    async def run() -> tuple[Any, ...]:
        redis = aioredis.Redis.from_url(redis_url)
        clock = ManualClock(MORNING)
        settings = CampaignSettings(lease_ttl_seconds=15.0)
        nodes = []
        for name in ("a", "b"):
            originator = ScriptedOriginator(clock, outcome="no_answer", delay=2.0)
            nodes.append((Dialer(DialerStore(sessions), originator, RedisContactLeases(redis), run_blocking=inline,
                                 clock=clock, redis=redis, node_id=name, default_zone="Asia/Shanghai",
                                 settings=settings, floor=lambda *a: (2, [])), originator))
        (a, sent_a), (b, sent_b) = nodes
        took = (await a.try_lead(), await b.try_lead())
        ticks = (await a.tick(), await b.tick())
        await clock.advance(4.0)  # renewals every ttl/3 = 5 s: not yet
        assert a.leading
        # The lease is taken from it: at its next renewal it stops dialing at once.
        await redis.set("ccserver:dialer:lease", "someone-else", px=60_000)
        await clock.advance(1.0)
        await until(lambda: not a.leading)
        after_loss = (await a.tick(), await b.try_lead(), await b.tick())
        await redis.delete("ccserver:dialer:lease")  # the other holder is gone (its lease expired)
        takeover = (await b.try_lead(), await b.tick())
        await clock.advance(10.0)
        for d, _ in nodes:
            await d.stop()
            await d.drain()
        await redis.aclose()
        return took, ticks, after_loss, takeover, len(sent_a.sent), len(sent_b.sent)

    took, ticks, after_loss, takeover, total_a, total_b = asyncio.run(run())
    assert took == (True, False) and ticks == (2, 0)  # one dialer; the follower never dials
    assert after_loss == (0, False, 0)  # lost: not one more Originate, and nobody else may take it
    assert takeover == (True, 2) and (total_a, total_b) == (2, 2)  # b leads once the lease is free


def test_answered_calls_end_reached_abandoned_or_machine_and_feed_the_abandon_rate(sqlite_url: str) -> None:
    """After an answered Originate, the call's CallEnded decides: an agent took it (reached), it left the campaign
    queue unanswered (abandoned: counted in the rolling abandon rate the pacing follows), AMD() found a machine
    (the call's ``amd``, from the dialplan's UserEvent CcAmd: machine)."""
    from ccserver.events.types import CallEnded
    from tests.dialer_support import Result

    sessions = database(sqlite_url)
    cid, targets = campaign(sessions, ["+8613800000011", "+8613800000012", "+8613800000013"])

    class Answering(ScriptedOriginator):
        def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
            self.sent.append((kwargs["action_id"], channel, kwargs))
            return self._answer(f"u-{kwargs['action_id']}")

        async def _answer(self, uniqueid: str) -> Any:
            await self.clock.sleep(self.delay)
            return Result("answered", uniqueid=uniqueid)

    async def run() -> tuple[Any, ...]:
        clock = ManualClock(MORNING)
        originator = Answering(clock, delay=8.0)
        dialer = Dialer(DialerStore(sessions), originator, MemoryContactLeases(clock.monotonic), run_blocking=inline,
                        clock=clock, default_zone="Asia/Shanghai", floor=lambda *a: (3, []))
        assert await dialer.tick() == 3
        await clock.advance(8.0)
        await dialer.drain()
        lives = sorted(dialer.live.values(), key=lambda v: v.target.id)
        ends = [("PJSIP/8001", "sales", 95.0, {}), (None, "sales", None, {}), (None, None, None, {"amd": "MACHINE"})]
        for n, (live, (interface, queue, talk, final)) in enumerate(zip(lives, ends, strict=True)):
            await dialer.on_event(CallEnded("default", 10 + n, clock.time(), live.uniqueid or "", "x", queue,
                                            interface, 1.0, talk, {"campaign_id": str(cid)}, final))
        await dialer.drain()
        stats = dialer.campaigns[cid].stats
        return stats.abandon_rate(clock.time()), stats.handle_times, stats.answer_rate, dialer.live

    abandon_rate, handles, answer_rate, live = asyncio.run(run())
    assert outcomes(sessions) == list(zip(targets, ["reached", "abandoned", "machine"], strict=True))
    assert abandon_rate == 0.5 and handles == [95.0] and answer_rate == 1.0 and live == {}
    with sessions() as s:
        answered = [a.answered_at is not None for a in s.scalars(select(CampaignAttempt))]
    assert answered == [True, True, True]


def test_tracker_floor_counts_free_and_busy_agents_from_the_recorded_busy_hour() -> None:
    from ccserver.dialer.engine import tracker_floor
    from tests.test_state_support import replay

    tracker = StateTracker()
    replay(tracker, "ami-inbound-load-40-calls")
    queue = tracker.queue("bulk")
    assert queue is not None
    free, busy = tracker_floor(tracker)("bulk", "default", tracker.now)
    members = [m for m in queue.members.values() if m.logged_in and not m.paused]
    assert free == sum(1 for m in members if m.available)
    assert len(busy) == sum(1 for m in members if not m.available and m.in_call)
    assert free + len(busy) <= len(members) and all(e >= 0 for e in busy)
    assert tracker_floor(tracker)("nosuch", "default", tracker.now) == (0, [])


def test_a_paused_campaign_stops_dialing_within_the_check_and_a_started_one_begins(sqlite_url: str) -> None:
    from ccserver.db.models import Campaign

    sessions = database(sqlite_url)
    first, _ = campaign(sessions, [f"+86139{n:08d}" for n in range(20)])
    second, _ = campaign(sessions, [f"+86138{n:08d}" for n in range(20)], status="draft")

    def set_status(cid: int, status: str) -> None:
        with sessions.begin() as s:
            s.execute(update(Campaign).where(Campaign.id == cid).values(status=status))

    async def run() -> list[list[int]]:
        clock = ManualClock(MORNING)
        originator = ScriptedOriginator(clock, outcome="no_answer", delay=1.0)
        dialer = Dialer(DialerStore(sessions), originator, MemoryContactLeases(clock.monotonic), run_blocking=inline,
                        clock=clock, default_zone="Asia/Shanghai", floor=lambda *a: (2, []), check=5.0)
        seen = []

        async def window(seconds: int) -> None:
            before = len(originator.sent)
            for _ in range(seconds):
                await dialer.tick()
                await clock.advance(1.0)
            channels = [c for _, c, _ in originator.sent[before:]]
            seen.append([sum(1 for c in channels if "+86139" in c), sum(1 for c in channels if "+86138" in c)])

        await window(3)
        set_status(first, "paused")
        set_status(second, "running")
        await window(5)  # the check: both changes seen within 5 s
        await window(3)
        await dialer.drain()
        return seen

    seen = asyncio.run(run())
    assert seen[0][0] > 0 and seen[0][1] == 0
    assert seen[2] == [0, seen[2][1]] and seen[2][1] > 0


def test_a_new_leader_reconciles_a_crashed_nodes_attempts(sqlite_url: str) -> None:
    """Attempts the dead node sent, without an outcome: past the ring time and no live call → failed (never
    re-sent); with a live call → adopted (its CallEnded settles it); still young → left to their node."""
    from datetime import UTC, datetime

    from ccserver.events.types import CallEnded
    from ccserver.state.model import Call

    sessions = database(sqlite_url)
    cid, targets = campaign(sessions, ["+8613800000021", "+8613800000022", "+8613800000023"])
    store = DialerStore(sessions)
    old = datetime.fromtimestamp(MORNING - 600, UTC)
    young = datetime.fromtimestamp(MORNING - 5, UTC)
    assert store.begin_attempts([(cid, targets[0], None, "dead-1", "dead", "default", old),
                                 (cid, targets[1], None, "dead-2", "dead", "default", old),
                                 (cid, targets[2], None, "dead-3", "dead", "default", young)]) == {
        "dead-1", "dead-2", "dead-3"}
    store.answered("dead-2", "1795416969.50", old)
    tracker = StateTracker()
    tracker.calls[("default", "1795416969.50")] = Call(server="default", uniqueid="1795416969.50",
                                                       campaign_id=str(cid), answered_at=MORNING - 590, up=True)

    async def run() -> list[str]:
        clock = ManualClock(MORNING)
        originator = ScriptedOriginator(clock)
        dialer = Dialer(store, originator, MemoryContactLeases(clock.monotonic), run_blocking=inline, clock=clock,
                        tracker=tracker, default_zone="Asia/Shanghai", floor=lambda *a: (0, []))
        await dialer.reconcile_orphans()
        await dialer.on_event(CallEnded("default", 1, clock.time(), "1795416969.50", "answered", "sales",
                                        "PJSIP/8001", 3.0, 60.0, {"campaign_id": str(cid)}, {}))
        await dialer.drain()
        return [aid for aid, _, _ in originator.sent]

    sent = asyncio.run(run())
    assert sent == []  # nothing re-sent
    assert outcomes(sessions) == [(targets[0], "failed"), (targets[1], "reached"), (targets[2], None)]


def test_a_campaign_of_no_store_calls_from_the_groups_number(sqlite_url: str) -> None:
    """Seen on a live Asterisk: a campaign without a store sent no caller ID (the callee saw <unknown>)."""
    from ccserver.db.models import Campaign, Did

    sessions = database(sqlite_url)
    cid, _targets = campaign(sessions, NUMBERS[:1])
    with sessions.begin() as s:
        s.add(Did(number="4008009000", store_id=None, line="hotline"))  # the group's hotline
        s.execute(update(Campaign).where(Campaign.id == cid).values(store_id=None))
    row, = DialerStore(sessions).running_campaigns()
    assert row.caller_id == "4008009000"
    with sessions.begin() as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(store_id=1))
    row, = DialerStore(sessions).running_campaigns()
    assert row.caller_id == "4008001000"  # a store's campaign keeps its store's number
