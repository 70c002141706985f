"""The call events: what happened to calls, agents and queues, as typed, immutable records.

The state tracker (fed by AMI) publishes them on the :class:`~ccserver.events.hub.EventHub`; features subscribe
(the Redis mirror, call records, screen pop, the wallboard, tickets, the dialer). Every event carries the Asterisk
``server`` it is about, a per-server ``seq`` (1, 2, 3 … in publishing order on this node) and ``at``, the
event's time (epoch seconds: Asterisk's ``Timestamp`` when it sends one, else the arrival time).

``uniqueid`` always names the *caller's* channel (the call), never the agent's leg; ``interface`` names the
agent's phone (``PJSIP/8001``) as app_queue knows the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AgentRingStopped", "AgentRinging", "AgentStateChanged", "CallAbandoned", "CallAnswered", "CallEnded",
    "CallEvent", "CallOffered", "CallTransferred", "CallUpdated", "QueueChanged", "Resynced", "RING_STOP_REASONS",
    "TicketSlaAlarm",
]

# Why an agent's phone stopped ringing for a call.
RING_STOP_REASONS = ("no_answer", "answered_elsewhere", "caller_left", "ended")


@dataclass(frozen=True, slots=True)
class CallEvent:
    server: str
    seq: int
    at: float


@dataclass(frozen=True, slots=True)
class CallOffered(CallEvent):
    """The caller joined a queue (QueueCallerJoin)."""

    uniqueid: str
    linkedid: str
    queue: str
    position: int
    priority: int
    caller_number: str | None
    caller_name: str | None
    dialed: str | None
    decision_id: str | None
    customer_id: str | None
    tier: str | None


@dataclass(frozen=True, slots=True)
class AgentRinging(CallEvent):
    """A member's phone rings for the call (AgentCalled)."""

    uniqueid: str
    linkedid: str
    queue: str
    interface: str
    member_name: str
    agent_uniqueid: str | None
    decision_id: str | None
    customer_id: str | None
    caller_number: str | None
    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class AgentRingStopped(CallEvent):
    """A member's phone stopped ringing without them answering. ``reason``: ``no_answer`` (AgentRingNoAnswer),
    ``answered_elsewhere`` (another member won a ringall), ``caller_left`` (the caller hung up or left the queue),
    ``ended`` (the ring ended some other way: the agent's leg hung up, Asterisk restarted)."""

    uniqueid: str
    queue: str
    interface: str
    reason: str


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    """A member answered (AgentConnect). ``wait_seconds``: from joining the queue to the answer."""

    uniqueid: str
    linkedid: str
    queue: str
    interface: str
    member_name: str
    wait_seconds: float | None
    holdtime: int
    decision_id: str | None
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class CallTransferred(CallEvent):
    """The agent transferred the call (BlindTransfer / AttendedTransfer). ``kind``: ``blind`` or ``attended``;
    ``target``: the extension (``8002@agents``) or the channel it went to; ``interface``: the transferring agent."""

    uniqueid: str
    kind: str
    interface: str | None
    target: str
    result: str


@dataclass(frozen=True, slots=True)
class CallAbandoned(CallEvent):
    """The caller hung up while waiting in the queue (QueueCallerAbandon)."""

    uniqueid: str
    queue: str
    position: int
    original_position: int
    wait_seconds: float | None
    holdtime: int
    caller_number: str | None
    decision_id: str | None
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class CallEnded(CallEvent):
    """The call's channel is gone. ``record``: the call record (shape of ``calls``; see state/records.py);
    ``final``: the call's last state (every field of ccserver.state.model.Call). Both are plain dicts, immutable by
    convention: every subscriber gets the same ones."""

    uniqueid: str
    outcome: str
    queue: str | None
    interface: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    record: Any
    final: Any


@dataclass(frozen=True, slots=True)
class AgentStateChanged(CallEvent):
    """An agent's derived state changed: ``state`` one of idle, ringing, talking, wrapup, paused, logged_out
    (signed out of every queue), with the previous one, the pause reason, the queues and the call (uniqueid)."""

    interface: str
    name: str
    state: str
    previous: str
    since: float
    paused_reason: str
    queues: tuple[str, ...]
    call: str | None


@dataclass(frozen=True, slots=True)
class CallUpdated(CallEvent):
    """Something else about a live call changed (state, caller ID, a routing variable …), or it left the live
    model without being a call (a stray channel). Mirrors re-read it; most features need the events above."""

    uniqueid: str


@dataclass(frozen=True, slots=True)
class QueueChanged(CallEvent):
    """A queue's waiting callers, members or counters changed. ``waiting``: callers now; ``members``: members now."""

    queue: str
    waiting: int
    members: int


@dataclass(frozen=True, slots=True)
class Resynced(CallEvent):
    """The tracker rebuilt ``server``'s state from Asterisk's own answers (after FullyBooted: QueueStatus and
    CoreShowChannels), or from the shared mirror. ``calls``, ``queues``, ``agents``: the authoritative snapshot,
    as plain dicts (see ccserver.state.model.to_dict). ``restarted``: Asterisk itself restarted before it."""

    calls: tuple[Any, ...]
    queues: tuple[Any, ...]
    agents: tuple[Any, ...]
    restarted: bool


@dataclass(frozen=True, slots=True)
class TicketSlaAlarm(CallEvent):
    """A ticket's SLA clock is about to run out (``stage`` ``warning``: ``tickets.sla_warning_minutes`` before) or
    has (``breach``), raised once per due time by the SLA alarm job (ccserver/tickets/alarms.py) on the node that
    ran it. ``clock``: ``first_response`` or ``resolution``; ``due_at``: epoch seconds. ``server`` is ``tickets``
    (not an Asterisk), ``seq`` counts the alarms this node published."""

    ticket_id: int
    kind: str
    severity: str
    clock: str
    stage: str
    due_at: float
    store_id: int | None
    department: str | None
    assignee_id: int | None
    customer_id: int | None
    subject: str
