"""HTTP connections that cannot be held open for free (slowloris).

twisted.web closes a connection that has been silent for the factory's ``timeout`` (``http.idle_timeout``),
but any byte resets that: a client that sends one header byte every few seconds holds its connection, and a
slot, for ever. So each request also gets a deadline for its headers (``http.header_timeout``), counted from the
moment the connection opens (a connection must start with a request) and, on a kept-alive connection, from the
first byte of the next request (an idle kept-alive connection is the idle timeout's business). Past the deadline
the connection is closed (twisted.web's own timeout path: close, then abort if the client does not let go).
Timers run on the factory's reactor, so tests drive them with ``task.Clock``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server

from ccserver.metrics import REGISTRY
from ccserver.web.http import MAX_BODY_BYTES

TIMEOUTS = REGISTRY.counter(
    "ccserver_http_timeouts_total",
    "HTTP connections closed by a timeout: reason=header (request headers not complete in http.header_timeout) "
    "or idle (nothing received for http.idle_timeout)",
)
_TOO_LARGE_BODY = b'{"error": "request body too large"}'
_TOO_LARGE = (b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: "
              + str(len(_TOO_LARGE_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + _TOO_LARGE_BODY)
BODIES_REFUSED = REGISTRY.counter(
    "ccserver_http_bodies_refused_total",
    "HTTP requests refused 413 before their body was read: a declared or chunked body over the 1 MiB cap",
)


class GuardedChannel(http.HTTPChannel):
    """An HTTPChannel with a deadline for each request's headers, besides the idle timeout, and a cap on a request's
    body: a declared ``Content-Length`` over ``max_body`` — or a chunked body that grows past it — is answered 413
    and the connection closed at once, before the body is read (twisted.web would take it all, spooled to a temporary
    file past 100 KB, and the router then refused it: a client could fill the disk, or hold the connection)."""

    header_timeout: float = 10.0
    max_body: int = MAX_BODY_BYTES

    def __init__(self) -> None:
        super().__init__()
        self._header_deadline: Any = None
        self._between_requests = False
        self.refused = False

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.callLater(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        TIMEOUTS.inc(reason="header")
        super().timeoutConnection()

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        super().connectionMade()
        self._arm()

    def allHeadersReceived(self) -> None:  # noqa: N802
        self._disarm()
        super().allHeadersReceived()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self.refused:
            return  # answered 413 and closing: what else arrives is not read
        if self._between_requests and data:
            self._between_requests = False
            self._arm()  # the next request on a kept-alive connection has begun
        super().dataReceived(data)

    def too_large(self) -> None:
        """Answer 413 now and close: called by the request (``CappedRequest``) as soon as its body is over the cap."""
        if self.refused:
            return
        self.refused = True
        BODIES_REFUSED.inc()
        transport: Any = self.transport
        if transport is not None:
            transport.write(_TOO_LARGE)
            transport.loseConnection()

    def requestDone(self, request: Any) -> None:  # noqa: N802
        # Before the parent's: it replays pipelined bytes through dataReceived, which must see a new request.
        self._between_requests = True
        super().requestDone(request)

    def timeoutConnection(self) -> None:  # noqa: N802
        TIMEOUTS.inc(reason="idle")
        super().timeoutConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._disarm()
        super().connectionLost(reason)


class CappedRequest(server.Request):
    """A request of a ``GuardedChannel`` whose body may not pass its ``max_body``: a larger declared
    ``Content-Length`` is refused before anything is read (not even its temporary file made), a chunked body the
    moment it passes the cap. Once refused, the channel's ``refused`` says so to all of it."""

    channel: GuardedChannel
    _seen = 0

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        if length is not None and length > self.channel.max_body:
            self.channel.too_large()
            length = 0  # an empty in-memory body: nothing spooled to disk
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        if self.channel.refused:
            return
        self._seen += len(data)
        if self._seen > self.channel.max_body:
            self.channel.too_large()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        if self.channel.refused:
            return  # already answered 413: never handed to the router
        super().requestReceived(command, path, version)


class GuardedSite(server.Site):
    """A Site whose connections are ``GuardedChannel`` s. No access log: request lines carry query strings
    (phone numbers in ``/api/customers/lookup?phone=``), and nothing here reads Twisted's log anyway."""

    def __init__(self, resource: Any, *, header_timeout: float, idle_timeout: float, reactor: Any = None):
        super().__init__(resource, timeout=idle_timeout, reactor=reactor)
        self.header_timeout = header_timeout

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 - Twisted's name
        channel = super().buildProtocol(addr)
        channel.header_timeout = self.header_timeout
        return channel

    requestFactory = CappedRequest

    def protocol(self) -> GuardedChannel:  # type: ignore[override]  # HTTPFactory calls self.protocol()
        return GuardedChannel()

    def log(self, request: Any) -> None:
        return None
