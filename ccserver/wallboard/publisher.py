"""The wallboard publisher: one snapshot per update, encoded once, shared by every client.

Events from the hub only mark the board *dirty*; a flush builds the snapshot, encodes it to JSON bytes once and
hands the same :class:`Frame` to every subscriber (the websocket server's ``broadcast``, the HTTP endpoint's
cache). Flushes are coalesced to at most ``max_rate`` a second: a burst of 500 events inside half a second is one
update. Without events the board is still rebuilt every ``refresh_seconds`` (today's figures move with the clock:
an interval closes, callers' waits grow — though the page counts waits itself between updates).

Time comes from an injected ``ccserver.clock.Clock`` (``ManualClock`` in tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ccserver.logs import exception_summary, log_pii_enabled
from ccserver.metrics import REGISTRY

log = logging.getLogger("ccserver.wallboard")

UPDATES = REGISTRY.counter("ccserver_wallboard_updates_total",
                           "Wallboard snapshots built and encoded (each shared by every client)")


@dataclass(frozen=True, slots=True)
class Frame:
    version: int
    at: float
    text: str  # the snapshot's JSON: the same string goes to every websocket client (one text frame)
    data: bytes  # the same, UTF-8: the same bytes go to every HTTP client
    snapshot: dict[str, Any]


def encode_text(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"), default=str)


def encode(snapshot: dict[str, Any]) -> bytes:
    return encode_text(snapshot).encode("utf-8")


class WallboardPublisher:
    """``build(version) -> snapshot`` (async); ``clock``: a ``ccserver.clock.Clock``."""

    def __init__(self, build: Callable[[int], Awaitable[dict[str, Any]]], clock: Any, *, max_rate: float = 2.0,
                 refresh_seconds: float = 5.0) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        self._build = build
        self._clock = clock
        self.min_gap = 1.0 / max_rate
        self.refresh_seconds = refresh_seconds
        self.current: Frame | None = None
        self.encodings = 0  # snapshots encoded (one per update, whatever the number of clients)
        self._version = 0
        self._last_flush: float | None = None
        self._timer: Any = None
        self._dirty = False
        self._flushing: asyncio.Future[Frame] | None = None
        self._subscribers: list[Callable[[Frame], Any]] = []
        self._refresher: asyncio.Task[None] | None = None

    # -- subscribers ---------------------------------------------------------------------------------------------
    def subscribe(self, send: Callable[[Frame], Any]) -> Callable[[], None]:
        """``send(frame)`` at every update (a plain function: e.g. ``websockets.broadcast`` of ``frame.data``).
        Returns the unsubscribe function."""
        self._subscribers.append(send)
        return lambda: self._subscribers.remove(send) if send in self._subscribers else None

    # -- updates -------------------------------------------------------------------------------------------------
    def notify(self, _event: Any = None) -> None:
        """Something changed: an update goes out as soon as the rate allows (coalescing everything until then)."""
        self._dirty = True
        if not self._subscribers:
            return  # nobody to push to: built when asked for (frame()), not for every call event
        if self._timer is not None or self._flushing is not None:
            return  # one is already due; it will see the change
        now = self._clock.monotonic()
        wait = 0.0 if self._last_flush is None else max(0.0, self._last_flush + self.min_gap - now)
        self._timer = self._clock.call_later(wait, self._due)

    def _due(self) -> None:
        self._timer = None
        asyncio.ensure_future(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - SQL briefly away: logged; the next event or refresh tries again
            # the snapshot names agents: no exception text unless server.log_pii
            log.error("wallboard update failed: %s", exception_summary(exc, log_pii_enabled()))

    async def flush(self) -> Frame:
        """Build, encode once, hand to every subscriber. Concurrent callers share the flush in progress."""
        if self._flushing is not None:
            return await asyncio.shield(self._flushing)
        loop = asyncio.get_running_loop()
        self._flushing = loop.create_future()
        self._dirty = False
        self._last_flush = self._clock.monotonic()
        try:
            self._version += 1
            snapshot = await self._build(self._version)
            text = encode_text(snapshot)
            frame = Frame(self._version, self._clock.time(), text, text.encode("utf-8"), snapshot)
            self.encodings += 1
            UPDATES.inc()
            self.current = frame
            for send in list(self._subscribers):
                try:
                    send(frame)
                except Exception as exc:  # noqa: BLE001 - one failing client path never stops the others
                    log.error("wallboard subscriber failed: %s", exception_summary(exc, log_pii_enabled()))
            self._flushing.set_result(frame)
            return frame
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                self._flushing.cancel()
            else:
                self._flushing.set_exception(exc)
                self._flushing.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._flushing = None
            if self._dirty and self._timer is None:  # changed while building: one more, at the allowed time
                self._dirty = False
                self.notify()

    async def frame(self) -> Frame:
        """The latest frame: built now if there is none yet, or if something changed since and the rate allows
        (with no subscriber, updates are built only here — polled — never in the background)."""
        if self.current is None:
            return await self.flush()
        if self._dirty and self._timer is None and (
                self._last_flush is None or self._clock.monotonic() - self._last_flush >= self.min_gap):
            return await self.flush()
        return self.current

    # -- the periodic refresh ------------------------------------------------------------------------------------
    async def _refresh(self) -> None:
        while True:
            await self._clock.sleep(self.refresh_seconds)
            self.notify()

    def attach(self, hub: Any) -> Any:
        """Every call event (and ticket SLA alarm) on the hub marks the board dirty."""
        return hub.subscribe("wallboard", self.notify)

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.ensure_future(self._refresh())

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
