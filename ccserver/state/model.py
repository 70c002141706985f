"""Plain-data records of live contact-centre state: calls, queues (waiting callers, members, counters), agents.

No I/O and no AMI knowledge here: the tracker fills these in, stores mirror them, readers rebuild them.
Every record carries the Asterisk ``server`` it belongs to, so keys never collide between servers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = [
    "AgentState",
    "AgentStatus",
    "Call",
    "CallState",
    "DeviceStatus",
    "Member",
    "Outcome",
    "QueueState",
    "WaitingCaller",
    "running_average",
    "to_dict",
]

DEFAULT_SERVER = "default"


class CallState:
    IVR = "ivr"  # in the dialplan / IVR, not (yet) in a queue
    QUEUED = "queued"  # waiting in a queue, no member ringing
    RINGING = "ringing"  # waiting in a queue while a member's phone rings
    TALKING = "talking"
    ENDED = "ended"


class Outcome:
    """Call outcomes, in the vocabulary of the ``calls`` table (ccserver.db.models.CALL_OUTCOMES)."""

    ANSWERED = "answered"  # an agent (or, outbound, the customer) answered
    ABANDONED = "abandoned"  # caller hung up while waiting in a queue
    IVR_HANGUP = "ivr_hangup"  # hung up before ever reaching a queue
    NO_ANSWER = "no_answer"  # outbound: ring timeout; inbound: left the queue unanswered (timeout, leavewhenempty)
    QUEUE_TIMEOUT = NO_ANSWER
    BUSY = "busy"
    FAILED = "failed"  # could not be placed (bad number/context, congestion, channel driver failure)
    CONGESTION = FAILED
    LOST = FAILED  # vanished without a hangup event (Asterisk restarted or crashed), found by resync


class DeviceStatus:
    """AST_DEVICE_* codes as sent in QueueMember*/Status headers."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


@dataclass(slots=True)
class Call:
    """One customer call, keyed by (server, uniqueid) of the channel that carries the queue events."""

    server: str
    uniqueid: str
    linkedid: str = ""
    channel: str = ""
    direction: str = "inbound"
    caller_number: str | None = None
    caller_name: str | None = None
    dialed_number: str | None = None
    customer_id: str | None = None
    decision_id: str | None = None
    tier: str | None = None
    campaign_id: str | None = None
    queue: str | None = None
    priority: int = 0
    position: int | None = None
    state: str = CallState.IVR
    ringing_interface: str | None = None
    agent_interface: str | None = None
    agent_name: str | None = None
    agent_uniqueid: str | None = None  # the agent's leg (DestUniqueid)
    entered_at: float = 0.0
    queue_joined_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    outcome: str | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    ring_seconds: float = 0.0  # summed over every member rung for this call
    ring_attempts: int = 0
    transfers: int = 0  # successful blind / attended transfers by the agent
    holdtime: int | None = None  # Asterisk's own integer HoldTime at connect/abandon
    hangup_cause: int | None = None
    originate_reason: int | None = None
    up: bool = False  # channel reached Up at least once
    involved: bool = False  # touched by the contact centre (CC_ variable, queue, our originate)
    dialed_frozen: bool = False  # dialed_number no longer follows Exten
    amd: str | None = None  # AMDSTATUS from the campaign dialplan (UserEvent CcAmd): MACHINE, HUMAN, NOTSURE, HANGUP

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.uniqueid)


@dataclass(slots=True)
class WaitingCaller:
    uniqueid: str
    priority: int
    joined_at: float
    caller_number: str | None = None
    caller_name: str | None = None


@dataclass(slots=True)
class Member:
    interface: str
    name: str = ""
    state_interface: str = ""
    membership: str = "static"
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    ringing: bool = False
    status: int = DeviceStatus.UNKNOWN
    calls_taken: int = 0
    last_call: int = 0
    wrapuptime: int = 0
    ringinuse: bool = False

    @property
    def logged_in(self) -> bool:
        # QueueSummary's LoggedIn: every member whose device is neither invalid nor unavailable.
        return self.status not in (DeviceStatus.INVALID, DeviceStatus.UNAVAILABLE)

    @property
    def available(self) -> bool:
        # QueueSummary's Available: idle device, not paused; we also exclude members we know are busy.
        return (
            self.status in (DeviceStatus.NOT_INUSE, DeviceStatus.UNKNOWN)
            and not self.paused
            and not self.in_call
            and not self.ringing
        )


def running_average(old: int, sample: int, first: bool) -> int:
    """app_queue's exponential average: the first sample as is, then (3*old + sample) >> 2 in integers."""
    if first:
        return int(sample)
    return ((old << 2) - old + int(sample)) >> 2


@dataclass(slots=True)
class QueueState:
    server: str
    name: str
    strategy: str = ""
    max_callers: int = 0
    weight: int = 0
    callers: list[WaitingCaller] = field(default_factory=list)  # in Asterisk's order
    members: dict[str, Member] = field(default_factory=dict)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0  # running averages, integer seconds, as app_queue computes them
    talktime: int = 0
    service_level: int = 0  # seconds; Asterisk's `servicelevel` for the queue
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.name)

    def record_connect(self, holdtime: int) -> None:
        # recalc_holdtime(): "first" while the queue has neither completed nor abandoned calls.
        self.holdtime = running_average(self.holdtime, holdtime, self.completed + self.abandoned == 0)

    def record_complete(self, talktime: int, in_service_level: bool) -> None:
        self.completed += 1
        if in_service_level:
            self.completed_in_sl += 1
        self.talktime = running_average(self.talktime, talktime, self.completed == 1)

    def record_abandon(self, in_service_level: bool) -> None:
        self.abandoned += 1
        if in_service_level:
            self.abandoned_in_sl += 1


class AgentStatus:
    IDLE = "idle"
    RINGING = "ringing"
    TALKING = "talking"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"


@dataclass(slots=True)
class AgentState:
    server: str
    interface: str
    name: str = ""
    state: str = AgentStatus.LOGGED_OUT
    since: float = 0.0
    current_call: str | None = None  # the caller's uniqueid while ringing/talking
    paused_reason: str = ""
    queues: list[str] = field(default_factory=list)
    wrapup_until: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.server, self.interface)


def to_dict(record: object) -> dict:
    """A deep plain-dict copy of any model record (for JSON, Redis, comparisons)."""
    return asdict(record)  # type: ignore[call-overload]


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))
