"""Which contact a campaign dials next — pure logic, no I/O.

A campaign's open targets live in two heaps: *ready* ones ordered by (tier rank when the campaign puts higher
tiers first, then the campaign's own order — due date, original arrival — then id), and *waiting* ones ordered by
the moment they may be tried again (retry spacing, calling window). :meth:`TargetQueue.next` moves what has
become due from waiting to ready and pops the first ready target that passes the caller's checks, in O(log n)
per target looked at, so picking from a million targets costs microseconds.

A customer is in at most one active attempt across all campaigns: ``busy`` (the customers being dialled anywhere,
e.g. the Redis customer leases) is checked, and a busy customer's target waits ``busy_retry`` seconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from routing.value import TIERS

__all__ = ["TIER_RANK", "Target", "TargetQueue", "tier_rank"]

# Higher value first (routing.value.TIERS is ordered best first); unknown tiers after all known ones.
TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


def tier_rank(tier: str | None) -> int:
    return TIER_RANK.get(tier or "", len(TIER_RANK))


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    customer_id: int | None
    tier: str | None = None
    order: float = 0.0  # the campaign's own order: due date or original arrival (epoch seconds)
    not_before: float = 0.0  # epoch seconds: not to be tried earlier (spacing, window)


class TargetQueue:
    """Open targets of one campaign; see the module docstring."""

    def __init__(self, targets: Iterable[Target] = (), *, tiers_first: bool = False, busy_retry: float = 60.0,
                 now: float = 0.0):
        self.tiers_first = tiers_first
        self.busy_retry = busy_retry
        self._ready: list[tuple[int, float, int, Target]] = []
        self._waiting: list[tuple[float, int, Target]] = []
        for target in targets:
            if target.not_before <= now:
                self._ready.append(self._key(target))
            else:
                self._waiting.append((target.not_before, target.id, target))
        # Bulk load: heapify once (O(n)) instead of n pushes.
        heapq.heapify(self._ready)
        heapq.heapify(self._waiting)

    def __len__(self) -> int:
        return len(self._ready) + len(self._waiting)

    def _key(self, target: Target) -> tuple[int, float, int, Target]:
        return (tier_rank(target.tier) if self.tiers_first else 0, target.order, target.id, target)

    def add(self, target: Target) -> None:
        heapq.heappush(self._waiting, (target.not_before, target.id, target))

    def defer(self, target: Target, until: float) -> None:
        """Put a target back, not to be tried before ``until``."""
        self.add(Target(target.id, target.customer_id, target.tier, target.order, until))

    def _promote(self, now: float) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            _, _, target = heapq.heappop(self._waiting)
            heapq.heappush(self._ready, self._key(target))

    def next_due(self) -> float | None:
        """When something is (or will be) ready: now if ready ones exist, else the first waiting moment."""
        if self._ready:
            return 0.0
        return self._waiting[0][0] if self._waiting else None

    def next(self, now: float, busy: Container[int] = frozenset(),
             check: Callable[[Target], float | bool | None] | None = None, *, budget: int = 64) -> Target | None:
        """Pop the first ready target whose customer is not busy and that ``check`` accepts.

        ``check(target)`` returns True (dial it), a float (not before that epoch second: deferred) or
        False/None (drop it for good — DNC, no consent, attempts used up). At most ``budget`` targets are looked
        at per call so one call stays bounded; None: nothing to dial now.
        """
        self._promote(now)
        for _ in range(budget):
            if not self._ready:
                return None
            target = heapq.heappop(self._ready)[3]
            if target.customer_id is not None and target.customer_id in busy:
                self.defer(target, now + self.busy_retry)
                continue
            verdict = True if check is None else check(target)
            if verdict is True:
                return target
            if isinstance(verdict, float) and not isinstance(verdict, bool):
                self.defer(target, max(verdict, now))
            # else: dropped for good
        return None
