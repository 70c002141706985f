"""The live picture routing decides on, as plain data, and the per-caller estimated wait.

The caller (ccserver's live state model, fed by AMI and kept in Redis) fills a :class:`LiveView` per call:
one :class:`QueueView` per queue it knows (agents' personal queues included: a member there is a signed-in
agent, on whatever phone they signed in from). Nothing here reads Redis; a view that is missing or stale is the
caller's business. Unless the view is ``complete``, routing treats **a queue absent from the view as unknown**
(trusts the config, estimates nothing) — never as empty, so a Redis or AMI outage does not overflow every call.
A ``complete`` view (built after a full QueueStatus resync) lists every queue Asterisk has: a queue absent from
it does not exist, and no caller is sent there.

EWT model (:func:`estimate_wait`), priority-aware like app_queue, which serves the highest ``QUEUE_PRIO``
first and FIFO within equal priority, so a new caller at priority *p* waits behind every waiting caller with
priority ≥ *p*::

    ahead   = waiting callers with priority ≥ p            (ghost entries older than stale_seconds ignored)
    staffed = logged_in − paused                           (members that can take calls)
    staffed == 0                → None  (no one to answer: infinite; routing overflows or offers a callback)
    ahead < free                → 0     (a free member takes the call at once)
    otherwise                   → (ahead − free + 1) × AHT / staffed

i.e. the caller is served after ``ahead − free + 1`` more calls complete, and ``staffed`` members complete one
call every ``AHT / staffed`` seconds on average. AHT is the queue's average handle time (talk + wrap-up); when
the queue has no history yet (0), ``default_aht`` (180 s) is used. The model ignores abandonment (which
shortens real waits) and members shared between queues (which lengthens them); it is a fair, cheap estimate
for deciding "offer a callback?", not a promise read to the caller to the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["WaitingCaller", "QueueView", "LiveView", "estimate_wait", "DEFAULT_AHT_SECONDS"]

DEFAULT_AHT_SECONDS: Final = 180.0
STALE_SECONDS: Final = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    """A caller waiting in a queue: ``priority`` is their QUEUE_PRIO, ``joined_at`` epoch seconds."""

    priority: int
    joined_at: float


@dataclass(frozen=True, slots=True)
class QueueView:
    """One queue as the live state model sees it.

    ``name``: app_queue queue name. ``waiting``: callers in the queue now (any order).
    ``logged_in``: members logged in (including paused and busy ones). ``free``: logged in, not paused, not in
    a call, not ringing. ``paused``: logged-in members that are paused.
    ``free_penalties``: the penalty of each free member (in this queue), or None when not tracked; used to
    widen ``CC_MAX_PENALTY`` when no free member is within the caller's band.
    ``avg_handle_seconds``: recent average handle time (talk + wrap-up; 0 = no history).
    ``avg_talk_seconds``: recent average talk time (informational; the wallboard shows it).
    ``free_interfaces``: the interfaces of the free members (a personal queue's one member: the phone its agent
    signed in from).
    """

    name: str
    waiting: tuple[WaitingCaller, ...] = ()
    logged_in: int = 0
    free: int = 0
    paused: int = 0
    free_penalties: tuple[int, ...] | None = None
    avg_handle_seconds: float = 0.0
    avg_talk_seconds: float = 0.0
    free_interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveView:
    """Queues by name. ``complete``: the view lists every queue Asterisk has (a queue absent from it does not
    exist); otherwise it may be partial and an absent queue means "unknown"."""

    queues: Mapping[str, QueueView] = field(default_factory=dict)
    complete: bool = False


def estimate_wait(queue: QueueView, priority: int, now: float, *, default_aht: float = DEFAULT_AHT_SECONDS,
                  stale_seconds: float = STALE_SECONDS) -> float | None:
    """Estimated wait in seconds for a new caller joining ``queue`` at ``priority`` at epoch time ``now``;
    None when nobody can answer (no staffed member). See the module docstring for the model."""
    staffed = queue.logged_in - queue.paused
    if staffed <= 0:
        return None
    oldest = now - stale_seconds
    ahead = 0
    for caller in queue.waiting:
        if caller.priority >= priority and caller.joined_at >= oldest:
            ahead += 1
    free = max(0, queue.free)
    if ahead < free:
        return 0.0
    aht = queue.avg_handle_seconds if queue.avg_handle_seconds > 0 else default_aht
    return (ahead - free + 1) * aht / staffed
