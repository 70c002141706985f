"""The AMI wire protocol for one connection: framing, banner, ActionID matching, event dispatch, keepalive.

Speed: a busy Asterisk sends ~900 events/s, most of which (VarSet, Newexten, DeviceStateChange…) nobody
subscribes to. Messages are framed on CRLF CRLF with ``bytes.find`` over the whole buffer; for an event
the name is read from its first line (``Event: X``) and, when nobody wants it, the message is counted
and skipped without decoding or building a dict; so is an event whose handlers all filter on its headers and turn
it down (``EventDispatcher.on(..., when=...)``: the tracker's VarSets of other variables, channel events of channels
it does not follow). Only responses, subscribed events and members of a pending list action are parsed.

The reactor is never imported here: a clock (``IReactorTime``) is passed in.
"""

from __future__ import annotations

import fcntl
import logging
import termios
from array import array
from collections.abc import Callable
from time import perf_counter
from typing import Any, cast

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ccserver.ami.actions import HeaderValue, build_action, list_complete_event
from ccserver.ami.dispatch import EventDispatcher
from ccserver.ami.errors import AMIConnectionLost, AMIError, AMITimeout, OriginateOutcomeUnknown
from ccserver.ami.message import BANNER_PREFIX, AMIMessage, decode_block, parse_block
from ccserver.ami.metrics import AMIMetrics
from ccserver.events.backlog import BEHIND_BYTES, ReadBacklog

log = logging.getLogger("ccserver.ami")

_TERM = b"\r\n\r\n"
_EVENT = b"Event: "
_ACTIONID_LINE = b"\r\nActionID: "
_BANNER = BANNER_PREFIX.encode()
_ERROR_RESPONSES = frozenset({"Error", "Failure", "Fail"})
MAX_BANNER = 1024
READ_SIZE = 1 << 22  # bytes asked of the socket per read
SLICE = 300  # messages decoded per turn of the loop; the rest of a big read waits one turn, reading paused
TURN_SECONDS = 0.015  # and at most this long per turn, however many of its messages are skipped undecoded


class ActionResult:
    """The reply to an action: ``response`` plus, for list actions, the member ``events`` and ``complete``."""

    __slots__ = ("action", "response", "events", "complete")

    def __init__(self, action: str, response: AMIMessage, events: list[AMIMessage] | None = None,
                 complete: AMIMessage | None = None) -> None:
        self.action = action
        self.response = response
        self.events = events if events is not None else []
        self.complete = complete

    def __getitem__(self, header: str) -> str:
        return self.response[header]

    def get(self, header: str, default: str | None = None) -> str | None:
        return self.response.get(header, default)

    def __repr__(self) -> str:
        return f"<ActionResult {self.action} {self.response.response} events={len(self.events)}>"


class _Pending:
    __slots__ = ("action", "deferred", "complete_event", "response", "events", "timer")

    def __init__(self, action: str, deferred: Deferred[ActionResult], complete_event: str | None) -> None:
        self.action = action
        self.deferred = deferred
        self.complete_event = complete_event
        self.response: AMIMessage | None = None
        self.events: list[AMIMessage] = []
        self.timer: IDelayedCall | None = None


class _RateLimitedLog:
    """Log the first few occurrences of a problem, then every 1000th: garbage must not flood the log."""

    def __init__(self, first: int = 10, every: int = 1000) -> None:
        self.count = 0
        self.first = first
        self.every = every

    def __call__(self, msg: str, *args: Any) -> None:
        self.count += 1
        if self.count <= self.first or self.count % self.every == 0:
            log.warning(msg + " (occurrence %d)", *args, self.count)


class AMIProtocol(Protocol):
    """One AMI connection. Usually created and driven by :class:`ccserver.ami.client.AMIClient`.

    ``on_lost(protocol, reason)`` is called after pending actions have been failed.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        dispatcher: EventDispatcher | None = None,
        server: str = "default",
        action_id_prefix: str = "cc",
        max_message_size: int = 1 << 20,
        default_timeout: float | None = 60.0,
        metrics: AMIMetrics | None = None,
        on_lost: Callable[[AMIProtocol, Failure], None] | None = None,
        backlog: ReadBacklog | None = None,
    ) -> None:
        self.clock = clock
        self.backlog = backlog  # told at each turn whether input is left unread (the hub's subscribers wait)
        self.dispatcher = dispatcher if dispatcher is not None else EventDispatcher()
        self.server = server
        self.max_message_size = max_message_size
        self.default_timeout = default_timeout
        self.metrics = metrics if metrics is not None else AMIMetrics(server)
        self.on_lost = on_lost
        self.banner: str | None = None
        self.version: str | None = None
        self.banner_received: Deferred[str] = Deferred()
        self.connected = False
        self.logged_in = False
        self._buf = b""
        self._skipping = False  # discarding an oversized message up to its terminator
        self._pending: dict[str, _Pending] = {}
        self._lists = 0  # how many pending actions may collect member events
        self._prefix = action_id_prefix
        self._seq = 0
        self._keepalive: IDelayedCall | None = None
        self._bad = _RateLimitedLog()
        self._next_slice: IDelayedCall | None = None  # the rest of a big read, handled on the loop's next turn
        self._resume_at = 0  # where in ``_buf`` that rest starts
        self._fd = -1  # the socket, asked how many bytes wait unread (FIONREAD) at the end of each read
        self._unread_count = array("i", [0])

    # -- connection ------------------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected = True
        # Read a burst in big pieces: every read costs a system call and a turn of every hub subscriber, whatever
        # its size (measured with bench_ami_process: 64 KiB → 4 MiB took the whole process from 0.55 to 0.35 s per
        # busy-hour stream). A live Asterisk's usual trickle is read as it comes, whatever this size.
        transport = self.transport
        if transport is not None and hasattr(transport, "bufferSize"):
            transport.bufferSize = READ_SIZE
        try:
            self._fd = transport.fileno() if transport is not None else -1  # type: ignore[attr-defined]
        except (AttributeError, OSError, NotImplementedError):
            self._fd = -1  # a test transport: nothing ever waits unread

    def connectionLost(self, reason: Failure = Failure(ConnectionError("closed"))) -> None:  # noqa: B008
        self.connected = False
        self.logged_in = False
        self.stop_keepalive()
        self._fd = -1
        if self._next_slice is not None and self._next_slice.active():  # type: ignore[misc]
            self._next_slice.cancel()  # type: ignore[misc]
        self._next_slice = None
        pending, self._pending = self._pending, {}
        self._lists = 0
        for aid, p in pending.items():
            if p.timer is not None and p.timer.active():  # type: ignore[misc]
                p.timer.cancel()  # type: ignore[misc]
            if p.action.lower() == "originate":
                err: Exception = OriginateOutcomeUnknown(aid, "connection lost before Asterisk's response")
            else:
                err = AMIConnectionLost(f"{p.action} ({aid}): connection to {self.server} lost")
            p.deferred.errback(Failure(err))
        if not self.banner_received.called:
            self.banner_received.errback(Failure(AMIConnectionLost(f"{self.server}: closed before the banner")))
        if self.on_lost is not None:
            self.on_lost(self, reason)
        if self.backlog is not None:
            self.backlog.caught_up(self)  # last: nothing waits on a closed connection

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # -- actions ---------------------------------------------------------------------------------
    def next_action_id(self) -> str:
        self._seq += 1
        return f"{self._prefix}-{self._seq}"

    def send_action(
        self,
        action: str,
        headers: dict[str, HeaderValue] | None = None,
        *,
        action_id: str | None = None,
        complete_event: str | None = None,
        timeout: float | None = -1.0,
    ) -> Deferred[ActionResult]:
        """Send an action; the Deferred fires with an :class:`ActionResult`.

        Raises ValueError at once (nothing written) for unsafe header names/values. List actions
        (QueueStatus, CoreShowChannels, Status, QueueSummary, …) resolve when their named ``…Complete``
        event arrives. ``Response: Error`` -> :class:`AMIError`; connection drop -> :class:`AMIConnectionLost`.
        """
        aid = action_id if action_id is not None else self.next_action_id()
        data = build_action(action, aid, headers)  # raises ValueError before anything is written
        if not self.connected or self.transport is None:
            return fail(AMIConnectionLost(f"{action}: not connected to {self.server}"))
        if aid in self._pending:
            raise ValueError(f"ActionID {aid!r} is already pending")
        d: Deferred[ActionResult] = Deferred()
        p = _Pending(action, d, complete_event or list_complete_event(action))
        self._pending[aid] = p
        if timeout is not None and timeout < 0:
            timeout = self.default_timeout
        if timeout is not None:
            p.timer = self.clock.callLater(timeout, self._timed_out, aid)  # type: ignore[arg-type]
        self.transport.write(data)  # type: ignore[call-arg, misc]
        return d

    def _timed_out(self, aid: str) -> None:
        p = self._pending.pop(aid, None)
        if p is None:
            return
        if p.response is not None:
            self._lists -= 1
        p.deferred.errback(Failure(AMITimeout(f"{p.action} ({aid}): no complete reply from {self.server}")))

    def _finish(self, aid: str, p: _Pending, result: ActionResult | None, error: Exception | None) -> None:
        del self._pending[aid]
        if p.timer is not None and p.timer.active():  # type: ignore[misc]
            p.timer.cancel()  # type: ignore[misc]
        if error is not None:
            p.deferred.errback(Failure(error))
        else:
            # callers pass exactly one of result / error, so with no error the result is an ActionResult
            p.deferred.callback(cast(ActionResult, result))

    # -- keepalive -------------------------------------------------------------------------------
    def start_keepalive(self, interval: float, timeout: float) -> None:
        """Ping every ``interval`` s; no Pong within ``timeout`` s means the link is dead: drop it."""
        self.stop_keepalive()

        def tick() -> None:
            self._keepalive = self.clock.callLater(interval, tick)  # type: ignore[arg-type]
            if not self.connected:
                return
            d = self.send_action("Ping", timeout=timeout)
            d.addErrback(on_error)

        def on_error(failure: Failure) -> None:
            if failure.check(AMITimeout) and self.connected:
                log.warning("AMI %s: no Pong within %.1f s, dropping the connection", self.server, timeout)
                self.metrics.keepalive_timeouts.inc(server=self.server)
                self.abort()
            # other failures (connection lost) are reported elsewhere

        self._keepalive = self.clock.callLater(interval, tick)  # type: ignore[arg-type]

    def stop_keepalive(self) -> None:
        if self._keepalive is not None and self._keepalive.active():  # type: ignore[misc]
            self._keepalive.cancel()  # type: ignore[misc]
        self._keepalive = None

    # -- reading ---------------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self._read(data)
        backlog = self.backlog
        if backlog is not None:  # after every read, whatever it held (part of a message, an oversized one …)
            if self._next_slice is not None or self._unread() >= BEHIND_BYTES:
                backlog.behind(self)
            else:
                backlog.caught_up(self)

    def _read(self, data: bytes) -> None:
        started = perf_counter()
        pos = 0
        if self._buf:
            data = self._buf + data if data else self._buf
            pos, self._resume_at = self._resume_at, 0  # after a slice: where the unhandled part starts
            self._buf = b""
        if self._skipping:
            pos = self._skip_oversized(data)
            if pos < 0:
                return
        if self.banner is None:
            pos = self._read_banner(data, pos)
            if pos < 0:
                return

        arrival = self.clock.seconds()  # type: ignore[misc]
        find = data.find
        startswith = data.startswith
        wanted = self.dispatcher.by_bytes
        filters = self.dispatcher.filters
        server = self.server
        catch_all = bool(self.dispatcher.catch_all)
        count = 0
        dropped = 0
        decoded = 0
        cap = self.max_message_size
        late = False
        while decoded < SLICE:
            end = find(_TERM, pos)
            if end < 0:
                break
            if end == pos:  # stray blank line
                pos += 4
                continue
            if not count & 127 and count and perf_counter() - started > TURN_SECONDS:
                # A flood of events nobody decodes (no eventfilter for VarSet, say) costs little each but has no
                # count: the clock bounds the turn too (read every 128 messages, not at each).
                late = True
                break
            count += 1
            if startswith(_EVENT, pos):
                nl = find(b"\r\n", pos, end + 2)
                name = data[pos + 7:nl]
                if (
                    not catch_all
                    and (name not in wanted or ((reject := filters.get(name)) is not None
                                                and reject(data, nl, end, server)))
                    and not (self._lists and find(_ACTIONID_LINE, pos, end) >= 0)
                ):
                    dropped += 1  # nobody wants it (or every handler's filter turns it down): counted, never decoded
                    pos = end + 4
                    continue
            if end - pos > cap:
                self._bad("AMI %s: message of %d bytes over the %d byte cap dropped", self.server, end - pos, cap)
                self.metrics.malformed.inc(server=self.server, kind="oversize")
                pos = end + 4
                continue
            msg = self._parse(data[pos:end], arrival)
            pos = end + 4
            decoded += 1
            self._handle(msg)

        if (late or decoded >= SLICE) and find(_TERM, pos) >= 0:
            # One read must not hold the loop (a routed call, a pop) for the whole of a burst: what is left waits
            # one turn, the socket unread meanwhile so the piece stays bounded. Kept whole with an offset, so the
            # rest of a 4 MiB read is not copied at every slice.
            self._buf = data
            self._resume_at = pos
            self._pause_for_next_slice()
        elif len(rest := data[pos:] if pos else data) > cap:
            self._bad("AMI %s: unterminated message over %d bytes, skipping to the next message", self.server, cap)
            self.metrics.malformed.inc(server=self.server, kind="oversize")
            self._skipping = True
            self._buf = rest[-3:]
        elif rest:
            self._buf = rest
        if count:
            self.metrics.messages.inc(count, server=self.server)
            self.metrics.read_seconds.observe(perf_counter() - started)
        if dropped:
            self.metrics.dropped.inc(dropped, server=self.server)

    def _unread(self) -> int:
        """Bytes Asterisk has sent that wait in the socket (0 when that cannot be known)."""
        if self._fd < 0:
            return 0
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, self._unread_count)
        except OSError:
            return 0
        return self._unread_count[0]

    def _pause_for_next_slice(self) -> None:
        if self._next_slice is None:
            if self.transport is not None:
                self.transport.pauseProducing()  # type: ignore[attr-defined]
            self._next_slice = self.clock.callLater(0, self._read_next_slice)  # type: ignore[arg-type]

    def _read_next_slice(self) -> None:
        self._next_slice = None
        if not self.connected:
            return
        self.dataReceived(b"")
        if self._next_slice is None and self.connected and self.transport is not None:
            self.transport.resumeProducing()  # type: ignore[attr-defined]

    def _skip_oversized(self, data: bytes) -> int:
        end = data.find(_TERM)
        if end < 0:
            self._buf = data[-3:]  # a terminator may straddle two reads
            return -1
        self._skipping = False
        self.metrics.messages.inc(server=self.server)  # the oversized message itself
        return end + 4

    def _read_banner(self, data: bytes, pos: int) -> int:
        nl = data.find(b"\r\n", pos)
        if nl < 0:
            if len(data) - pos > MAX_BANNER:
                log.warning("AMI %s: no banner line; continuing without it", self.server)
                self._set_banner("")
                return pos
            self._buf = data[pos:]
            return -1
        line = data[pos:nl]
        if line.startswith(_BANNER):
            self._set_banner(line.decode("utf-8", "replace"))
            return nl + 2
        log.warning("AMI %s: unexpected first line %r (not an AMI banner)", self.server, line[:80])
        self._set_banner("")
        return pos

    def _set_banner(self, banner: str) -> None:
        self.banner = banner
        self.version = banner[len(BANNER_PREFIX):].strip() if banner.startswith(BANNER_PREFIX) else None
        if not self.banner_received.called:
            self.banner_received.callback(banner)

    def _parse(self, block: bytes, arrival: float) -> AMIMessage:
        text, clean = decode_block(block)
        if not clean:
            self._bad("AMI %s: message is not valid UTF-8 (decoded with replacements)", self.server)
            self.metrics.malformed.inc(server=self.server, kind="encoding")
        msg = parse_block(text)
        if msg.malformed:
            self._bad("AMI %s: %d header line(s) without a colon skipped", self.server, msg.malformed)
            self.metrics.malformed.inc(msg.malformed, server=self.server, kind="header")
        msg.server = self.server
        msg.arrival = arrival
        return msg

    def _handle(self, msg: AMIMessage) -> None:
        first = msg._items[0][0] if msg._items else ""
        if first == "Event":
            self._on_event(msg)
        elif first == "Response":
            self._on_response(msg)
        elif msg.event is not None:
            self._on_event(msg)
        elif msg.response is not None:
            self._on_response(msg)
        else:
            self._bad("AMI %s: message is neither a response nor an event: %r", self.server, msg.items()[:2])
            self.metrics.malformed.inc(server=self.server, kind="unknown")

    def _on_event(self, msg: AMIMessage) -> None:
        if self._lists:
            aid = msg._first.get("ActionID")
            p = self._pending.get(aid) if aid is not None else None
            if p is not None and p.response is not None:
                # A member (or the end) of a list action we are collecting: it belongs to that caller only.
                name = msg.event
                if name == p.complete_event or msg._first.get("EventList") == "Complete":
                    self._lists -= 1
                    self._finish(aid, p, ActionResult(p.action, p.response, p.events, msg), None)  # type: ignore[arg-type]
                else:
                    p.events.append(msg)
                return
        self.dispatcher.dispatch(msg)

    def _on_response(self, msg: AMIMessage) -> None:
        aid = msg.action_id
        p = self._pending.get(aid) if aid is not None else None
        if p is None:
            log.debug("AMI %s: response for unknown ActionID %r", self.server, aid)
            self.metrics.unmatched.inc(server=self.server)
            return
        if p.response is not None:
            log.debug("AMI %s: second response for %s ignored", self.server, aid)
            return
        status = msg.response
        if status in _ERROR_RESPONSES:
            self._finish(aid, p, None, AMIError(p.action, msg.get("Message", "") or "", msg))  # type: ignore[arg-type]
            return
        if p.complete_event is not None or msg._first.get("EventList") == "start":
            p.response = msg
            self._lists += 1
            return
        self._finish(aid, p, ActionResult(p.action, msg), None)  # type: ignore[arg-type]
