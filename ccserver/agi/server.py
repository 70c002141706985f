"""The FastAGI server factory: handler registry by script name, defaults, limits, and a listen helper."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory

from ccserver.agi.allow import LOOPBACK, PeerFilter
from ccserver.agi.env import script_name
from ccserver.agi.metrics import ERRORS, REFUSED
from ccserver.agi.protocol import FastAGIProtocol
from ccserver.agi.session import AGISession, _plan_set_variables
from ccserver.logs import LogThrottle, log_text

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress, IDelayedCall, IListeningPort, IReactorTCP, IReactorTime

log = logging.getLogger("ccserver.agi")

Handler = Callable[[AGISession], Awaitable[Any] | Any]

HEADER_TIMEOUT = 2.0  # Asterisk itself gives up on a FastAGI connect after 2 s
COMMAND_TIMEOUT = 30.0  # agi.command_timeout's default
COMMAND_SWEEP_INTERVAL = 1.0  # how often commands in flight are checked (at most 1/4 of the command timeout)
HEADER_SWEEP_SLACK = 0.1
# Silent peers dropped per tick at most, and the pause between two such slices while more have expired: a
# flood of half-open connections arrives together, so it times out together, and dropping a whole wave at
# once (then accepting the peers that come straight back) stalled every call in flight for tens of ms.
# 16 aborts (plus their closes and the accepts of the returning peers) cost well under a millisecond; at
# one slice per 5 ms a sweep still drops 3,200 peers a second.
HEADER_SWEEP_SLICE = 16
HEADER_SWEEP_GAP = 0.005
MAX_HEADER_BYTES = 8 * 1024  # a real block is ~600 bytes
_DROP_LOG_INTERVAL = 10.0


class FastAGIFactory(ServerFactory):
    """``FastAGIFactory({"incoming": handler}, default_variables={"CC_QUEUE": "default"})``.

    ``clock`` is the reactor (or a ``task.Clock`` in tests); when None the global reactor is looked up on
    first use, never at import time (the server installs the asyncio reactor first).
    """

    protocol = FastAGIProtocol

    def __init__(
        self,
        handlers: Mapping[str, Handler] | None = None,
        *,
        default_variables: Mapping[str, object] | None = None,
        clock: IReactorTime | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        max_header_bytes: int = MAX_HEADER_BYTES,
        use_mset: bool = True,
        allow: Iterable[str] = LOOPBACK,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        """``allow``: addresses / CIDR blocks of the peers served (``agi.allow``); others are refused at accept,
        before a byte is read, and counted in ``ccserver_agi_refused_total``. ``command_timeout``: seconds
        Asterisk may take to answer a command (``agi.command_timeout``; a command may carry its own limit)."""
        self.handlers: dict[str, Handler] = {}
        for name, handler in (handlers or {}).items():
            self.register(name, handler)
        defaults = {k: str(v) if not isinstance(v, str) else v for k, v in (default_variables or {}).items()}
        _plan_set_variables(defaults, use_mset)  # validate now: a bad default must fail at start-up
        self.default_variables: dict[str, str] = defaults
        self._clock = clock
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.use_mset = use_mset
        # Connections still waiting for their agi_* block, oldest first (a dict keeps insertion order, which
        # is connection order: the sweep stops at the first one still in time), swept by one timer instead of a
        # callLater/cancel pair per connection: that pair costs ~5 us on the asyncio reactor, a measurable
        # share of a call's CPU. Nothing is retained once the header is in.
        self._header_pending: dict[FastAGIProtocol, None] = {}
        self._header_timer: IDelayedCall | None = None
        # Sessions started and not yet closed, checked by one sweep timer for commands left unanswered (like the
        # header watch: no timer per command). A command is timed out once the sweeps have seen it in flight
        # for its limit, so the close comes between the limit and the limit plus one sweep interval.
        self.command_timeout = command_timeout
        self._command_sweep_interval = min(COMMAND_SWEEP_INTERVAL, command_timeout / 4)
        self._sessions: set[FastAGIProtocol] = set()
        self._command_timer: IDelayedCall | None = None
        self.drops: Counter[str] = Counter()  # dropped connections by reason (also in ccserver_agi_errors_total)
        self._drop_log = LogThrottle(_DROP_LOG_INTERVAL)
        self.peers = PeerFilter(allow)
        self._verdicts = self.peers.verdicts  # read directly on every accept: one dict look-up
        self.refused = 0
        self._refusal_log = LogThrottle(_DROP_LOG_INTERVAL)
        self._stray_log = LogThrottle(_DROP_LOG_INTERVAL)

    @property
    def clock(self) -> IReactorTime:
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor  # type: ignore[assignment]
        return self._clock  # type: ignore[return-value]

    def register(self, name: str, handler: Handler) -> None:
        """Route ``agi://host:port/<name>`` to ``handler`` (an ``async def handler(session)``)."""
        key = script_name(name)
        if not key:
            raise ValueError(f"invalid FastAGI script name: {name!r}")
        self.handlers[key] = handler

    def route(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``."""

        def decorate(handler: Handler) -> Handler:
            self.register(name, handler)
            return handler

        return decorate

    def buildProtocol(self, addr: IAddress | None) -> FastAGIProtocol | None:  # type: ignore[override]
        # None makes the listening port close the accepted socket at once: nothing is read from a refused peer.
        host = getattr(addr, "host", None)
        if host is not None and not self._verdicts.get(host) and not self.peers.allows(host):
            self._refuse(host)
            return None
        return FastAGIProtocol(self)

    def _refuse(self, host: str) -> None:
        REFUSED.inc()
        self.refused += 1
        due = self._refusal_log.hit(self.clock.seconds())  # type: ignore[misc]
        if due:
            log.warning("FastAGI: refused a connection from %s (not in agi.allow); %d refused since the previous "
                        "report", log_text(host, 64), due)

    @property
    def headers_pending(self) -> int:
        """Connections still waiting for their agi_* block (half-open ones included)."""
        return len(self._header_pending)

    def watch_header(self, proto: FastAGIProtocol) -> None:
        """Arm ``proto``'s header timeout (from ``proto.connected_at``) until ``unwatch_header``."""
        self._header_pending[proto] = None
        if self._header_timer is None:
            self._header_timer = self.clock.callLater(
                self.header_timeout, self._sweep_headers  # type: ignore[arg-type]
            )

    def unwatch_header(self, proto: FastAGIProtocol) -> None:
        self._header_pending.pop(proto, None)

    def _sweep_headers(self) -> None:
        """Drop the connections whose header did not come in time: at most HEADER_SWEEP_SLICE per tick, the
        next slice HEADER_SWEEP_GAP later while more have expired (the loop serves calls in between); then
        sleep until the oldest remaining deadline."""
        self._header_timer = None
        pending = self._header_pending
        if not pending:
            return
        now = self.clock.seconds()  # type: ignore[misc]
        limit = now - self.header_timeout
        expired: list[FastAGIProtocol] = []
        for proto in pending:  # oldest first
            if proto.connected_at > limit or len(expired) == HEADER_SWEEP_SLICE:
                break
            expired.append(proto)
        for proto in expired:
            del pending[proto]
            proto.header_timeout()
        if not pending:
            return
        first = next(iter(pending)).connected_at + self.header_timeout
        if first <= now:
            delay = HEADER_SWEEP_GAP  # more have expired: the next slice shortly, not in this tick
        else:
            # Batch: under an attack deadlines pass continuously, and one sweep per HEADER_SWEEP_SLACK handles
            # them together (a silent peer lives at most timeout + slack, plus the slices before it).
            delay = max(first - now, HEADER_SWEEP_SLACK)
        self._header_timer = self.clock.callLater(delay, self._sweep_headers)  # type: ignore[arg-type]

    def stop_watching(self) -> None:
        """Cancel the header and command timers (tests, shutdown)."""
        for timer in (self._header_timer, self._command_timer):
            if timer is not None and timer.active():  # type: ignore[misc]
                timer.cancel()  # type: ignore[misc]
        self._header_timer = self._command_timer = None
        self._header_pending.clear()

    @property
    def sessions_open(self) -> int:
        """Sessions started whose connection is not closed yet."""
        return len(self._sessions)

    def watch_session(self, proto: FastAGIProtocol) -> None:
        self._sessions.add(proto)
        if self._command_timer is None:
            self._command_timer = self.clock.callLater(
                self._command_sweep_interval, self._sweep_commands  # type: ignore[arg-type]
            )

    def unwatch_session(self, proto: FastAGIProtocol) -> None:
        self._sessions.discard(proto)

    def _sweep_commands(self) -> None:
        self._command_timer = None
        sessions = self._sessions
        if not sessions:
            return
        now = self.clock.seconds()  # type: ignore[misc]
        default = self.command_timeout
        expired: list[tuple[FastAGIProtocol, float]] = []
        for proto in sessions:
            head = proto._head
            if head is not proto.swept_head:  # a new command in flight (or none): its wait starts now
                proto.swept_head = head
                proto.swept_at = now
            elif head is not None:
                limit = default if head.timeout is None else head.timeout
                if now - proto.swept_at >= limit:
                    expired.append((proto, now - proto.swept_at))
        for proto, waited in expired:
            proto.swept_head = None
            proto.command_timed_out(waited)
        self._command_timer = self.clock.callLater(
            self._command_sweep_interval, self._sweep_commands  # type: ignore[arg-type]
        )

    @property
    def connections(self) -> int:
        """Connections open: waiting for their header, or in a session."""
        return len(self._header_pending) + len(self._sessions)

    def drain(self, timeout: float, poll: float = 0.01) -> Deferred[int]:
        """At shutdown, once the port has stopped listening: wait until every connection has closed (the
        sessions in flight finish their handlers, so their records are submitted), at most ``timeout`` s; then
        abort what is left (its handlers see the caller hang up) and wait for those to close too. Fires with
        how many connections had to be cut."""
        done: Deferred[int] = Deferred()
        deadline = self.clock.seconds() + timeout  # type: ignore[misc]
        cut: list[int] = []

        def check() -> None:
            if not self.connections:
                done.callback(cut[0] if cut else 0)
                return
            if not cut and self.clock.seconds() >= deadline:  # type: ignore[misc]
                left = [*self._header_pending, *self._sessions]
                cut.append(len(left))
                for proto in left:
                    if proto.transport is not None:
                        proto.transport.abortConnection()  # type: ignore[misc]
            elif cut and self.clock.seconds() >= deadline + 1.0:  # type: ignore[misc]
                done.callback(cut[0])  # aborted, yet not closed within a second: stop waiting
                return
            self.clock.callLater(poll, check)  # type: ignore[misc, arg-type]

        check()
        return done

    def mset_unavailable(self) -> None:
        if self.use_mset:
            self.use_mset = False
            log.warning("Asterisk has no MSet application (< 13.8?): setting variables one by one from now on")

    def dropped(self, reason: str, transport: Any) -> None:
        """A connection dropped before its session started; logged at most every 10 s (attacks are noisy). The
        peer's address is looked up only for the log line (a flood is dropped by the thousand)."""
        ERRORS.inc()
        self.drops[reason] += 1
        due = self._drop_log.hit(self.clock.seconds())  # type: ignore[misc]
        if due:
            peer: Any = getattr(transport, "getPeer", lambda: None)()
            where = f"{peer.host}:{peer.port}" if hasattr(peer, "host") else peer
            log.warning("FastAGI: dropped %s (%s); %d connections dropped since the previous report",
                        log_text(where, 96), reason, due)


    def stray_line(self, uniqueid: str) -> None:
        """A session discarded a line that answered nothing (see the protocol module); logged at most every 10 s.
        The line itself is not logged: it may hold caller data."""
        due = self._stray_log.hit(self.clock.seconds())  # type: ignore[misc]
        if due:
            log.warning("FastAGI: discarded a line that answers no command (uniqueid=%s); %d such lines since the "
                        "previous report", log_text(uniqueid, 64), due)


def listen_fastagi(
    reactor: IReactorTCP, factory: FastAGIFactory, port: int, interface: str = "127.0.0.1", backlog: int = 1024
) -> IListeningPort:
    """Listen on ``interface:port`` (a deep backlog: a burst of calls must not be refused)."""
    return reactor.listenTCP(port, factory, backlog=backlog, interface=interface)  # type: ignore[misc, arg-type]
