"""Test doubles for the IVR: an in-memory tickets port, a caller who presses scripted keys (as Asterisk answers
GET DATA, Read and Playback — the shapes of the recordings in tests/data/asterisk), and the IVR wired to the
routing service on a task.Clock over the demo data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from ccserver.callrouting.directory_data import RoutingData
from ccserver.callrouting.service import RoutingService
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.directory import CustomerDirectory
from ivr.ports import Booking, OpenRepair, Slot, SlotTaken
from ivr.service import IVRService
from ivr.settings import IVRSettings
from tests.replay.agi_peer import HANGUP_511, MINUS_ONE, AGIPeer, Responder, agi_split, transcript_peer
from tests.replay.agi_transcripts import command_verb
from tests.test_agi_protocol import Harness

AS_OF = date(2026, 3, 16)  # a Monday
OPEN = datetime(2026, 3, 16, 2, 0, tzinfo=UTC).timestamp()  # 10:00 in Shanghai
CLOSED = datetime(2026, 3, 16, 15, 30, tzinfo=UTC).timestamp()  # 23:30 in Shanghai
HOTLINE = "4008009000"
LIU_YANG = "agi-02-13912345678"  # silver, one car (Accord 雅阁, 粤ABLUPV), a visit "ready" today
ZHANG_WEI = "agi-01-13800138000"  # diamond, manual VIP, two cars
WANG_LEI = "agi-04-13600000002"  # a prospect: no cars


class Hang:
    """In a key script: the caller hangs up at this step."""

    def __repr__(self) -> str:
        return "HANGUP"


HANGUP = Hang()


def inline(fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    return maybeDeferred(fn, *args, **kwargs)


class Never:
    """An awaitable that never completes (a tickets service that hangs)."""

    def __await__(self) -> Any:
        return (yield Deferred())


@dataclass
class MemoryTickets:
    """The tickets port in memory: tickets, slots with places, bookings, notifications. ``fail`` / ``hang``:
    method names that raise / never answer."""

    slots: dict[Slot, int] = field(default_factory=dict)  # slot -> places left
    repairs: dict[int, list[OpenRepair]] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)
    hang: set[str] = field(default_factory=set)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    bookings: list[Booking] = field(default_factory=list)
    notified: list[Booking] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise RuntimeError(f"{name}: tickets database unavailable")
        if name in self.hang:
            await Never()

    async def create_ticket(self, kind: str, customer_id: int | None, store_id: int | None, category: str,
                            subject: str, body: str, severity: str, uniqueid: str) -> int:
        await self._enter("create_ticket")
        for tid, t in self.tickets.items():
            if (t["kind"], t["uniqueid"]) == (kind, uniqueid):
                return tid
        tid = 1000 + len(self.tickets)
        self.tickets[tid] = dict(kind=kind, customer_id=customer_id, store_id=store_id, category=category,
                                 subject=subject, body=body, severity=severity, uniqueid=uniqueid)
        return tid

    async def free_slots(self, store_id: int, after: datetime, limit: int) -> list[Slot]:
        await self._enter("free_slots")
        free = sorted((s for s, left in self.slots.items() if left > 0 and s.store_id == store_id and
                       s.starts_at > after), key=lambda s: s.starts_at)
        return free[:limit]

    async def book_appointment(self, customer_id: int, store_id: int, vehicle_id: int | None, slot: Slot,
                               uniqueid: str) -> Booking | SlotTaken:
        await self._enter("book_appointment")
        for b in self.bookings:
            if self.tickets[b.ticket_id]["uniqueid"] == uniqueid:
                return b
        if self.slots.get(slot, 0) <= 0:
            return SlotTaken(slot)
        self.slots[slot] -= 1
        tid = 1000 + len(self.tickets)
        self.tickets[tid] = dict(kind="appointment", customer_id=customer_id, store_id=store_id, category="maintenance",
                                 uniqueid=uniqueid, vehicle_id=vehicle_id)
        booking = Booking(tid, customer_id, store_id, vehicle_id, slot)
        self.bookings.append(booking)
        return booking

    async def notify_booking(self, booking: Booking) -> None:
        await self._enter("notify_booking")
        self.notified.append(booking)

    async def open_repairs(self, customer_id: int) -> list[OpenRepair]:
        await self._enter("open_repairs")
        return list(self.repairs.get(customer_id, []))

    def written(self) -> list[str]:
        """Kinds of what was written (tickets and bookings)."""
        return [t["kind"] for t in self.tickets.values()]


def day_slots(store_id: int, day: date, hours: Sequence[int] = (9, 10, 14, 16), places: int = 1) -> dict[Slot, int]:
    """Slots of one hour at ``hours`` (Shanghai time) on ``day``."""
    out = {}
    for hour in hours:
        start = datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC) - timedelta(hours=8)
        out[Slot(store_id, start, start + timedelta(hours=1))] = places
    return out


class Caller(Responder):
    """Asterisk with a caller pressing ``keys`` in turn: one entry per question (a ``GET DATA``, or an ``EXEC
    Read`` and the ``GET FULL VARIABLE`` that reads its outcome); "" = no key (the prompt times out), ``HANGUP``
    = the caller hangs up there. The answers are the shapes recorded from Asterisk 22 running the IVR (agi-07:
    ``(OK:2)``, ``(TIMEOUT:)``, a hangup during Read; agi-09: ``200 result= (timeout)``; agi-04: GET DATA -1).
    ``hangup_on_play``: the caller hangs up during the n-th ``EXEC Playback`` (0 first). Every other command gets
    Asterisk's usual answer (``SET VARIABLE`` 1, ``EXEC`` 0 …)."""

    def __init__(self, keys: Sequence[str | Hang] = (), *, hangup_on_play: int | None = None,
                 missing_prompt: str | None = None) -> None:
        super().__init__()
        self.keys = list(keys)
        self.asked = 0
        self.plays = 0
        self.hangup_on_play = hangup_on_play
        self.missing_prompt = missing_prompt
        self._read_key: str | Hang | None = None
        self._said_hangup = False
        self.questions: list[list[str]] = []  # the prompts of every question, in order

    def _next_key(self) -> str | Hang:
        self.asked += 1
        return self.keys.pop(0) if self.keys else ""

    def _choose(self, line: str, index: int) -> Any:
        reply = self._answer(line, index)
        if self.dead and not self._said_hangup and reply is not MINUS_ONE and "HANGUP" not in reply:
            # agi-04: after the caller left, Asterisk's answer to the next command starts with HANGUP
            self._said_hangup = True
            return ("HANGUP", *reply)
        return reply

    def _answer(self, line: str, index: int) -> Any:
        verb = command_verb(line)
        if self.dead and verb not in ("SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP",
                                      "EXEC", "DATABASE GET"):
            return ("511 Command Not Permitted on a dead channel or intercept routine",)
        words = agi_split(line)
        if verb == "GET DATA":
            self.questions.append([words[2]])
            if self.missing_prompt is not None and words[2] == self.missing_prompt:
                return MINUS_ONE  # Asterisk cannot open the file: the same answer as a hangup
            key = self._next_key()
            if isinstance(key, Hang):
                self.dead = True
                return MINUS_ONE  # agi-04: the caller hung up during GET DATA
            return (f"200 result={key}",) if key else ("200 result= (timeout)",)
        if verb == "EXEC" and words[1] == "Read":
            args = words[2].split(",")
            self.questions.append(args[1].split("&"))
            self._read_key = self._next_key()
            return ("200 result=0",)  # Read answers 0 whether or not the caller stayed (agi-07)
        if verb == "GET FULL VARIABLE":
            key, self._read_key = self._read_key, None
            if isinstance(key, Hang):
                self.dead = self._said_hangup = True
                return HANGUP_511[:1]  # agi-07: the caller left during Read; this command got HANGUP
            return (f"200 result=1 (OK:{key})",) if key else ("200 result=1 (TIMEOUT:)",)
        if verb == "EXEC" and words[1] == "Playback":
            self.plays += 1
            if self.hangup_on_play is not None and self.plays - 1 == self.hangup_on_play:
                self.dead = True
                return MINUS_ONE
            return ("200 result=0",)
        return super()._choose(line, index)


class IVRHarness:
    """The IVR over the routing service on the demo data (SQLite), on a task.Clock; ``call`` plays one call
    through the FastAGI replay peer."""

    def __init__(self, demo: Any, tickets: MemoryTickets | None = None, *, wall: float = OPEN,
                 settings: IVRSettings | None = None, routing_settings: RoutingSettings | None = None,
                 run_blocking: Any = inline) -> None:
        sessions, data = demo
        self.sessions = sessions
        self.data: RoutingData = data
        self.clock = Clock()
        self.records: list[dict[str, Any]] = []
        self.routing_settings = routing_settings or RoutingSettings()
        self.routing = RoutingService(data, CustomerDirectory(sessions), None, None,
                                      self.routing_settings.routing_rules(), self.routing_settings, run_blocking,
                                      self.clock, self.records.append, wall=lambda: wall)
        self.tickets = tickets if tickets is not None else MemoryTickets()
        self.settings = settings or IVRSettings.from_dict()
        self.ivr = IVRService(self.routing, self.settings, clock=self.clock, run_blocking=run_blocking,
                              session_factory=sessions, tickets=self.tickets, wall=lambda: wall)

    def call(self, caller: Caller, transcript: str = LIU_YANG, extension: str = HOTLINE,
             **overrides: str) -> Harness:
        peer = transcript_peer(transcript, caller, extension=extension, **overrides)
        harness = Harness({**self.routing.handlers(), **self.ivr.handlers()}, peer, clock=self.clock)
        harness.flush()
        return harness


def mset(peer: AGIPeer) -> dict[str, str]:
    """The variables of the one MSet line the call was answered with."""
    lines = [c for c in peer.commands if c.startswith("EXEC MSet")]
    assert len(lines) == 1, peer.commands
    words = agi_split(lines[0])
    return dict(pair.split("=", 1) for pair in words[2].split(","))


def played(peer: AGIPeer) -> list[str]:
    """Every prompt the caller was played or asked with, in order (GET DATA, Read and Playback)."""
    out: list[str] = []
    for line in peer.commands:
        words = agi_split(line)
        if line.startswith("GET DATA"):
            out.append(words[2])
        elif line.startswith("EXEC Read"):
            out += words[2].split(",")[1].split("&")
        elif line.startswith("EXEC Playback"):
            out += words[2].split("&")
    return out
