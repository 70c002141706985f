"""The clock that asyncio application code reads and sleeps on — injectable, so timing tests never sleep.

Production code takes a :class:`Clock` (default :class:`LoopClock`: the loop's clocks and ``asyncio.sleep``); a
test gives a :class:`ManualClock` and moves time with ``await clock.advance(seconds)``, which wakes every sleeper
and fires every timer due by then, in time order, letting each one run before the next. Twisted protocols keep
their own injectable clock (``IReactorTime``: the reactor, or ``twisted.internet.task.Clock`` in tests).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals (never goes back)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` after ``seconds``; returns a handle with ``cancel()``."""
        ...


class LoopClock:
    """The real clocks: ``time.time``, the running loop's monotonic clock, ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> Any:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback, *args)


class _Timer:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when a test says so. ``time()`` starts at ``start`` (epoch seconds)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._start = start
        self._heap: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(self._now + max(0.0, seconds), callback, args)
        heapq.heappush(self._heap, (timer.when, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        self.call_later(seconds, wake)
        await future

    @property
    def pending(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move time forward, running everything due on the way; each wakes and runs before the next."""
        target = self._now + seconds
        await _settle()
        while self._heap and self._heap[0][0] <= target:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.callback(*timer.args)
            await _settle()
        self._now = target
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let woken coroutines run until they wait again (a few loop turns; no wall-clock time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
