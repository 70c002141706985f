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
from tests.tickets_support import events, make_service, notifications, store_id

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
