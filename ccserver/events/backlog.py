"""Readers first: while an Asterisk connection has more of a burst to read, the hub's subscribers wait their turn.

A burst — a reconnect's resync, a busy minute, a replay — reaches ccserver faster than it can be handled. The
tracker must keep up with it (routing reads the tracker; Asterisk's manager gives up on a client that leaves its
writes unread for ``writetimeout``, 100 ms by default), while the subscribers' work (a pop's customer card, the
Redis mirror, call records, KPI counts, tickets for abandoned calls) only needs to be done soon. So an AMI reader
that ends a turn with input still unread (the rest of a big read, or bytes already waiting in the socket) reports
itself :meth:`behind`; the hub's subscriber tasks then *park* instead of handling what was published, and are let
go all at once when every reader has :meth:`caught_up` and stayed so for ``quiet`` seconds — one delivery of the whole
batch instead of one per slice. (A socket read empty is not yet the end of a burst: the sender may be a moment from
writing its next piece, or from answering the actions the burst made ccserver send.)

Nothing waits for long and nothing is lost: a hold ends after ``hold`` seconds however long the burst lasts (the
subscribers then run once, and wait again), a subscriber whose queue is half full goes on at once (before it would
have to drop events), and a connection that closes counts as caught up. An Asterisk's everyday trickle holds
nothing: a reader is behind only with a slice of a read left or ``BEHIND_BYTES`` waiting in its socket (a busy
hour's next event, written while the last was handled, is not a backlog). While the hub stops, nothing parks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from ccserver.clock import Clock, LoopClock

HOLD_SECONDS = 0.5  # the longest a burst delays the subscribers: a screen pop still shows while the phone rings
QUIET_SECONDS = 0.01  # every reader caught up this long: the burst is over
BEHIND_BYTES = 64 * 1024  # unread in a reader's socket: a backlog (a busy hour sends ~300 KB/s in small writes)


class ReadBacklog:
    __slots__ = ("hold", "quiet", "clock", "_behind", "_since", "_parked", "_timer", "_settling", "_open")

    def __init__(self, hold: float = HOLD_SECONDS, quiet: float = QUIET_SECONDS, clock: Clock | None = None) -> None:
        if hold <= 0 or quiet < 0:
            raise ValueError("hold must be positive and quiet not negative")
        self.hold = hold
        self.quiet = quiet
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._behind: set[Hashable] = set()  # the readers with input still unread
        self._since = 0.0  # clock.monotonic() when the current hold began
        self._parked: list[asyncio.Future[None]] = []
        self._timer: Any = None  # ends the hold ``hold`` seconds after it began
        self._settling: Any = None  # every reader caught up: ends the hold after ``quiet`` seconds
        self._open = False  # the hub is stopping: nothing parks

    @property
    def holding(self) -> bool:
        """Whether a burst is on (a subscriber that wakes now parks)."""
        return not self._open and (bool(self._behind) or self._settling is not None)

    @property
    def parked(self) -> int:
        return sum(1 for f in self._parked if not f.done())

    def behind(self, reader: Hashable) -> None:
        """``reader`` ended its turn with input left to read (called at every turn of a burst: kept cheap)."""
        behind = self._behind
        if not behind:
            if self._settling is not None:  # more of the same burst
                self._settling.cancel()
                self._settling = None
            else:
                self._since = self.clock.monotonic()
        behind.add(reader)

    def caught_up(self, reader: Hashable) -> None:
        """``reader`` has read everything sent so far (or its connection closed)."""
        behind = self._behind
        if behind:
            behind.discard(reader)
            if not behind and self.parked:  # (a closed subscription leaves its future cancelled)
                self._settling = self.clock.call_later(self.quiet, self._release)

    def park(self) -> asyncio.Future[None]:
        """A future resolved when the burst is over or the hold runs out (call from the running loop, while
        :attr:`holding`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append(future)
        if self._timer is None:
            delay = self._since + self.hold - self.clock.monotonic()
            self._timer = self.clock.call_later(max(0.0, delay), self._held_long)
        return future

    def open(self) -> None:
        """Let the parked subscribers go and park nobody until :meth:`close` (the hub is stopping)."""
        self._open = True
        self._release()

    def close(self) -> None:
        """Hold subscribers behind readers again (the hub starts)."""
        self._open = False

    def _held_long(self) -> None:
        self._timer = None
        self._since = self.clock.monotonic()  # the subscribers run once; the next hold starts from now
        self._release()

    def _release(self) -> None:
        for handle in (self._timer, self._settling):
            if handle is not None:
                handle.cancel()
        self._timer = self._settling = None
        parked, self._parked = self._parked, []
        for future in parked:
            if not future.done():
                future.set_result(None)
