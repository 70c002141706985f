"""Live call / queue / agent state fed by AMI, its Redis mirror, and call records.

- :mod:`ccserver.state.model` — plain-data records (Call, QueueState, Member, AgentState)
- :mod:`ccserver.state.tracker` — StateTracker: AMI events in, model + call records out; EVENTS to subscribe to
- :mod:`ccserver.state.query` — pure snapshot / queue arithmetic shared by tracker and readers
- :mod:`ccserver.state.store` — the store interface; MemoryStore for a single node
- :mod:`ccserver.state.redis_store` — RedisStateStore (coalesced async mirror) and RedisStateReader
- :mod:`ccserver.state.records` — call_record(), RecordBatcher (write-behind), sql_sink()
"""

from __future__ import annotations

from ccserver.state.model import AgentState, AgentStatus, Call, CallState, Member, Outcome, QueueState
from ccserver.state.records import RecordBatcher, call_record, sql_sink
from ccserver.state.store import MemoryStore, StateStore
from ccserver.state.tracker import EVENTS, LIST_EVENTS, StateTracker, is_tracked_variable

__all__ = [
    "EVENTS",
    "LIST_EVENTS",
    "AgentState",
    "AgentStatus",
    "Call",
    "CallState",
    "Member",
    "MemoryStore",
    "Outcome",
    "QueueState",
    "RecordBatcher",
    "StateStore",
    "StateTracker",
    "call_record",
    "is_tracked_variable",
    "sql_sink",
]
