"""Where the tracker's live model is mirrored.

The tracker owns the authoritative in-memory model of this node and tells its store what changed, one object at
a time. A store must never block the caller: :class:`MemoryStore` does nothing (the tracker's dicts *are* the
single-node store), :class:`ccserver.state.redis_store.RedisStateStore` only marks keys dirty and writes them
later in one pipelined round trip.
"""

from __future__ import annotations

from ccserver.state.model import AgentState, Call, QueueState

__all__ = ["MemoryStore", "StateStore"]


class StateStore:
    """Change notifications from the tracker. Every method must be cheap and non-blocking."""

    def call_changed(self, call: Call) -> None:
        """A live call changed (or appeared)."""

    def call_ended(self, call: Call) -> None:
        """A call was finalised and left the live model."""

    def queue_changed(self, queue: QueueState) -> None:
        """Counters, waiting callers or members of a queue changed."""

    def agent_changed(self, agent: AgentState) -> None:
        """An agent's state changed."""


class MemoryStore(StateStore):
    """Single-node storage: the tracker's own dicts, read through the tracker's query API. Nothing to mirror."""
