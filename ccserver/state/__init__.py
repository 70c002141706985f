"""Live call / queue / agent state fed by AMI, its Redis mirror, and call records.

- :mod:`ccserver.state.model` — plain-data records (Call, QueueState, Member, AgentState)
- :mod:`ccserver.state.tracker` — StateTracker: AMI events in, the live model and typed call events out (published
  on the hub, :mod:`ccserver.events`); EVENTS to subscribe to
- :mod:`ccserver.state.query` — pure snapshot / queue arithmetic shared by tracker and readers
- :mod:`ccserver.state.redis_store` — RedisMirror (a hub subscriber: coalesced async mirror) and RedisStateReader
- :mod:`ccserver.state.records` — call_record(), RecordBatcher (write-behind), sql_sink()
"""

from __future__ import annotations

from ccserver.state.model import AgentState, AgentStatus, Call, CallState, Member, Outcome, QueueState
from ccserver.state.records import RecordBatcher, call_record, sql_sink
from ccserver.state.tracker import EVENTS, LIST_EVENTS, StateTracker, is_tracked_variable

__all__ = [
    "EVENTS",
    "LIST_EVENTS",
    "AgentState",
    "AgentStatus",
    "Call",
    "CallState",
    "Member",
    "Outcome",
    "QueueState",
    "RecordBatcher",
    "StateTracker",
    "call_record",
    "is_tracked_variable",
    "sql_sink",
]
