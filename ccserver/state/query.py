"""Pure read-side computations over the model: queue snapshots and queue arithmetic.

Shared by the in-process tracker and :class:`RedisStateReader`, so both answer with the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ccserver.state.model import QueueState, WaitingCaller

__all__ = ["callers_ahead", "ordered_callers", "queue_snapshot"]


def ordered_callers(callers: Iterable[WaitingCaller]) -> list[WaitingCaller]:
    """Asterisk's queue order: higher priority first, then first come first served."""
    return sorted(callers, key=lambda c: (-c.priority, c.joined_at))


def callers_ahead(callers: Iterable[WaitingCaller], priority: int, joined_at: float) -> int:
    """How many waiting callers a caller with this priority and join time would have in front of them."""
    return sum(1 for c in callers if c.priority > priority or (c.priority == priority and c.joined_at < joined_at))


def queue_snapshot(queue: QueueState, now: float) -> dict:
    """What a wallboard or the router needs about one queue, as plain data."""
    waiting: list[dict[str, Any]] = [
        {
            "uniqueid": c.uniqueid,
            "priority": c.priority,
            "joined_at": c.joined_at,
            "wait": max(0.0, now - c.joined_at),
            "caller_number": c.caller_number,
        }
        for c in queue.callers
    ]
    members = queue.members.values()
    logged_in = [m for m in members if m.logged_in]
    completed = queue.completed
    answered_total = completed + queue.abandoned
    return {
        "server": queue.server,
        "queue": queue.name,
        "strategy": queue.strategy,
        "waiting": waiting,
        "callers": len(waiting),
        "longest_wait": max((w["wait"] for w in waiting), default=0.0),
        "members": len(queue.members),
        "logged_in": len(logged_in),
        "free": sum(1 for m in logged_in if m.available),
        "paused": sum(1 for m in logged_in if m.paused),
        "in_call": sum(1 for m in logged_in if m.in_call),
        "ringing": sum(1 for m in logged_in if m.ringing),
        "completed": completed,
        "abandoned": queue.abandoned,
        "holdtime": queue.holdtime,
        "talktime": queue.talktime,
        "service_level": queue.service_level,
        "completed_in_sl": queue.completed_in_sl,
        "abandoned_in_sl": queue.abandoned_in_sl,
        # Asterisk's ServicelevelPerf / ServicelevelPerf2, in percent.
        "service_level_perf": round(100.0 * queue.completed_in_sl / completed, 1) if completed else 0.0,
        "service_level_perf2": (
            round(100.0 * (queue.completed_in_sl + queue.abandoned_in_sl) / answered_total, 1)
            if answered_total
            else 0.0
        ),
    }
