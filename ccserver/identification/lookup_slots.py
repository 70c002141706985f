"""At most ``size`` customer lookups on SQL at once; the calls beyond wait their turn in a bounded FIFO.

Why a queue and not a refusal: a burst of new callers (50 unknown numbers at once, each a prospect to create)
found the 8 slots taken, and 42 were routed as "directory busy" without a lookup although each could have been
identified well within the routing deadline. Now a call waits for a slot as long as its deadline allows. The
routing service takes a call that is still waiting at its deadline out of the queue (cancelling its Deferred), so
no lookup is started for a call already routed. The queue is bounded (``max_waiting``): with a hung database and
a flood of calls, the calls beyond it are turned away at once instead of piling up.

Plain Deferreds, no clock: the deadline is the routing service's (one timer per call, as before).
"""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import Deferred

__all__ = ["DirectoryBusy", "LookupSlots"]


class DirectoryBusy(RuntimeError):
    """No lookup slot for this call: every slot busy and the wait queue full."""


class LookupSlots:
    def __init__(self, size: int, max_waiting: int) -> None:
        if size < 1 or max_waiting < 0:
            raise ValueError("lookup slots: size must be >= 1 and max_waiting >= 0")
        self.size = size
        self.max_waiting = max_waiting
        self.busy = 0
        self._waiting: deque[Deferred[None]] = deque()
        self._returned = 0  # slots given back and not yet handed on
        self._handing_over = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def take(self) -> Deferred[None] | None:
        """None: a slot is the caller's now. A Deferred: queued; it fires once a slot is handed over (the caller
        then holds it), and ``cancel()`` takes the call out of the queue. Raises DirectoryBusy when the queue is
        full. Whoever got a slot gives it back with :meth:`give_back`, once."""
        if self.busy < self.size:
            self.busy += 1
            return None
        if len(self._waiting) >= self.max_waiting:
            raise DirectoryBusy(f"{self.busy} directory lookups running and {len(self._waiting)} waiting")
        turn: Deferred[None] = Deferred(canceller=self._leave)
        self._waiting.append(turn)
        return turn

    def take_now(self) -> bool:
        """A slot now, if one is free (True: the caller's, to give back), else False and nothing queued."""
        if self.busy < self.size:
            self.busy += 1
            return True
        return False

    def give_back(self) -> None:
        """A slot is free: it goes to the longest-waiting call, else back to the pool. A lookup that finishes
        at once inside the hand-over gives its slot back here too: those are handed on in this loop, not by
        recursion (a long queue of instant lookups would otherwise nest one call stack per waiter)."""
        self._returned += 1
        if self._handing_over:
            return
        self._handing_over = True
        try:
            while self._returned:
                self._returned -= 1
                if self._waiting:
                    self._waiting.popleft().callback(None)  # busy unchanged: the slot changes hands
                else:
                    self.busy -= 1
        finally:
            self._handing_over = False

    def _leave(self, turn: Deferred[None]) -> None:
        try:
            self._waiting.remove(turn)  # O(queue length), which is bounded; only at a deadline
        except ValueError:
            pass
