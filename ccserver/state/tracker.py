"""Live call / queue / agent state, maintained from AMI events.

Feed every AMI event of every Asterisk server to :meth:`StateTracker.handle` (any mapping with ``.get()``; an
``AMIMessage``'s ``server`` tag names the server, absent means ``"default"``). List-action results (QueueStatus,
CoreShowChannels) can be fed the same way — they are applied when their ``…Complete`` event arrives — or handed
over whole to :meth:`resync_queues` / :meth:`resync_channels`.

What is a call: the channel that carries the queue events. A channel becomes a call when it is the first channel
of its linked group (``Uniqueid == Linkedid``: the trunk leg of an inbound call, the customer leg of an
originate), or when it joins a queue. Agent legs (``DestUniqueid`` of Agent* events) are not calls; they are
remembered only to know which agent is ringing or talking. Every finished call yields one call record, except
channels that never came up and were never touched by the contact centre (e.g. a failed originate's stray Local
channel), which are dropped without a record.

Times: the event's ``Timestamp`` header (``timestampevents = yes``) if present, else the arrival time.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, overload

from ccserver.events.types import (
    AgentRinging,
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallTransferred,
    CallUpdated,
    QueueChanged,
    Resynced,
)
from ccserver.state import query
from ccserver.state.model import (
    DEFAULT_SERVER,
    AgentState,
    AgentStatus,
    Call,
    CallState,
    DeviceStatus,
    Member,
    Outcome,
    QueueState,
    WaitingCaller,
    field_names,
    to_dict,
)
from ccserver.state.records import call_record

__all__ = ["EVENTS", "LIST_EVENTS", "HeaderLookup", "StateTracker", "is_tracked_variable"]


class HeaderLookup(Protocol):
    """What the tracker reads from an event: header lookup by name, with ``Mapping.get``'s signatures.

    Satisfied by :class:`ccserver.ami.message.AMIMessage` and by any ``Mapping[str, str]`` (plain dicts in tests).
    """

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: str | None, /) -> str | None: ...


# Live events the tracker needs; the AMI client should subscribe to / decode only these.
EVENTS: frozenset[str] = frozenset(
    {
        "Newchannel",
        "Newstate",
        "NewCallerid",
        "VarSet",  # only CC_* (and QUEUE_PRIO) variables are looked at: see is_tracked_variable()
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentRingNoAnswer",
        "AgentConnect",
        "AgentComplete",
        "AgentDump",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMemberPause",
        "QueueMemberStatus",
        "QueueMemberPenalty",
        "QueueMemberRingInUse",
        "BridgeEnter",
        "Hangup",
        "OriginateResponse",
        "BlindTransfer",
        "AttendedTransfer",
        "FullyBooted",
        "UserEvent",  # only CcAmd (the campaign dialplan's answering-machine verdict) is looked at
        "Shutdown",
    }
)
# Items of the list actions used for resync. They answer our own actions, so they are not a subscription, but a
# client that drops undecoded events must let these through when it routes them here.
LIST_EVENTS: frozenset[str] = frozenset(
    {"QueueParams", "QueueMember", "QueueEntry", "QueueStatusComplete", "CoreShowChannel", "CoreShowChannelsComplete"}
)

_UNKNOWN = ("", "<unknown>", "<Unknown>")
_CALL_FIELDS = field_names(Call)  # a finished call's fields are plain values: a shallow copy is its final state
# Dialplan's special extensions: where a call *runs*, never what was dialled (a call ending in the callback flow
# runs in `h`; `s` starts contexts entered by Goto). Never recorded as the dialled number.
SPECIAL_EXTENSIONS = frozenset({"h", "s", "i", "t", "T", "e", "o", "a", "failed", "talk"})
# Variables that carry queue priority: the product's, the lab's, and app_queue's own.
_PRIORITY_VARS = ("CC_PRIORITY", "CC_PRIO", "QUEUE_PRIO")
# OriginateResponse Reason = the last AST_CONTROL_* frame seen on the outgoing channel.
_ORIGINATE_REASON = {3: Outcome.NO_ANSWER, 5: Outcome.BUSY, 8: Outcome.CONGESTION}
_BUSY_STATUSES = (DeviceStatus.INUSE, DeviceStatus.BUSY, DeviceStatus.ONHOLD)
_RINGING_STATUSES = (DeviceStatus.RINGING, DeviceStatus.RINGINUSE)
_RESTART_SLACK = 5.0  # seconds of clock disagreement tolerated before a lower Uptime means "restarted"
_MAX_PENDING_ORIGINATES = 10_000


def _discard(event: CallEvent) -> None:
    """Where events go when nobody listens (a tracker used on its own)."""


AMD_STATUSES = frozenset({"MACHINE", "HUMAN", "NOTSURE", "HANGUP"})  # Asterisk's AMD() verdicts (AMDSTATUS)


def is_tracked_variable(name: str) -> bool:
    """VarSet is half of a busy hour's events; only these variables are worth decoding."""
    return name.startswith("CC_") or name == "QUEUE_PRIO"


def _clean(value: str | None) -> str | None:
    return None if value is None or value in _UNKNOWN else value


def _exact(msg: HeaderLookup, name: str) -> str | None:
    """A header Asterisk always spells one way (``ChanVariable``): looked up without AMIMessage's case-insensitive
    fallback, which builds a lower-cased map on a miss (most events of a manager user without channelvars)."""
    first = getattr(msg, "_first", None)
    return first.get(name) if first is not None else msg.get(name)


def _dialed(exten: str | None) -> str | None:
    value = _clean(exten)
    return None if value is None or value in SPECIAL_EXTENSIONS else value


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _duration(text: str | None) -> float:
    """CoreShowChannel's ``Duration: HH:MM:SS``."""
    if not text:
        return 0.0
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + _float(part)
    return total


class _Originate:
    __slots__ = ("action_id", "server", "dialed_number", "customer_id", "campaign_id", "decision_id", "sent_at",
                 "direction")

    def __init__(self, action_id: str, server: str, sent_at: float, direction: str = "outbound",
                 **info: str | None) -> None:
        self.action_id = action_id
        self.server = server
        self.sent_at = sent_at
        self.direction = direction
        self.dialed_number = info.get("dialed_number")
        self.customer_id = info.get("customer_id")
        self.campaign_id = info.get("campaign_id")
        self.decision_id = info.get("decision_id")


class StateTracker:
    """The live model for one node, fed by AMI events of one or more Asterisk servers.

    Every change is published as a typed event (:mod:`ccserver.events.types`) through ``publish`` — give it
    :meth:`ccserver.events.EventHub.publish`; the Redis mirror, the call records (``CallEnded.record``), screen pop,
    the wallboard … subscribe there. ``on_resync_needed(server)`` is called on FullyBooted so the AMI client sends
    QueueStatus + CoreShowChannels.
    """

    def __init__(
        self,
        *,
        publish: Callable[[CallEvent], None] | None = None,
        on_resync_needed: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publish = publish or _discard
        self._seq: dict[str, int] = {}  # server -> the last event sequence number published for it
        self.on_resync_needed = on_resync_needed
        self._clock = clock
        self.now = 0.0  # time of the latest event handled
        self.calls: dict[tuple[str, str], Call] = {}
        self.queues: dict[tuple[str, str], QueueState] = {}
        self.agents: dict[tuple[str, str], AgentState] = {}
        self._legs: dict[tuple[str, str], tuple[str, str]] = {}  # agent leg -> caller's call key
        # Each queue's waiting uniqueids, beside the very list they index (see _waiting_ids).
        self._waiting: dict[tuple[str, str], tuple[list[WaitingCaller], set[str]]] = {}
        self._ringing: dict[tuple[str, str], dict[str, str]] = {}  # call key -> {interface: queue}
        self._memberships: dict[tuple[str, str], set[str]] = {}  # (server, interface) -> queue names
        self._originates: OrderedDict[tuple[str, str], _Originate] = OrderedDict()
        self._lists: dict[tuple[str, str], list[HeaderLookup]] = {}  # (server, ActionID) -> list items
        self._boot: dict[str, tuple[float, float]] = {}  # server -> (Uptime, arrival) of the last FullyBooted
        self._shutdown_seen: set[str] = set()
        self.resync_pending: set[str] = set()
        self._complete_queue_lists: set[str] = set()  # servers whose full QueueStatus was applied
        self._restarted: set[str] = set()  # servers found restarted, until their next Resynced
        self.ghosts_dropped = 0
        self.records_emitted = 0
        self._handlers: dict[str, Callable[[HeaderLookup, str, float], None]] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "NewCallerid": self._on_newcallerid,
            "VarSet": self._on_varset,
            "QueueCallerJoin": self._on_join,
            "QueueCallerLeave": self._on_leave,
            "QueueCallerAbandon": self._on_abandon,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_ring_no_answer,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_complete,
            "AgentDump": self._on_agent_dump,
            "QueueMemberAdded": self._on_member,
            "QueueMemberPause": self._on_member,
            "QueueMemberStatus": self._on_member,
            "QueueMemberPenalty": self._on_member,
            "QueueMemberRingInUse": self._on_member,
            "QueueMemberRemoved": self._on_member_removed,
            "BridgeEnter": self._on_bridge_enter,
            "Hangup": self._on_hangup,
            "OriginateResponse": self._on_originate_response,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "FullyBooted": self._on_fully_booted,
            "UserEvent": self._on_user_event,
            "Shutdown": self._on_shutdown,
            "QueueParams": self._on_list_item,
            "QueueMember": self._on_list_item,
            "QueueEntry": self._on_list_item,
            "CoreShowChannel": self._on_list_item,
            "QueueStatusComplete": self._on_queue_status_complete,
            "CoreShowChannelsComplete": self._on_core_show_channels_complete,
        }

    # -- input -----------------------------------------------------------------------------------------------
    def handle(self, msg: HeaderLookup, arrival_time: float | None = None) -> None:
        """Apply one AMI event. Unknown events are ignored cheaply."""
        event = msg.get("Event")
        handler = self._handlers.get(event) if event else None
        if handler is None:
            return
        server = getattr(msg, "server", None) or DEFAULT_SERVER
        ts = msg.get("Timestamp")
        if ts:
            t = _float(ts)
        elif arrival_time is not None:
            t = arrival_time
        else:
            t = getattr(msg, "arrival", None) or self._clock()
        if t > self.now:
            self.now = t
        handler(msg, server, t)

    def event_filters(self) -> dict[str, tuple[tuple[str, ...], Callable[..., bool]]]:
        """For the AMI reader (``EventDispatcher.on(..., when=...)``): per event name, the headers and a test
        ``test(server, *values)`` that is false when this tracker would ignore the event *now* — a VarSet of another
        variable; a channel event of a channel that is neither a call it follows nor an agent leg it knows (about
        half the channel events of a busy hour: agents' legs, Local channels). The reader then drops it undecoded,
        so it is neither applied nor relayed (a follower would ignore it as well). The tracker's clock (:attr:`now`)
        moves with the next event it applies instead."""
        def root(server: str, uid: str, linkedid: str) -> bool:  # Newchannel: only a root channel starts a call
            return uid == linkedid and bool(uid)

        def followed(server: str, uid: str) -> bool:  # Newstate, NewCallerid, BridgeEnter: a call's own channel
            return (server, uid) in self.calls

        def known(server: str, uid: str) -> bool:  # Hangup: a call's channel, or an agent leg of one
            return (server, uid) in self.calls or (server, uid) in self._legs

        return {
            "VarSet": (("Variable",), lambda server, name: is_tracked_variable(name)),
            "Newchannel": (("Uniqueid", "Linkedid"), root),
            "Newstate": (("Uniqueid",), followed),
            "NewCallerid": (("Uniqueid",), followed),
            "BridgeEnter": (("Uniqueid",), followed),
            "Hangup": (("Uniqueid",), known),
        }

    def expect_originate(
        self,
        action_id: str,
        *,
        server: str = DEFAULT_SERVER,
        dialed_number: str | None = None,
        customer_id: str | None = None,
        campaign_id: str | None = None,
        decision_id: str | None = None,
        sent_at: float | None = None,
        direction: str = "outbound",
    ) -> None:
        """The dialer announces an Originate it sent, so its OriginateResponse makes an outbound call record.

        ``direction="internal"``: a call between our own phones (a supervisor's phone rung into ChanSpy), recorded
        as such so it never passes for a caller who hung up in the IVR.
        Originates we did not announce (another tool's, a lab recorder's) never change a call's direction.
        """
        if direction not in ("outbound", "internal"):
            raise ValueError(f"an originated call is outbound or internal, not {direction!r}")
        key = (server, action_id)
        self._originates[key] = _Originate(
            action_id,
            server,
            sent_at if sent_at is not None else (self.now or self._clock()),
            direction,
            dialed_number=dialed_number,
            customer_id=customer_id,
            campaign_id=campaign_id,
            decision_id=decision_id,
        )
        while len(self._originates) > _MAX_PENDING_ORIGINATES:
            self._originates.popitem(last=False)

    def connection_lost(self, server: str = DEFAULT_SERVER) -> None:
        """The AMI connection to a server dropped: its state is suspect until the next resync."""
        self.resync_pending.add(server)

    # -- resync ----------------------------------------------------------------------------------------------
    def resync_queues(self, server: str, items: Iterable[HeaderLookup], now: float | None = None, *,
                      complete: bool = False) -> None:
        """Rebuild the queues named in a QueueStatus result (QueueParams/QueueMember/QueueEntry) from its truth.

        ``complete``: the result of an unfiltered QueueStatus, i.e. every queue Asterisk has. Queues absent from it
        are then forgotten and :meth:`queues_complete` is true for the server. Otherwise (a QueueStatus filtered by
        ``Queue:``) queues not present are left alone.
        """
        now = self.now if now is None else now
        params: dict[str, HeaderLookup] = {}
        members: dict[str, list[HeaderLookup]] = {}
        entries: dict[str, list[HeaderLookup]] = {}
        for item in items:
            event = item.get("Event")
            name = item.get("Queue") or ""
            if event == "QueueParams":
                params[name] = item
            elif event == "QueueMember":
                members.setdefault(name, []).append(item)
            elif event == "QueueEntry":
                entries.setdefault(name, []).append(item)
        touched_interfaces: set[str] = set()
        for name, p in params.items():
            q = self._queue(server, name)
            q.strategy = p.get("Strategy") or q.strategy
            q.max_callers = _int(p.get("Max"))
            q.weight = _int(p.get("Weight"))
            q.completed = _int(p.get("Completed"))
            q.abandoned = _int(p.get("Abandoned"))
            q.holdtime = _int(p.get("Holdtime", p.get("HoldTime")))
            q.talktime = _int(p.get("TalkTime"))
            q.service_level = _int(p.get("ServiceLevel"))
            perf = _float(p.get("ServicelevelPerf"))
            perf2 = _float(p.get("ServicelevelPerf2"))
            q.completed_in_sl = round(perf * q.completed / 100.0)
            q.abandoned_in_sl = max(0, round(perf2 * (q.completed + q.abandoned) / 100.0) - q.completed_in_sl)
            # Members: Asterisk's list replaces ours.
            old = set(q.members)
            q.members = {}
            for item in members.get(name, ()):
                member = self._member_from(item, None)
                q.members[member.interface] = member
            for interface in old - set(q.members):
                self._memberships.get((server, interface), set()).discard(name)
            for interface in q.members:
                self._memberships.setdefault((server, interface), set()).add(name)
            touched_interfaces |= old | set(q.members)
            # Waiting callers: exactly those listed, in Asterisk's order.
            known = {c.uniqueid: c for c in q.callers}
            callers: list[WaitingCaller] = []
            for item in sorted(entries.get(name, ()), key=lambda e: _int(e.get("Position"))):
                uid = item.get("Uniqueid") or ""
                prio = _int(item.get("Priority"))
                call = self.calls.get((server, uid))
                if call is None:
                    call = self._new_call(server, item, now - _float(item.get("Wait")))
                    call.involved = True
                    self.calls[call.key] = call
                prev = known.get(uid)
                joined = prev.joined_at if prev else now - _float(item.get("Wait"))
                call.queue, call.priority, call.position = name, prio, _int(item.get("Position"))
                if call.queue_joined_at is None:
                    call.queue_joined_at = joined
                if call.state not in (CallState.QUEUED, CallState.RINGING):
                    call.state = CallState.QUEUED
                callers.append(WaitingCaller(uid, prio, joined, call.caller_number, call.caller_name))
                self._dirty_call(call)
            listed = {c.uniqueid for c in callers}
            for uid in set(known) - listed:
                call = self.calls.get((server, uid))
                if call is not None and call.state in (CallState.QUEUED, CallState.RINGING):
                    call.state = CallState.IVR
                    call.position = None
                    self._dirty_call(call)
            q.callers = callers
            self._dirty_queue(q)
        if complete:
            for key in [k for k in self.queues if k[0] == server and k[1] not in params]:
                gone = self.queues.pop(key)
                self._waiting.pop(key, None)
                for interface in gone.members:
                    self._memberships.get((server, interface), set()).discard(gone.name)
                    touched_interfaces.add(interface)
                gone.callers, gone.members = [], {}
                self._dirty_queue(gone)  # gone from Asterisk: mirrors drop it
            self._complete_queue_lists.add(server)
        for interface in touched_interfaces:
            self._refresh_agent(server, interface, now)

    def resync(self, server: str, queue_items: Iterable[HeaderLookup], channel_items: Iterable[HeaderLookup],
               now: float | None = None) -> None:
        """A full resync of ``server`` (unfiltered QueueStatus, then CoreShowChannels), then ``Resynced``."""
        self.resync_queues(server, queue_items, now, complete=True)
        self.resync_channels(server, channel_items, now)
        self._resynced(server, self.now if now is None else now)

    def _resynced(self, server: str, t: float) -> None:
        restarted = server in self._restarted
        self._restarted.discard(server)
        self._send(Resynced(
            server, self._next(server), t,
            tuple(to_dict(c) for c in self.calls.values() if c.server == server),
            tuple(to_dict(q) for q in self.queues.values() if q.server == server),
            tuple(to_dict(a) for a in self.agents.values() if a.server == server),
            restarted))

    def load_snapshot(self, server: str, calls: Iterable[Call], queues: Iterable[QueueState],
                      agents: Iterable[AgentState], *, now: float | None = None,
                      queues_complete: bool = False) -> None:
        """Replace ``server``'s live state with a snapshot taken elsewhere (a follower node rebuilding from the
        shared Redis mirror after it missed relayed events), then publish ``Resynced``.

        Everything this tracker held about ``server`` is forgotten — calls, queues, agents, memberships, agent
        legs, rings — and rebuilt from the records (copied, so the caller's objects are never shared). What the
        records do not carry is derived: memberships from the queues' members, the talking agents' legs from the
        calls, the rings from the agents ringing for a call. The legs of agents still ringing are not in the
        records: a ring that ends by its leg hanging up (before the caller's own event ends it) is then ended by
        that next event instead. List actions in flight (``_lists``) are this node's own and are kept. No call
        records come out of it: the node that consumes the server's AMI writes those. Records of another server
        are refused with ``ValueError`` before anything changes.
        """
        calls, queues, agents = list(calls), list(queues), list(agents)
        for other in {r.server for r in calls} | {r.server for r in queues} | {r.server for r in agents}:
            if other != server:
                raise ValueError(f"snapshot of {server!r} holds a record of server {other!r}")
        tables: tuple[dict[tuple[str, str], Any], ...] = (self.calls, self.queues, self.agents, self._legs,
                                                          self._ringing, self._memberships)
        for table in tables:
            for key in [k for k in table if k[0] == server]:
                del table[key]
        for call in calls:
            self.calls[call.key] = copy.deepcopy(call)
        for q in queues:
            self.queues[q.key] = copy.deepcopy(q)
            for interface in q.members:
                self._memberships.setdefault((server, interface), set()).add(q.name)
        for agent in agents:
            self.agents[agent.key] = copy.deepcopy(agent)
        for call in self.calls.values():
            if call.server == server and call.state == CallState.TALKING and call.agent_uniqueid:
                self._legs[(server, call.agent_uniqueid)] = call.key
        for agent in self.agents.values():
            ringing = self.calls.get((server, agent.current_call or ""))
            if agent.server == server and agent.state == AgentStatus.RINGING and ringing is not None:
                self._ringing.setdefault(ringing.key, {})[agent.interface] = ringing.queue or ""
        if queues_complete:
            self._complete_queue_lists.add(server)
        else:
            self._complete_queue_lists.discard(server)
        self.resync_pending.discard(server)
        self._restarted.discard(server)  # the snapshot is already what came after any restart
        t = self.now if now is None else now
        self.now = max(self.now, t)
        self._resynced(server, t)

    def queues_complete(self, server: str = DEFAULT_SERVER) -> bool:
        """Whether the tracker holds Asterisk's full queue list for ``server`` (a full QueueStatus was applied)."""
        return server in self._complete_queue_lists

    def resync_channels(self, server: str, items: Iterable[HeaderLookup], now: float | None = None) -> None:
        """Apply a CoreShowChannels result: calls and agent legs whose channel is gone are finalised/dropped."""
        now = self.now if now is None else now
        live: dict[str, HeaderLookup] = {}
        for item in items:
            if item.get("Event") == "CoreShowChannel":
                live[item.get("Uniqueid") or ""] = item
        for key, call in list(self.calls.items()):
            if key[0] == server and key[1] not in live:
                self._finalise(call, now, Outcome.LOST)
        for leg in [k for k in self._legs if k[0] == server and k[1] not in live]:
            self._drop_leg(leg, now)
        for uid, item in live.items():
            if (server, uid) not in self.calls and uid == item.get("Linkedid") and (server, uid) not in self._legs:
                call = self._new_call(server, item, now - _duration(item.get("Duration")))
                call.involved = True  # a real, live channel we did not see start: keep its record
                self.calls[call.key] = call
                self._dirty_call(call)
        self.resync_pending.discard(server)

    # -- queries ---------------------------------------------------------------------------------------------
    def call(self, uniqueid: str, server: str = DEFAULT_SERVER) -> Call | None:
        return self.calls.get((server, uniqueid))

    def queue(self, name: str, server: str = DEFAULT_SERVER) -> QueueState | None:
        return self.queues.get((server, name))

    def queue_snapshot(self, name: str, server: str = DEFAULT_SERVER, now: float | None = None) -> dict | None:
        q = self.queues.get((server, name))
        return None if q is None else query.queue_snapshot(q, self.now if now is None else now)

    def agent(self, interface: str, server: str = DEFAULT_SERVER) -> AgentState | None:
        agent = self.agents.get((server, interface))
        if agent is not None and agent.state == AgentStatus.WRAPUP and (agent.wrapup_until or 0) <= self.now:
            self._refresh_agent(server, interface, self.now)
        return agent

    def calls_in_queue(self, name: str, server: str = DEFAULT_SERVER) -> list[Call]:
        q = self.queues.get((server, name))
        if q is None:
            return []
        return [c for c in (self.calls.get((server, w.uniqueid)) for w in q.callers) if c is not None]

    def callers_ahead(self, queue: str, priority: int, joined_at: float, server: str = DEFAULT_SERVER) -> int:
        q = self.queues.get((server, queue))
        return 0 if q is None else query.callers_ahead(q.callers, priority, joined_at)

    def iter_calls(self, server: str | None = None) -> Iterator[Call]:
        return (c for c in self.calls.values() if server is None or c.server == server)

    # -- events ----------------------------------------------------------------------------------------------
    def last_seq(self, server: str = DEFAULT_SERVER) -> int:
        """The ``seq`` of the last event published about ``server`` (0: none yet)."""
        return self._seq.get(server, 0)

    def _next(self, server: str) -> int:
        seq = self._seq.get(server, 0) + 1
        self._seq[server] = seq
        return seq

    def _send(self, event: CallEvent) -> None:
        self._publish(event)

    def _dirty_call(self, call: Call) -> None:
        self._publish(CallUpdated(call.server, self._next(call.server), self.now, call.uniqueid))

    def _dirty_queue(self, q: QueueState) -> None:
        self._publish(QueueChanged(q.server, self._next(q.server), self.now, q.name, len(q.callers),
                                   len(q.members)))

    # -- model helpers -----------------------------------------------------------------------------------------
    def _waiting_ids(self, q: QueueState) -> set[str]:
        """The uniqueids in ``q.callers``. Kept beside that very list object: a list put in its place (a resync,
        a restart, a follower's load from Redis) is indexed anew on first use, so no path can leave it stale."""
        cached = self._waiting.get(q.key)
        if cached is None or cached[0] is not q.callers:
            cached = self._waiting[q.key] = (q.callers, {c.uniqueid for c in q.callers})
        return cached[1]

    def _take_waiting(self, q: QueueState, uid: str) -> bool:
        """Remove ``uid`` from the queue's waiting callers (in place); whether it was there. Joins, leaves and
        hang-ups each cost a set lookup, not a pass over a long queue; the removal's own pass stops at the caller,
        and the one leaving is most often at the head (answered, or first to give up)."""
        ids = self._waiting_ids(q)
        if uid not in ids:
            return False
        ids.discard(uid)
        callers = q.callers
        for i, c in enumerate(callers):
            if c.uniqueid == uid:
                del callers[i]
                break
        return True

    def _queue(self, server: str, name: str) -> QueueState:
        q = self.queues.get((server, name))
        if q is None:
            q = self.queues[(server, name)] = QueueState(server, name)
        return q

    def _new_call(self, server: str, msg: HeaderLookup, t: float) -> Call:
        uid = msg.get("Uniqueid") or ""
        return Call(
            server=server,
            uniqueid=uid,
            linkedid=msg.get("Linkedid") or uid,
            channel=msg.get("Channel") or "",
            caller_number=_clean(msg.get("CallerIDNum")),
            caller_name=_clean(msg.get("CallerIDName")),
            dialed_number=_dialed(msg.get("Exten")),
            entered_at=t,
            up=msg.get("ChannelState") == "6",
        )

    def _call_for(self, msg: HeaderLookup, server: str, t: float, *, force: bool = False) -> Call | None:
        """The call an event is about; created on demand for root channels (or when ``force``)."""
        uid = msg.get("Uniqueid")
        if not uid:
            return None
        call = self.calls.get((server, uid))
        if call is None and (force or uid == msg.get("Linkedid")) and (server, uid) not in self._legs:
            call = self.calls[(server, uid)] = self._new_call(server, msg, t)
        if call is not None and _exact(msg, "ChanVariable") is not None:
            self._apply_chanvariables(call, msg)
        return call

    def _apply_chanvariables(self, call: Call, msg: HeaderLookup) -> None:
        # manager.conf `channelvars = CC_DECISION_ID,CC_CUSTOMER_ID` adds "ChanVariable: NAME=value" headers.
        getall = getattr(msg, "getall", None)
        values = getall("ChanVariable") if getall else [msg.get("ChanVariable") or ""]
        for item in values:
            name, sep, value = item.partition("=")
            if sep and is_tracked_variable(name):
                self._apply_variable(call, name, value)

    def _apply_variable(self, call: Call, name: str, value: str) -> None:
        if not value:
            return
        if name == "CC_CUSTOMER_ID":
            call.customer_id = value
        elif name == "CC_DECISION_ID":
            call.decision_id = value
        elif name == "CC_TIER":
            call.tier = value
        elif name == "CC_CAMPAIGN_ID":
            call.campaign_id = value
            call.direction = "outbound"
        elif name == "CC_DIRECTION" and value in ("inbound", "outbound"):
            call.direction = value
        elif name in ("CC_DID", "CC_DIALED_NUMBER"):
            call.dialed_number = value
            call.dialed_frozen = True
        elif name in _PRIORITY_VARS:
            call.priority = _int(value, call.priority)
        call.involved = True

    def _follow_exten(self, call: Call, msg: HeaderLookup) -> None:
        # Inbound: the DID is the extension the call runs in when the contact centre first sees it (its IVR
        # variables or its queue join); Local-channel callers start elsewhere and are redirected there.
        if not call.dialed_frozen and call.direction == "inbound":
            exten = _dialed(msg.get("Exten"))
            if exten:
                call.dialed_number = exten

    # -- channel events ----------------------------------------------------------------------------------------
    def _on_newchannel(self, msg: HeaderLookup, server: str, t: float) -> None:
        uid = msg.get("Uniqueid")
        if uid and uid == msg.get("Linkedid") and (server, uid) not in self.calls:
            call = self.calls[(server, uid)] = self._new_call(server, msg, t)
            if _exact(msg, "ChanVariable") is not None:
                self._apply_chanvariables(call, msg)
            self._dirty_call(call)

    def _on_newstate(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self.calls.get((server, msg.get("Uniqueid") or ""))
        if call is None:
            return
        if msg.get("ChannelState") == "6" and not call.up:
            call.up = True
            if call.direction != "inbound" and call.answered_at is None:
                call.answered_at = t  # the customer (or our own phone, for an internal call) picked up
            self._dirty_call(call)

    def _on_newcallerid(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self.calls.get((server, msg.get("Uniqueid") or ""))
        if call is None:
            return
        call.caller_number = _clean(msg.get("CallerIDNum")) or call.caller_number
        call.caller_name = _clean(msg.get("CallerIDName")) or call.caller_name
        self._dirty_call(call)

    def _on_varset(self, msg: HeaderLookup, server: str, t: float) -> None:
        name = msg.get("Variable") or ""
        if not is_tracked_variable(name):
            return
        call = self._call_for(msg, server, t)
        if call is None:
            return
        self._follow_exten(call, msg)
        self._apply_variable(call, name, msg.get("Value") or "")
        if name.startswith("CC_"):
            call.dialed_frozen = True
        self._dirty_call(call)

    def _on_user_event(self, msg: HeaderLookup, server: str, t: float) -> None:
        # [ccserver-campaign]: UserEvent(CcAmd,Status: ${AMDSTATUS}) right after AMD(), on the answered leg.
        if msg.get("UserEvent") != "CcAmd":
            return
        status = (msg.get("Status") or "").strip().upper()
        if status not in AMD_STATUSES:
            return
        call = (self.calls.get((server, msg.get("Uniqueid") or ""))
                or self.calls.get((server, msg.get("Linkedid") or "")))
        if call is None or call.state == CallState.ENDED:
            return
        call.amd = status
        self._dirty_call(call)

    def _on_bridge_enter(self, msg: HeaderLookup, server: str, t: float) -> None:
        # Queue calls are answered by AgentConnect; this catches calls bridged outside a queue.
        call = self.calls.get((server, msg.get("Uniqueid") or ""))
        if call is None or call.answered_at is not None or call.queue_joined_at is not None:
            return
        if _int(msg.get("BridgeNumChannels")) >= 2:
            call.answered_at = t
            call.state = CallState.TALKING
            self._dirty_call(call)

    def _on_hangup(self, msg: HeaderLookup, server: str, t: float) -> None:
        key = (server, msg.get("Uniqueid") or "")
        call = self.calls.get(key)
        if call is not None:
            call.hangup_cause = _int(msg.get("Cause"), 0)
            self._follow_exten(call, msg)
            self._finalise(call, t)
        elif key in self._legs:
            self._drop_leg(key, t)

    def _on_originate_response(self, msg: HeaderLookup, server: str, t: float) -> None:
        pending = self._originates.pop((server, msg.get("ActionID") or ""), None)
        reason = _int(msg.get("Reason"), -1)
        uid = _clean(msg.get("Uniqueid"))
        if msg.get("Response") == "Success" and uid:
            call = self._call_for(msg, server, t, force=pending is not None)
            if call is None:
                return
            call.originate_reason = reason
            if pending is not None:
                self._make_outbound(call, pending)
                if call.answered_at is None:
                    call.answered_at = t
            else:
                self._follow_exten(call, msg)
            self._dirty_call(call)
            return
        if pending is None:
            return  # a failure of somebody else's originate
        outcome = _ORIGINATE_REASON.get(reason, Outcome.FAILED)
        channel = msg.get("Channel") or ""
        call = self._find_originated(server, channel)
        if call is None:
            # Nothing was created for it: the record stands alone, under a synthetic, unique id.
            call = Call(server=server, uniqueid=f"originate:{pending.action_id}", entered_at=pending.sent_at)
            call.dialed_number = pending.dialed_number or channel.partition("/")[2].partition("@")[0] or None
            self._make_outbound(call, pending)
            call.originate_reason, call.outcome = reason, outcome
            self._emit(call, t)
            return
        self._make_outbound(call, pending)
        call.originate_reason, call.outcome = reason, outcome
        self._dirty_call(call)

    def _find_originated(self, server: str, channel: str) -> Call | None:
        # A failed originate names the dialled channel ("Local/139...@ctx"), not the instance ("...-0000000a;1").
        if not channel:
            return None
        prefix = channel + "-"
        for call in self.calls.values():
            if call.server == server and call.answered_at is None and call.channel.startswith(prefix):
                return call
        return None

    def _make_outbound(self, call: Call, pending: _Originate) -> None:
        call.direction = pending.direction
        call.involved = True
        call.dialed_frozen = True
        if pending.dialed_number:
            call.dialed_number = pending.dialed_number
        call.customer_id = pending.customer_id or call.customer_id
        call.campaign_id = pending.campaign_id or call.campaign_id
        call.decision_id = pending.decision_id or call.decision_id

    # -- transfers ---------------------------------------------------------------------------------------------
    def _transferred(self, server: str, t: float, transferee: str, transferer: str, kind: str, target: str,
                     result: str) -> None:
        """``transferee``: the channel being transferred (the caller); ``transferer``: the agent's leg."""
        key = (server, transferee)
        call = self.calls.get(key) or self.calls.get(self._legs.get((server, transferer), ("", "")))
        if call is None:
            return
        interface = call.agent_interface
        if result == "Success":
            call.transfers += 1
            self._dirty_call(call)
        self._send(CallTransferred(server, self._next(server), t, call.uniqueid, kind, interface, target, result))

    def _on_blind_transfer(self, msg: HeaderLookup, server: str, t: float) -> None:
        target = msg.get("Extension") or ""
        context = msg.get("Context")
        self._transferred(server, t, msg.get("TransfereeUniqueid") or "", msg.get("TransfererUniqueid") or "",
                          "blind", f"{target}@{context}" if context else target, msg.get("Result") or "")

    def _on_attended_transfer(self, msg: HeaderLookup, server: str, t: float) -> None:
        target = (msg.get("TransferTargetChannel") or msg.get("DestExten") or msg.get("DestApp")
                  or msg.get("DestType") or "")
        self._transferred(server, t, msg.get("TransfereeUniqueid") or "",
                          msg.get("OrigTransfererUniqueid") or "", "attended", target, msg.get("Result") or "")

    # -- queue caller events -----------------------------------------------------------------------------------
    def _on_join(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        if call is None:
            return
        self._follow_exten(call, msg)
        name = msg.get("Queue") or ""
        q = self._queue(server, name)
        call.queue = name
        call.queue_joined_at = t
        call.position = _int(msg.get("Position"), len(q.callers) + 1)
        call.state = CallState.QUEUED
        call.involved = call.dialed_frozen = True
        if call.outcome == Outcome.QUEUE_TIMEOUT:
            call.outcome = None  # it left one queue unanswered and joined another
        self._take_waiting(q, call.uniqueid)
        # Asterisk reports where it put the caller; trust that over our own priority arithmetic.
        index = max(0, min(call.position - 1, len(q.callers)))
        q.callers.insert(index, WaitingCaller(call.uniqueid, call.priority, t, call.caller_number, call.caller_name))
        self._waiting_ids(q).add(call.uniqueid)
        self._dirty_call(call)
        self._dirty_queue(q)
        self._send(CallOffered(server, self._next(server), t, call.uniqueid, call.linkedid, name, call.position,
                               call.priority, call.caller_number, call.caller_name, call.dialed_number,
                               call.decision_id, call.customer_id, call.tier))

    def _on_leave(self, msg: HeaderLookup, server: str, t: float) -> None:
        uid = msg.get("Uniqueid") or ""
        q = self.queues.get((server, msg.get("Queue") or ""))
        if q is not None:
            self._take_waiting(q, uid)
            self._dirty_queue(q)
        call = self.calls.get((server, uid))
        if call is not None:
            # Not a ring's end: Asterisk sends QueueCallerLeave *before* AgentConnect when a member answers. A ring
            # still going when the caller really left ends with its agent leg's Hangup or with the call.
            call.position = None
            if call.state == CallState.QUEUED:
                call.state = CallState.IVR
            self._dirty_call(call)

    def _on_abandon(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        q = self._queue(server, msg.get("Queue") or "")
        holdtime = _int(msg.get("HoldTime"))
        q.record_abandon(q.service_level > 0 and holdtime <= q.service_level)
        self._dirty_queue(q)
        if call is None:
            return
        call.outcome = Outcome.ABANDONED
        call.holdtime = holdtime
        call.wait_seconds = t - call.queue_joined_at if call.queue_joined_at is not None else float(holdtime)
        self._stop_ringing(call, t, "caller_left")
        self._dirty_call(call)
        self._send(CallAbandoned(server, self._next(server), t, call.uniqueid, q.name, _int(msg.get("Position")),
                                 _int(msg.get("OriginalPosition")), call.wait_seconds, holdtime, call.caller_number,
                                 call.decision_id, call.customer_id))

    # -- agent events ------------------------------------------------------------------------------------------
    def _on_agent_called(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        if call is None:
            return
        interface = msg.get("Interface") or ""
        name = msg.get("Queue") or ""
        dest = msg.get("DestUniqueid")
        if dest:
            self._legs[(server, dest)] = call.key
        self._ringing.setdefault(call.key, {})[interface] = name
        call.ringing_interface = interface
        call.ring_attempts += 1
        if call.state in (CallState.QUEUED, CallState.IVR):
            call.state = CallState.RINGING
        q = self._queue(server, name)
        member = self._known_member(q, interface, msg.get("MemberName"))
        member.ringing = True
        self._dirty_queue(q)
        agent = self._agent(server, interface, msg.get("MemberName"))
        agent.current_call = call.uniqueid
        self._refresh_agent(server, interface, t)
        self._dirty_call(call)
        waited = t - call.queue_joined_at if call.queue_joined_at is not None else None
        self._send(AgentRinging(server, self._next(server), t, call.uniqueid, call.linkedid, name, interface,
                                member.name, dest or None, call.decision_id, call.customer_id, call.caller_number,
                                waited))

    def _on_ring_no_answer(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        interface = msg.get("Interface") or ""
        if call is not None:
            call.ring_seconds += _int(msg.get("RingTime")) / 1000.0  # milliseconds here, seconds elsewhere
            self._clear_ring(call, interface, t, "no_answer")
            if call.state == CallState.RINGING and not self._ringing.get(call.key):
                call.state = CallState.QUEUED
            self._dirty_call(call)
        dest = msg.get("DestUniqueid")
        if dest:
            self._legs.pop((server, dest), None)

    def _on_agent_connect(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        if call is None:
            return
        interface = msg.get("Interface") or ""
        name = msg.get("Queue") or ""
        q = self._queue(server, name)
        holdtime = _int(msg.get("HoldTime"))
        q.record_connect(holdtime)
        call.agent_interface = interface
        call.agent_name = msg.get("MemberName") or None
        call.agent_uniqueid = msg.get("DestUniqueid") or None
        call.answered_at = t
        call.outcome = Outcome.ANSWERED
        call.state = CallState.TALKING
        call.holdtime = holdtime
        call.wait_seconds = t - call.queue_joined_at if call.queue_joined_at is not None else float(holdtime)
        call.ring_seconds += _int(msg.get("RingTime"))  # seconds in AgentConnect
        self._ringing.get(call.key, {}).pop(interface, None)
        self._stop_ringing(call, t, "answered_elsewhere")  # ringall: the others stop ringing
        call.ringing_interface = None
        member = self._known_member(q, interface, call.agent_name)
        member.in_call, member.ringing = True, False
        agent = self._agent(server, interface, call.agent_name)
        agent.current_call = call.uniqueid
        agent.wrapup_until = None
        self._refresh_agent(server, interface, t)
        self._dirty_queue(q)
        self._dirty_call(call)
        self._send(CallAnswered(server, self._next(server), t, call.uniqueid, call.linkedid, name, interface,
                                member.name, call.wait_seconds, holdtime, call.decision_id, call.customer_id))

    def _on_agent_complete(self, msg: HeaderLookup, server: str, t: float) -> None:
        call = self._call_for(msg, server, t, force=True)
        interface = msg.get("Interface") or ""
        q = self._queue(server, msg.get("Queue") or "")
        holdtime = _int(msg.get("HoldTime"))
        q.record_complete(_int(msg.get("TalkTime")), holdtime <= q.service_level)
        member = q.members.get(interface)
        if member is not None:
            member.in_call = False
        wrapup = member.wrapuptime if member is not None else 0
        self._end_agent_call(server, interface, t, wrapup)
        self._dirty_queue(q)
        if call is not None:
            if call.answered_at is not None:
                call.talk_seconds = t - call.answered_at
            call.state = CallState.IVR  # back in the dialplan (survey, hangup) until its own Hangup
            self._dirty_call(call)
        dest = msg.get("DestUniqueid")
        if dest:
            self._legs.pop((server, dest), None)

    def _on_agent_dump(self, msg: HeaderLookup, server: str, t: float) -> None:
        interface = msg.get("Interface") or ""
        q = self.queues.get((server, msg.get("Queue") or ""))
        member = q.members.get(interface) if q else None
        if member is not None:
            member.in_call = False
            self._dirty_queue(q)  # type: ignore[arg-type]
        self._end_agent_call(server, interface, t, 0)

    def _end_agent_call(self, server: str, interface: str, t: float, wrapup: int) -> None:
        agent = self.agents.get((server, interface))
        if agent is None:
            return
        agent.current_call = None
        agent.wrapup_until = t + wrapup if wrapup > 0 else None
        self._refresh_agent(server, interface, t)

    # -- members -----------------------------------------------------------------------------------------------
    def _member_from(self, msg: HeaderLookup, into: Member | None) -> Member:
        interface = msg.get("Interface") or msg.get("Location") or ""
        m = into or Member(interface)
        m.name = msg.get("MemberName") or msg.get("Name") or m.name or interface
        m.state_interface = msg.get("StateInterface") or m.state_interface
        m.membership = msg.get("Membership") or m.membership
        m.penalty = _int(msg.get("Penalty"), m.penalty)
        m.paused = msg.get("Paused") == "1"
        m.paused_reason = (msg.get("PausedReason") or "") if m.paused else ""
        m.in_call = msg.get("InCall") == "1"
        m.status = _int(msg.get("Status"), m.status)
        m.ringing = m.status in _RINGING_STATUSES or (m.ringing and into is not None)
        m.calls_taken = _int(msg.get("CallsTaken"), m.calls_taken)
        m.last_call = _int(msg.get("LastCall"), m.last_call)
        m.wrapuptime = _int(msg.get("Wrapuptime"), m.wrapuptime)
        ringinuse = msg.get("Ringinuse")
        if ringinuse is not None:
            m.ringinuse = ringinuse == "1"
        return m

    def _known_member(self, q: QueueState, interface: str, name: str | None) -> Member:
        # app_queue only rings members, so an Agent* event proves membership even before any member event.
        member = q.members.get(interface)
        if member is None:
            member = q.members[interface] = Member(interface, name or interface)
            self._memberships.setdefault((q.server, interface), set()).add(q.name)
        return member

    def _on_member(self, msg: HeaderLookup, server: str, t: float) -> None:
        name = msg.get("Queue") or ""
        interface = msg.get("Interface") or ""
        q = self._queue(server, name)
        q.members[interface] = self._member_from(msg, q.members.get(interface))
        self._memberships.setdefault((server, interface), set()).add(name)
        self._dirty_queue(q)
        self._refresh_agent(server, interface, t)

    def _on_member_removed(self, msg: HeaderLookup, server: str, t: float) -> None:
        name = msg.get("Queue") or ""
        interface = msg.get("Interface") or ""
        q = self._queue(server, name)
        q.members.pop(interface, None)
        self._memberships.get((server, interface), set()).discard(name)
        self._dirty_queue(q)
        self._refresh_agent(server, interface, t)

    # -- agents ------------------------------------------------------------------------------------------------
    def _agent(self, server: str, interface: str, name: str | None = None) -> AgentState:
        agent = self.agents.get((server, interface))
        if agent is None:
            agent = self.agents[(server, interface)] = AgentState(server, interface, name or interface)
        elif name:
            agent.name = name
        return agent

    def _refresh_agent(self, server: str, interface: str, t: float) -> None:
        """Derive one agent's state from its memberships (all queues of its server) and its current call."""
        queues = sorted(self._memberships.get((server, interface), ()))
        members = [m for m in (self.queues[(server, n)].members.get(interface) for n in queues) if m is not None]
        agent = self._agent(server, interface, members[0].name if members else None)
        if not members:
            state = AgentStatus.LOGGED_OUT
        elif any(m.in_call or m.status in _BUSY_STATUSES for m in members):
            state = AgentStatus.TALKING
        elif any(m.ringing for m in members):
            state = AgentStatus.RINGING
        elif agent.wrapup_until is not None and t < agent.wrapup_until:
            state = AgentStatus.WRAPUP
        elif all(m.paused for m in members):
            state = AgentStatus.PAUSED
        else:
            state = AgentStatus.IDLE
        paused_reason = next((m.paused_reason for m in members if m.paused and m.paused_reason), "")
        if state in (AgentStatus.IDLE, AgentStatus.PAUSED, AgentStatus.LOGGED_OUT):
            agent.current_call = None
        if state != agent.state or queues != agent.queues or paused_reason != agent.paused_reason:
            previous = agent.state
            if state != previous:
                agent.since = t
            agent.state, agent.queues, agent.paused_reason = state, queues, paused_reason
            self._send(AgentStateChanged(server, self._next(server), t, interface, agent.name, state, previous,
                                         agent.since, paused_reason, tuple(queues), agent.current_call))

    def _clear_ring(self, call: Call, interface: str, t: float, reason: str) -> None:
        queue = self._ringing.get(call.key, {}).pop(interface, None)
        if call.ringing_interface == interface:
            call.ringing_interface = None
        if queue is not None:
            q = self.queues.get((call.server, queue))
            member = q.members.get(interface) if q else None
            if member is not None:
                member.ringing = False
                self._dirty_queue(q)  # type: ignore[arg-type]
        agent = self.agents.get((call.server, interface))
        if agent is not None and agent.current_call == call.uniqueid and agent.state == AgentStatus.RINGING:
            agent.current_call = None
        self._refresh_agent(call.server, interface, t)
        if queue is not None:
            self._send(AgentRingStopped(call.server, self._next(call.server), t, call.uniqueid, queue, interface,
                                        reason))

    def _stop_ringing(self, call: Call, t: float, reason: str) -> None:
        for interface in list(self._ringing.get(call.key, {})):
            self._clear_ring(call, interface, t, reason)
        self._ringing.pop(call.key, None)

    def _drop_leg(self, leg: tuple[str, str], t: float) -> None:
        """An agent leg is gone; if its agent was still only ringing for it, the ringing is over."""
        call_key = self._legs.pop(leg, None)
        call = self.calls.get(call_key) if call_key else None
        if call is None:
            return
        for interface in list(self._ringing.get(call.key, {})):
            # Only legs we were told about are mapped; a leg hanging up while ringing = ring cancelled.
            if call.agent_uniqueid != leg[1]:
                agent = self.agents.get((call.server, interface))
                if agent is not None and agent.state == AgentStatus.RINGING:
                    self._clear_ring(call, interface, t, "ended")

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def _on_fully_booted(self, msg: HeaderLookup, server: str, t: float) -> None:
        uptime = _float(msg.get("Uptime"), -1.0)
        previous = self._boot.get(server)
        restarted = server in self._shutdown_seen
        if previous is not None and uptime >= 0:
            prev_uptime, prev_t = previous
            restarted = restarted or uptime + _RESTART_SLACK < prev_uptime + (t - prev_t)
        self._boot[server] = (uptime, t)
        self._shutdown_seen.discard(server)
        if restarted:
            self._restarted.add(server)
            self._server_restarted(server, t)
        self.resync_pending.add(server)
        if self.on_resync_needed is not None:
            self.on_resync_needed(server)

    def _on_shutdown(self, msg: HeaderLookup, server: str, t: float) -> None:
        self._shutdown_seen.add(server)

    def _server_restarted(self, server: str, t: float) -> None:
        # Nothing survives an Asterisk restart: every channel, waiting caller and ring is gone.
        for call in [c for c in self.calls.values() if c.server == server]:
            self._finalise(call, t, Outcome.LOST)
        for leg in [k for k in self._legs if k[0] == server]:
            self._legs.pop(leg, None)
        for (srv, _name), q in self.queues.items():
            if srv == server:
                q.callers = []
                for m in q.members.values():
                    m.in_call = m.ringing = False
                self._dirty_queue(q)
        for (srv, interface), agent in self.agents.items():
            if srv == server:
                agent.current_call = None
                agent.wrapup_until = None
                self._refresh_agent(server, interface, t)

    def _on_list_item(self, msg: HeaderLookup, server: str, t: float) -> None:
        self._lists.setdefault((server, msg.get("ActionID") or ""), []).append(msg)

    def _on_queue_status_complete(self, msg: HeaderLookup, server: str, t: float) -> None:
        self.resync_queues(server, self._lists.pop((server, msg.get("ActionID") or ""), []), t)

    def _on_core_show_channels_complete(self, msg: HeaderLookup, server: str, t: float) -> None:
        self.resync_channels(server, self._lists.pop((server, msg.get("ActionID") or ""), []), t)
        self._resynced(server, t)

    def _finalise(self, call: Call, t: float, override: str | None = None) -> None:
        """The call's channel is gone: settle its outcome and durations, emit its record, forget it."""
        self.calls.pop(call.key, None)
        self._stop_ringing(call, t, "ended" if override == Outcome.LOST else "caller_left")
        if call.queue is not None:
            q = self.queues.get((call.server, call.queue))
            if q is not None and self._take_waiting(q, call.uniqueid):
                self._dirty_queue(q)
        if call.state == CallState.TALKING and call.agent_interface:
            # No AgentComplete (lost in a restart/crash): free the agent ourselves.
            q = self.queues.get((call.server, call.queue or ""))
            member = q.members.get(call.agent_interface) if q else None
            if member is not None:
                member.in_call = False
            self._end_agent_call(call.server, call.agent_interface, t, 0)
        for leg in [k for k, v in self._legs.items() if v == call.key]:
            self._legs.pop(leg, None)
        if call.outcome == Outcome.ANSWERED or (call.direction != "inbound" and call.answered_at is not None):
            call.outcome = Outcome.ANSWERED
        elif call.outcome is not None:
            pass  # abandoned, or an originate failure: already settled by its own event
        elif override is not None:
            call.outcome = override
        elif call.queue_joined_at is not None:
            call.outcome = Outcome.QUEUE_TIMEOUT
        elif call.direction != "inbound":
            call.outcome = Outcome.NO_ANSWER
        else:
            call.outcome = Outcome.IVR_HANGUP
        if call.answered_at is not None and call.talk_seconds is None:
            call.talk_seconds = t - call.answered_at
        if call.queue_joined_at is not None and call.wait_seconds is None:
            call.wait_seconds = t - call.queue_joined_at
        call.ended_at = t
        if not call.up and not call.involved:
            self.ghosts_dropped += 1  # a channel that never came up and the contact centre never touched
            self._dirty_call(call)  # gone from the live model: mirrors drop it
            return
        self._emit(call, t)

    def _emit(self, call: Call, t: float) -> None:
        call.ended_at = t
        call.state = CallState.ENDED
        call.position = None
        self.records_emitted += 1
        self._send(CallEnded(call.server, self._next(call.server), t, call.uniqueid, call.outcome or Outcome.FAILED,
                             call.queue, call.agent_interface, call.wait_seconds, call.talk_seconds,
                             call_record(call), {name: getattr(call, name) for name in _CALL_FIELDS}))
