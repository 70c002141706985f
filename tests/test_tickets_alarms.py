"""SLA alarms with an injected clock, in business hours: a warning before and a breach at the due time, each
once, on the hub and in the webhook outbox; once per cluster (two nodes sharing Redis)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ccserver.cluster import ClusterJobs
from ccserver.db.models import TicketSlaAlarm
from ccserver.events import EventHub
from ccserver.events import TicketSlaAlarm as AlarmEvent
from ccserver.tickets import Actor, NewTicket
from ccserver.tickets.alarms import SlaAlarms
from tests.tickets_support import MONDAY_10, events, make_service, notifications, store_id

SH = ZoneInfo("Asia/Shanghai")
ADMIN = Actor(None, "admin", "admin")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_warning_then_breach_each_once_in_business_hours(loaded: Any) -> None:
    _url, sessions = loaded
    # Monday 17:00: the complaint's first response (2 business hours of the service line, which closes at 17:30)
    # is due Tuesday 09:30.
    service, clock, _ = make_service(sessions, at=local("2026-11-23T17:00"))
    hub = EventHub()
    seen: list[Any] = []
    hub.subscribe("wallboard", lambda e: seen.append(e) if e.subject == "投诉" else None, kinds=(AlarmEvent,))
    woken: list[bool] = []
    alarms = SlaAlarms(service.store, service._run, clock, publish=hub.publish, after=lambda: woken.append(True))

    async def main() -> list[tuple[str, str, str]]:
        bj = store_id(sessions, "bj-volvo")
        ticket = await service.create(NewTicket(kind="complaint", subject="投诉", store_id=bj, customer_id=1), ADMIN)
        assert datetime.fromisoformat(ticket["sla"]["first_response"]["due_at"]) == local("2026-11-24T09:30")
        raised = []
        for hhmm in ("2026-11-23T18:00", "2026-11-24T08:00", "2026-11-24T08:59", "2026-11-24T09:00",
                     "2026-11-24T09:10", "2026-11-24T09:30", "2026-11-24T10:00"):
            await clock.advance(local(hhmm).timestamp() - clock.time())
            for event in await alarms.check():
                if event.ticket_id == ticket["id"]:  # (the demo's own complaint is overdue already)
                    raised.append((hhmm[-5:], event.clock, event.stage))
        return raised

    raised = asyncio.run(main())
    # closed overnight: the clock did not run; 30 minutes before the due time a warning, at it a breach, once each
    assert raised == [("09:00", "first_response", "warning"), ("09:30", "first_response", "breach")]
    hub.drain()
    assert [(e.ticket_id, e.clock, e.stage, e.server) for e in seen] == [
        (seen[0].ticket_id, "first_response", "warning", "tickets"), (seen[0].ticket_id, "first_response", "breach",
                                                                      "tickets")]
    assert seen[1].due_at == local("2026-11-24T09:30").timestamp() and seen[1].kind == "complaint"
    assert seen[0].seq < seen[1].seq and len(woken) == 3  # (the demo complaint's breach at the first look)
    tid = seen[0].ticket_id
    assert [e for e, t in notifications(sessions) if t == tid] == ["ticket.created", "ticket.sla_warning",
                                                                   "ticket.sla_breached"]
    assert [e[0] for e in events(sessions, tid)] == ["created", "sla_warning", "sla_breach"]


def test_a_responded_ticket_raises_nothing_more_and_a_late_one_only_its_breach(loaded: Any) -> None:
    _url, sessions = loaded
    service, clock, _ = make_service(sessions)
    alarms = SlaAlarms(service.store, service._run, clock)

    async def main() -> list[tuple[int, str, str]]:
        answered = await service.create(NewTicket(kind="inquiry", subject="问价格"), ADMIN)
        forgotten = await service.create(NewTicket(kind="inquiry", subject="问保险"), ADMIN)
        await service.transition(answered["id"], "in_progress", ADMIN)
        await clock.advance(30 * 3600)  # the node was down: both clocks of the forgotten one are past
        mine = {answered["id"], forgotten["id"]}
        return [(e.ticket_id, e.clock, e.stage) for e in await alarms.check() if e.ticket_id in mine] + \
            [(e.ticket_id, e.clock, e.stage) for e in await alarms.check() if e.ticket_id in mine]

    raised = asyncio.run(main())
    forgotten_id = max(t for t, _, _ in raised)
    assert len(raised) == 3 and set(raised) == {  # no warnings after the fact; the answered one: resolution only
        (forgotten_id, "first_response", "breach"), (forgotten_id, "resolution", "breach"),
        (forgotten_id - 1, "resolution", "breach")}


def test_two_nodes_raise_each_alarm_once(loaded: Any, redis_url: str) -> None:
    import redis.asyncio as aioredis

    _url, sessions = loaded
    service, clock, _ = make_service(sessions)

    async def main() -> tuple[list[Any], list[Any], set[tuple[str, str]]]:
        client = aioredis.Redis.from_url(redis_url)
        nodes = [SlaAlarms(service.store, service._run, clock,
                           cluster=ClusterJobs(client, f"node-{n}", keep_done=180, sleep=clock.sleep,
                                               clock=clock.monotonic)) for n in (1, 2)]
        await service.create(NewTicket(kind="complaint", subject="投诉", customer_id=1), ADMIN)
        await clock.advance(3 * 3600)
        first = await asyncio.gather(nodes[0].tick(), nodes[1].tick())
        later = await asyncio.gather(nodes[0].tick(), nodes[1].tick())  # the same tick: done already
        with sessions() as s:
            rows = {(a.clock, a.stage) for a in s.scalars(select(TicketSlaAlarm).where(TicketSlaAlarm.ticket_id > 1))}
        await client.aclose()
        return list(first), list(later), rows

    first, later, rows = asyncio.run(main())
    assert sorted(len(r) for r in first) == [0, 2] and later == [[], []]  # ours and the demo complaint's
    assert rows == {("first_response", "breach")}


class _NoCalls:
    """Live views with no queues or agents: the wallboard's alarms are what these tests look at."""

    async def queues(self, now: float) -> list[Any]:
        return []

    async def agents(self, now: float) -> list[Any]:
        return []


def test_a_restarted_wallboard_shows_the_alarms_that_still_stand(loaded: Any) -> None:
    import json
    from datetime import UTC

    from ccserver.tickets.alarms import current_alarms
    from ccserver.wallboard import WallboardPublisher, WallboardSource

    _url, sessions = loaded
    service, clock, _ = make_service(sessions)

    def board(restore: Any = None) -> WallboardSource:
        return WallboardSource(_NoCalls(), None, service._run, "Asia/Shanghai", target=80.0, vip_tiers=(),
                               clock=clock, restore=restore)

    async def restore(now: float, since: float) -> list[dict[str, Any]]:
        return await service._run(current_alarms, service.store, datetime.fromtimestamp(now, UTC),
                                  datetime.fromtimestamp(since, UTC))

    def mine(alarms: list[dict[str, Any]], ids: set[int]) -> list[tuple[int, str, str, float]]:
        return [(a["ticket_id"], a["clock"], a["stage"], a["at"]) for a in alarms if a["ticket_id"] in ids]

    async def main() -> tuple[list[Any], list[Any], list[Any], tuple[int, int, int]]:
        hub = EventHub()
        before = board()  # the server before the restart: hears the alarms on the hub
        hub.subscribe("wallboard-alarms", before.on_alarm, kinds=(AlarmEvent,))
        alarms = SlaAlarms(service.store, service._run, clock, publish=hub.publish)
        late = await service.create(NewTicket(kind="inquiry", subject="问价格"), ADMIN)
        answered = await service.create(NewTicket(kind="inquiry", subject="问保险"), ADMIN)
        await clock.advance(5 * 3600)  # both first responses are overdue: breached on the board
        await alarms.check()
        hub.drain()
        await service.transition(answered["id"], "in_progress", ADMIN)  # answered since: its breach stands no more
        down = await service.create(NewTicket(kind="inquiry", subject="问保养"), ADMIN)
        await clock.advance(5 * 3600)  # the server is down meanwhile: nobody raised the new ticket's breach
        ids = {late["id"], answered["id"], down["id"]}
        heard = mine(list(before.alarms), ids)
        after = board(restore)  # the restarted server
        hub2 = EventHub()
        hub2.subscribe("wallboard-alarms", after.on_alarm, kinds=(AlarmEvent,))
        publisher = WallboardPublisher(after.build, clock)
        await publisher.flush()
        assert publisher.current is not None
        restored = mine(json.loads(publisher.current.data)["alarms"], ids)  # what /api/wallboard serves
        await SlaAlarms(service.store, service._run, clock, publish=hub2.publish).check()  # the job's first look
        hub2.drain()
        return heard, restored, mine(list(after.alarms), ids), (late["id"], answered["id"], down["id"])

    heard, restored, later, (late_id, answered_id, down_id) = asyncio.run(main())
    first_look = MONDAY_10.timestamp() + 5 * 3600
    assert sorted(heard) == [(late_id, "first_response", "breach", first_look),
                             (answered_id, "first_response", "breach", first_look)]
    now = clock.time()
    # newest first: the breach raised at the restart's look, then the one raised before the restart
    assert restored == [(down_id, "first_response", "breach", now), (late_id, "first_response", "breach", first_look)]
    # the job's first look after the restart raises the down ticket's breach: listed once, not twice
    assert later == restored
