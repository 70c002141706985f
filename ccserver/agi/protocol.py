"""The FastAGI wire protocol, server side: the ``agi_*`` header, then one command / one answer at a time.

Kept lean on purpose -- every round trip is server CPU (~60 us), so the hot path avoids regexes, decodes
only what it must, shares the common answer objects, and never logs per line.
"""

from __future__ import annotations

import logging
from collections import deque
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from ccserver.agi.env import find_script
from ccserver.agi.errors import AGICommandFailed, AGIInvalidCommand, AGIUsageError, CallerHungUp
from ccserver.agi.metrics import ERRORS, SESSION_SECONDS, SESSIONS
from ccserver.agi.request import AGIRequest, HandlerRunner
from ccserver.agi.results import parse_result, parse_result_bytes
from ccserver.agi.session import MINUS_ONE_HANGS_UP, MINUS_TWO_FAILS, AGISession
from ccserver.netio import write_through

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITCPTransport

    from ccserver.agi.server import FastAGIFactory

log = logging.getLogger("ccserver.agi")

# After the header, Asterisk only sends short answer lines (a GET VARIABLE value at most a few KiB);
# a peer streaming a longer unterminated line is not Asterisk.
MAX_ANSWER_LINE = 16 * 1024

# Whole reads that are one plain success answer: no flag can turn result 0/1 into an error.
_PLAIN_ANSWERS = {f"{text}\n".encode(): parse_result(text) for text in ("200 result=0", "200 result=1")}
# The answer to nearly every command: compared first, which is cheaper than hashing the fresh read.
_ANSWER_1 = b"200 result=1\n"
_RESULT_1 = _PLAIN_ANSWERS[_ANSWER_1]


class FastAGIProtocol(Protocol):
    # Narrower than Protocol's ``ITransport | None``: every method below that uses the transport runs only
    # once makeConnection has set it (a session needs data received), and FastAGI is served over TCP.
    transport: ITCPTransport

    def __init__(self, factory: FastAGIFactory) -> None:
        self.factory = factory
        self.session: AGISession | None = None
        self.dead = False  # no more commands: caller hung up, EOF, or we are closing
        self._closing = False
        self._lost = False  # connectionLost has run
        self._finished = False  # the handler (and the default variables, if any) is over
        self._buf: bytes | bytearray = b""
        self.connected_at = 0.0
        # The command written and awaiting its answer; the ones issued meanwhile wait their turn in _queue.
        # Nearly every session has at most one command outstanding, so the deque is made only when needed.
        self._head: AGIRequest | None = None
        self._queue: deque[AGIRequest] | None = None
        self._usage: list[str] | None = None  # collecting a multi-line 520 block

    @property
    def use_mset(self) -> bool:
        return self.factory.use_mset

    def mset_unavailable(self) -> None:
        self.factory.mset_unavailable()

    # -- connection ----------------------------------------------------------------------------------
    def connectionMade(self) -> None:
        factory = self.factory
        self.connected_at = factory.clock.seconds()
        factory.watch_header(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.dead = self._closing = self._lost = True
        if self.session is None:
            self.factory.unwatch_header(self)
            return
        SESSION_SECONDS.observe(self.factory.clock.seconds() - self.connected_at)
        if self._head is not None:
            self._fail_all("connection lost")
        if self._finished:
            self.session = None  # see _close

    def dataReceived(self, data: bytes) -> None:
        if self.session is None:
            self._header_data(data)
            return
        if self._head is not None and not self._buf and self._usage is None:
            # Fast path, nearly every read: exactly one "200 result=0|1" answer for the command in flight.
            if data == _ANSWER_1:
                self._pop().complete(_RESULT_1)
                return
            result = _PLAIN_ANSWERS.get(data)
            if result is not None:
                self._pop().complete(result)
                return
        self._answer_data(data)

    # -- header --------------------------------------------------------------------------------------
    def _header_data(self, data: bytes) -> None:
        if self._closing:
            return
        partial = self._buf
        if partial:
            # A header in pieces: grow a bytearray (no quadratic copying) and search only the new bytes
            # (plus 3 for a terminator straddling the boundary), so a trickling peer costs linear CPU.
            if type(partial) is bytes:
                partial = bytearray(partial)
            start = max(0, len(partial) - 3)
            partial += data
            buf: bytes | bytearray = partial
        else:
            start = 0
            buf = data
        if buf.startswith(b"\n"):  # an empty environment
            end, skip = 0, 1
        else:
            end, skip = buf.find(b"\n\n", start), 2
            if end < 0:
                end, skip = buf.find(b"\r\n\r\n", start), 4  # tolerate CRLF (Asterisk itself sends LF)
        limit = self.factory.max_header_bytes
        if end < 0:
            if len(buf) > limit:
                self._drop("oversize header")
            else:
                self._buf = buf
            return
        if end > limit:
            self._drop("oversize header")
            return
        self._buf = b""
        self.factory.unwatch_header(self)
        if skip == 2 and end + 2 == len(buf) and type(buf) is bytes:
            # The usual read: exactly the block and its blank line. Kept whole (the env readers ignore the
            # trailing newlines), which spares copying ~600 bytes per call.
            self._start(buf)
            return
        self._start(bytes(buf[:end]))
        if end + skip < len(buf):  # more than the header in this read (Asterisk waits for a command first)
            self._answer_data(bytes(buf[end + skip :]))

    def header_timeout(self) -> None:
        """Called by the factory's header watch when the agi_* block did not arrive in time."""
        if self.session is None and not self._closing:
            self._drop("header timeout")

    def _drop(self, reason: str) -> None:
        self.dead = self._closing = True
        self._buf = b""
        self.factory.dropped(reason, self.transport.getPeer() if self.transport else None)  # type: ignore[misc]
        # abort, not lose: a half-open peer may never read, so nothing must wait on it
        self.transport.abortConnection()  # type: ignore[misc]

    # -- session -------------------------------------------------------------------------------------
    def _start(self, header: bytes) -> None:
        script = find_script(header)
        self.session = session = AGISession(self, header, script)
        SESSIONS.inc()
        handler = self.factory.handlers.get(script)
        if handler is None:
            ERRORS.inc()
            log.warning("FastAGI script %r has no handler (uniqueid=%s): default variables", script, session.uniqueid)
            self._write_defaults()
            return
        try:
            result: Any = handler(session)
        except Exception:
            self._handler_failed(Failure())
            return
        if isinstance(result, CoroutineType):  # an ``async def`` handler (inspect.iscoroutine, minus a call)
            HandlerRunner(result, self._handler_done, self._handler_failed).start()
        elif isinstance(result, Deferred):
            result.addCallbacks(self._handler_done, self._handler_failed)
        else:
            self._handler_done(result)

    def _handler_done(self, _: object) -> None:
        self._close()

    def _handler_failed(self, failure: Failure) -> None:
        if failure.check(CallerHungUp):
            # The caller left: the normal end of many calls, not an error, and not logged. Its traceback holds
            # the handler's frames, which hold the exception: dropped, they are freed now, not by the GC.
            failure.value.__traceback__ = None
            failure.tb = None
            self._close()
            return
        ERRORS.inc()
        session = self.session
        log.error(
            "FastAGI handler %r failed (uniqueid=%s, callerid=%s): %s",
            session.script if session else "?",
            session.uniqueid if session else "?",
            session.callerid if session else "?",
            failure.getErrorMessage(),
            exc_info=(failure.type, failure.value, failure.getTracebackObject()),
        )
        # Logged: the traceback (whose frames hold the session) is no longer needed; see _close.
        failure.value.__traceback__ = None
        failure.tb = None
        self._write_defaults()

    def _write_defaults(self) -> None:
        """Leave the call routable: the factory's default variables, if the channel can still take them."""
        defaults = self.factory.default_variables
        if not defaults or self.dead or self.session is None:
            self._close()
            return

        def failed(failure: Failure) -> None:
            log.debug("default variables not written: %s", failure.getErrorMessage())
            self._close()

        HandlerRunner(self.session.set_variables(defaults), lambda _: self._close(), failed).start()

    def _close(self) -> None:
        """The handler is over (and the default variables written, if any): close once nothing is pending."""
        self._finished = True
        if self._lost:
            # The protocol and its session point at each other. Once the call is over on both sides, drop
            # this half so the pair is freed by reference counting at once: left as a cycle, every session
            # (and the transport and socket hanging off it) would wait for the cyclic GC, which then runs
            # every few hundred calls, and new calls allocate cold memory meanwhile (~7% of a call's CPU).
            self.session = None
        if self._closing:
            return
        self.dead = self._closing = True
        if self._head is None and self.transport is not None:
            self.transport.loseConnection()  # type: ignore[misc]
        # else: closed by _pop once the queued commands have been answered

    # -- commands ------------------------------------------------------------------------------------
    def send(self, data: bytes, flags: int) -> AGIRequest:
        if self.dead:
            return AGIRequest.failed(CallerHungUp("the channel is gone; command not sent"))
        request = AGIRequest(data, flags)
        if self._head is None:
            self._head = request
            write_through(self.transport, data)
        elif self._queue is None:
            self._queue = deque((request,))
        else:
            self._queue.append(request)
        return request

    def _answer_data(self, data: bytes) -> None:
        partial = self._buf
        if partial:
            if type(partial) is bytes:
                partial = bytearray(partial)
            partial += data
            if b"\n" not in data:  # still no end of line: look at the new bytes only (linear, not quadratic)
                if len(partial) > MAX_ANSWER_LINE:
                    self._buf = b""
                    ERRORS.inc()
                    log.warning("FastAGI peer sent an over-long line; closing (uniqueid=%s)", self._uniqueid())
                    self._hangup("over-long answer line")
                else:
                    self._buf = partial
                return
            data = bytes(partial)
        lines = data.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_ANSWER_LINE:
            self._buf = b""
            ERRORS.inc()
            self._hangup("over-long answer line")
        for raw in lines:
            self._line(raw)

    def _uniqueid(self) -> str:
        return self.session.uniqueid if self.session is not None else "?"

    def _pop(self) -> AGIRequest:
        """Take the answered head; write the next queued command, or close if the handler is done."""
        head = self._head
        assert head is not None  # callers check that a command is in flight
        queue = self._queue
        if queue:
            self._head = nxt = queue.popleft()
            write_through(self.transport, nxt.data)
        else:
            self._head = None
            if self._closing and self.transport is not None:
                self.transport.loseConnection()  # type: ignore[misc]
        return head

    def _line(self, raw: bytes) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        usage = self._usage
        if usage is not None:
            if raw.startswith(b"520 "):
                self._usage = None
                if self._head is not None:
                    self._pop().fail(AGIUsageError("\n".join(usage[1:])))
            else:
                usage.append(raw.decode("utf-8", "replace"))
            return
        if raw == b"HANGUP":
            self._hangup("HANGUP from Asterisk")
            return
        if self._head is None:
            return  # nothing asked: stray line (or an answer after HANGUP); ignore it
        if raw.startswith(b"520-"):
            self._usage = [raw[4:].decode("utf-8", "replace")]
            return
        result = parse_result_bytes(raw)
        request = self._pop()
        code = result.code
        if code == 200:
            r = result.result
            flags = request.flags
            if r is None or r >= 0 or not flags:
                request.complete(result)
            elif r == -1 and flags & MINUS_ONE_HANGS_UP:
                request.fail(CallerHungUp(f"caller hung up ({result.line})"))
            elif r == -2 and flags & MINUS_TWO_FAILS:
                request.fail(AGICommandFailed("no such application", result))
            else:
                request.complete(result)
        elif code == 511:
            request.fail(CallerHungUp(result.line))
        elif code == 510:
            request.fail(AGIInvalidCommand(result.line))
        elif code == 520:
            request.fail(AGIUsageError(result.data or ""))
        else:
            request.fail(AGICommandFailed(f"unexpected AGI answer {result.line!r}", result))

    def _hangup(self, why: str) -> None:
        """The channel is gone: fail what is waiting and close now, so Asterisk's AGI thread is released."""
        self.dead = True
        if not self._closing:
            self._closing = True
            self.transport.loseConnection()  # type: ignore[misc]
        self._fail_all(why)

    def _fail_all(self, why: str) -> None:
        head, queue = self._head, self._queue
        self._head = self._queue = None
        self._usage = None
        if head is not None:
            head.fail(CallerHungUp(why))
        for request in queue or ():
            request.fail(CallerHungUp(why))
