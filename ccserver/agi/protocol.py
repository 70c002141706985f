"""The FastAGI wire protocol, server side: the ``agi_*`` header, then one command / one answer at a time.

Kept lean on purpose -- every round trip is server CPU (~60 us), so the hot path avoids regexes, decodes
only what it must, shares the common answer objects, and never logs per line.

**What counts as an answer.** Asterisk writes its header, then nothing until it has read a command, then
exactly one answer per command (``NNN ...``, a ``520-`` block, and at any time an unsolicited ``HANGUP``).
So a line answers the command in flight only if that command had been written before the line's first
byte arrived, and only the first such line does: bytes that came while nothing was asked, a second answer-
shaped line in the read that carried the answer, and lines not shaped like an answer are *stray* --
discarded and counted (``ccserver_agi_stray_lines_total``), never matched to the next command. Without
this, a caller ID ending in a newline ended the header early, the rest of the header was taken as the
answer to the first command, and the default variables went out while Asterisk had not answered yet.
**The header** ends at its blank line, unless what follows in the same read holds more ``agi_`` lines:
then the blank line was inside a value, and the header runs on to the next blank line (``env`` says which
of a repeated key wins).
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
from ccserver.agi.errors import AGICommandFailed, AGIInvalidCommand, AGITimeout, AGIUsageError, CallerHungUp
from ccserver.agi.metrics import COMMAND_TIMEOUTS, ERRORS, SESSION_SECONDS, SESSIONS, STRAY_LINES
from ccserver.agi.request import AGIRequest, HandlerRunner
from ccserver.agi.results import parse_result, parse_result_bytes
from ccserver.agi.session import MINUS_ONE_HANGS_UP, MINUS_TWO_FAILS, AGISession
from ccserver.logs import caller_number, log_text
from ccserver.netio import close_through, read_through, write_through

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


def _answer_shaped(raw: bytes) -> bool:
    """``NNN``, ``NNN text`` or ``NNN-text``: the only lines Asterisk answers a command with."""
    return len(raw) >= 3 and raw[:3].isdigit() and (len(raw) == 3 or raw[3] in b" -")


def _more_header(buf: bytes | bytearray, start: int) -> bool:
    """Whether the bytes from ``start`` (after a blank line, same read) hold another ``agi_`` line."""
    return buf.startswith(b"agi_", start) or buf.find(b"\nagi_", start) >= 0


def _header_end(buf: bytes | bytearray, start: int) -> tuple[int, int]:
    """(offset of the blank line ending the header, its length), or (-1, 0); CRLF tolerated (Asterisk sends LF)."""
    end = buf.find(b"\n\n", start)
    if end >= 0:
        return end, 2
    end = buf.find(b"\r\n\r\n", start)
    return (end, 4) if end >= 0 else (-1, 0)


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
        # Which bytes may answer the command in flight: every command written gets the next sequence number;
        # a read may answer the head only if the head's number is at most the count of commands written when
        # the read arrived (for a line begun in an earlier read: when that read arrived).
        self._writes = 0
        self._head_seq = 0
        self._buf_arrival = 0
        # The factory's command sweep: the head it saw last and when (see FastAGIFactory._sweep_commands).
        self.swept_head: AGIRequest | None = None
        self.swept_at = 0.0

    @property
    def use_mset(self) -> bool:
        return self.factory.use_mset

    @property
    def command_timeout(self) -> float:
        return self.factory.command_timeout

    def mset_unavailable(self) -> None:
        self.factory.mset_unavailable()

    # -- connection ----------------------------------------------------------------------------------
    def connectionMade(self) -> None:
        factory = self.factory
        self.connected_at = factory.clock.seconds()
        factory.watch_header(self)
        # Asterisk writes its agi_* block as soon as it is connected: usually here already (netio.read_through).
        read_through(self.transport)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.dead = self._closing = self._lost = True
        if self.session is None:
            self.factory.unwatch_header(self)
            return
        self.factory.unwatch_session(self)
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
            # Fast path, nearly every read: exactly one "200 result=0|1" answer for the command in flight
            # (written before this read arrived, since it was in flight when the read began).
            if data == _ANSWER_1:
                self._pop().complete(_RESULT_1)
                return
            result = _PLAIN_ANSWERS.get(data)
            if result is not None:
                self._pop().complete(result)
                return
        self._answer_data(data, self._writes)

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
            end, skip = _header_end(buf, start)
            while end >= 0 and end + skip < len(buf) and _more_header(buf, end + skip):
                # More agi_ lines after the blank line, in the same read: the blank line was inside a value
                # (a caller ID ending in a newline). Asterisk sends nothing after its header until it has
                # read a command, so this is still the header: it runs on to the next blank line.
                end, skip = _header_end(buf, end + skip)
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
        if end + skip < len(buf):
            # Something after the header in the same read: it came before any command, so it answers none
            # (an unsolicited HANGUP is still honoured).
            self._answer_data(bytes(buf[end + skip :]), 0)

    def header_timeout(self) -> None:
        """Called by the factory's header watch when the agi_* block did not arrive in time."""
        if self.session is None and not self._closing:
            self._drop("header timeout")

    def _drop(self, reason: str) -> None:
        self.dead = self._closing = True
        self._buf = b""
        self.factory.dropped(reason, self.transport)
        # abort, not lose: a half-open peer may never read, so nothing must wait on it
        self.transport.abortConnection()  # type: ignore[misc]

    # -- session -------------------------------------------------------------------------------------
    def _start(self, header: bytes) -> None:
        script = find_script(header)
        self.session = session = AGISession(self, header, script)
        SESSIONS.inc()
        self.factory.watch_session(self)
        handler = self.factory.handlers.get(script)
        if handler is None:
            ERRORS.inc()
            log.warning("FastAGI script %s has no handler (uniqueid=%s): default variables", log_text(script, 64),
                        log_text(session.uniqueid, 64))
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
        if failure.check(CallerHungUp, AGITimeout):
            # The caller left: the normal end of many calls, not an error, and not logged (a command timeout
            # was logged and counted when it closed the connection). Its traceback holds the handler's
            # frames, which hold the exception: dropped, they are freed now, not by the GC.
            failure.value.__traceback__ = None
            failure.tb = None
            self._close()
            return
        ERRORS.inc()
        session = self.session
        log.error(
            "FastAGI handler %s failed (uniqueid=%s, callerid=%s): %s",
            log_text(session.script, 64) if session else "?",
            log_text(session.uniqueid, 64) if session else "?",
            caller_number(session.callerid, log) if session else "?",
            log_text(failure.getErrorMessage(), 300),
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
            log.debug("default variables not written: %s", log_text(failure.getErrorMessage(), 300))
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
            # At once when nothing is left to write (netio.close_through): connectionLost runs before this returns.
            close_through(self.transport)
        # else: closed by _pop once the queued commands have been answered

    # -- commands ------------------------------------------------------------------------------------
    def send(self, data: bytes, flags: int, timeout: float | None = None) -> AGIRequest:
        if self.dead:
            return AGIRequest.failed(CallerHungUp("the channel is gone; command not sent"))
        request = AGIRequest(data, flags, timeout)
        if self._head is None:
            self._head = request
            self._writes = self._head_seq = self._writes + 1
            write_through(self.transport, data)
        elif self._queue is None:
            self._queue = deque((request,))
        else:
            self._queue.append(request)
        return request

    def _answer_data(self, data: bytes, arrival: int) -> None:
        """Lines after the header. ``arrival``: how many commands had been written when ``data`` arrived."""
        partial = self._buf
        first_arrival = arrival
        if partial:
            first_arrival = self._buf_arrival  # the line under way began in an earlier read
            if type(partial) is bytes:
                partial = bytearray(partial)
            partial += data
            if b"\n" not in data:  # still no end of line: look at the new bytes only (linear, not quadratic)
                if len(partial) > MAX_ANSWER_LINE:
                    self._buf = b""
                    ERRORS.inc()
                    log.warning("FastAGI peer sent an over-long line; closing (uniqueid=%s)",
                                log_text(self._uniqueid(), 64))
                    self._hangup("over-long answer line")
                else:
                    self._buf = partial
                return
            data = bytes(partial)
        lines = data.split(b"\n")
        self._buf = rest = lines.pop()
        if rest:
            self._buf_arrival = arrival  # the line now under way began in this read
        if len(rest) > MAX_ANSWER_LINE:
            self._buf = b""
            ERRORS.inc()
            self._hangup("over-long answer line")
        for raw in lines:
            self._line(raw, first_arrival)
            first_arrival = arrival

    def _uniqueid(self) -> str:
        return self.session.uniqueid if self.session is not None else "?"

    def _stray(self) -> None:
        if not self._closing:  # after a hangup or a drop the remaining lines are of no interest
            STRAY_LINES.inc()
            self.factory.stray_line(self._uniqueid())

    def _pop(self) -> AGIRequest:
        """Take the answered head; write the next queued command, or close if the handler is done."""
        head = self._head
        assert head is not None  # callers check that a command is in flight
        queue = self._queue
        if queue:
            self._head = nxt = queue.popleft()
            self._writes = self._head_seq = self._writes + 1
            write_through(self.transport, nxt.data)
        else:
            self._head = None
            if self._closing and self.transport is not None:
                close_through(self.transport)
        return head

    def _line(self, raw: bytes, arrival: int) -> None:
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
        if self._head is None or self._head_seq > arrival or not _answer_shaped(raw):
            # Nothing asked when this line came, the command in flight was written after it came (the answer
            # in this read was taken already), or not an answer at all: never matched to a command.
            self._stray()
            return
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

    def command_timed_out(self, waited: float) -> None:
        """Called by the factory's command sweep: the command in flight has had no answer for ``waited`` s.
        Asterisk may still answer it later, so nothing more can be sent on this connection: it is aborted
        (not closed gracefully: a peer that does not answer may not read either), and the handler's await
        raises AGITimeout."""
        head = self._head
        if head is None or self._lost:
            return
        COMMAND_TIMEOUTS.inc()
        ERRORS.inc()
        verb = b" ".join(head.data.split(b" ", 2)[:2]).rstrip(b"\n").decode("ascii", "replace")
        log.warning("FastAGI command %s not answered within %.0f s; closing the connection (uniqueid=%s)",
                    log_text(verb, 40), waited, log_text(self._uniqueid(), 64))
        self.dead = self._closing = True
        queue = self._queue
        self._head = self._queue = None
        self._usage = None
        self.transport.abortConnection()  # type: ignore[misc]
        head.fail(AGITimeout(f"no answer to {verb} within {waited:.0f} s"))
        for request in queue or ():
            request.fail(CallerHungUp("connection closed after a command timeout"))

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
