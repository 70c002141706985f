"""The desktop over the demo data: the agent service on a FakeAsterisk, a live model fed by a recorded call
(ami-inbound-vip-answered), tickets, forced wrap-up on a ManualClock, and a recording stand-in for the AMI side."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from twisted.internet import task

from ccserver.agents import Actor, AgentService
from ccserver.agents.store import AgentStore
from ccserver.clock import ManualClock
from ccserver.customers.cache import MemorySummaryCache
from ccserver.customers.changes import Invalidator
from ccserver.customers.directory import CustomerDirectory
from ccserver.db.models import Call, Customer, PhoneNumber, Ticket, User, Vehicle, customer_phones
from ccserver.desktop.calls import CallActionFailed
from ccserver.desktop.service import DesktopService
from ccserver.desktop.settings import DesktopSettings
from ccserver.desktop.store import DesktopStore
from ccserver.desktop.wrapup import ForcedWrapUp
from ccserver.identification import IdentificationService
from ccserver.state.tracker import StateTracker
from routing.rules import RoutingRules
from tests.agents_support import FakeAsterisk
from tests.replay.transcripts import iter_transcript_messages
from tests.tickets_support import make_service

AGENT_PHONE = "Local/8001@agent-phones/n"  # agent 8001's phone in the recordings
CALL = "1795416921.0"  # the recorded VIP call (caller 13800138000, queue vip)
HOSTILE = "<img src=x onerror=alert(1)>"


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass
class RecordingCalls:
    """Stands in for AMIDesktopCalls (whose wire side tests/test_desktop_ami.py checks against the recordings)."""

    channel: str | None = "Local/8001@agent-phones-00000001;1"
    fail: str | None = None
    sent: list[tuple[Any, ...]] = field(default_factory=list)

    async def agent_channel(self, server: str, interface: str, agent_uniqueid: str | None,
                            linkedid: str | None) -> str | None:
        self.sent.append(("channels", server, interface, agent_uniqueid))
        return self.channel

    async def transfer(self, server: str, kind: str, channel: str, context: str, exten: str) -> None:
        self.sent.append(("transfer", kind, channel, context, exten))
        if self.fail:
            raise CallActionFailed(self.fail)

    async def originate(self, server: str, *, channel: str, context: str, exten: str, caller_id: str,
                        timeout_ms: int, variables: Any, announce: Any = None) -> str:
        action_id = f"test-orig-{len(self.sent)}"
        if announce is not None:
            announce(action_id)
        self.sent.append(("originate", channel, context, exten, caller_id, timeout_ms, dict(variables)))
        if self.fail:
            raise CallActionFailed(self.fail)
        return action_id


def play_until(tracker: StateTracker, event: str | None, transcript: str = "ami-inbound-vip-answered") -> None:
    """Feed the tracker the recorded events up to and including the first ``event`` (None: all of them)."""
    for msg in iter_transcript_messages(transcript):
        if msg.get("Event"):
            tracker.handle(msg)
            if msg.get("Event") == event:
                return


@dataclass
class Desk:
    sessions: Any
    tracker: StateTracker
    asterisk: FakeAsterisk
    agents: AgentService
    calls: RecordingCalls
    clock: ManualClock
    wrapup: ForcedWrapUp
    service: DesktopService
    tickets: Any
    users: dict[str, Any]
    events: list[Any]  # what the live model published (CallEnded … from the recorded call)

    def actor(self, username: str) -> Actor:
        u = self.users[username]
        return Actor(u.id, u.username, u.role, ip="192.0.2.1")


def make_desk(sessions: Any, wrapup_seconds: float = 30.0) -> Desk:
    events: list[Any] = []
    tracker = StateTracker(publish=events.append)
    asterisk = FakeAsterisk({"sales", "vip", "service", "default", "agent-8001", "agent-8002"}, tracker=tracker)
    asterisk.resync()
    agents = AgentService(AgentStore(sessions), asterisk, rules=RoutingRules(), run_blocking=in_thread,
                          servers=["default"], default_server="default", tracker=tracker)
    tickets, _tclock, _rec = make_service(sessions)
    clock = ManualClock()
    settings = DesktopSettings(wrapup_seconds=wrapup_seconds)
    wrapup = ForcedWrapUp(agents, settings.wrapup_seconds, clock, in_thread)
    calls = RecordingCalls()
    # As `ccserver run` wires it: the search asks identification (a number cache of its own here), and edits and
    # merges drop what they changed from that cache.
    cache = MemorySummaryCache()
    lookups = IdentificationService(CustomerDirectory(sessions), cache, region="CN", run_blocking=in_thread,
                                    clock=task.Clock())
    service = DesktopService(settings, DesktopStore(sessions), in_thread, region="CN", agents=agents, calls=calls,
                             tracker=tracker, tickets=tickets, wrapup=wrapup, clock=clock, identification=lookups,
                             invalidator=Invalidator(cache))
    with sessions() as s:
        users = {u.username: u for u in s.scalars(select(User))}
        for u in users.values():
            s.expunge(u)
    return Desk(sessions, tracker, asterisk, agents, calls, clock, wrapup, service, tickets, users, events)


def make_prospect(desk: Desk, number: str = "+8613955550000") -> tuple[int, int, str]:
    """A prospect created for an unknown caller (as identification makes one), with a call and a ticket."""
    with desk.sessions.begin() as s:
        known = s.scalars(select(Customer).where(Customer.tier == "gold").order_by(Customer.id)).first()
        assert known is not None
        prospect = Customer(name=HOSTILE, tier="prospect", lifecycle="target", source="inbound_call")
        s.add(prospect)
        s.flush()
        phone = PhoneNumber(e164=number, kind="mobile")
        s.add(phone)
        s.flush()
        s.execute(customer_phones.insert().values(customer_id=prospect.id, phone_id=phone.id, is_primary=True))
        s.add(Call(uniqueid=f"1795000000.{number[-4:]}", server="default", customer_id=prospect.id,
                   entered_at=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)))
        s.add(Ticket(kind="inquiry", subject="询价", status="new", severity="normal", source="web",
                     customer_id=prospect.id, created_at=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC),
                     updated_at=dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)))
        plate = s.scalars(select(Vehicle.plate).where(Vehicle.customer_id == known.id,
                                                      Vehicle.plate.is_not(None))).first()
        return prospect.id, known.id, plate or ""
