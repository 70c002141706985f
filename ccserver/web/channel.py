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

TIMEOUTS = REGISTRY.counter(
    "ccserver_http_timeouts_total",
    "HTTP connections closed by a timeout: reason=header (request headers not complete in http.header_timeout) "
    "or idle (nothing received for http.idle_timeout)",
)


class GuardedChannel(http.HTTPChannel):
    """An HTTPChannel with a deadline for each request's headers, besides the idle timeout."""

    header_timeout: float = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._header_deadline: Any = None
        self._between_requests = False

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

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self._between_requests and data:
            self._between_requests = False
            self._arm()  # the next request on a kept-alive connection has begun
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:  # noqa: N802
        self._disarm()
        super().allHeadersReceived()

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

    def protocol(self) -> GuardedChannel:  # type: ignore[override]  # HTTPFactory calls self.protocol()
        return GuardedChannel()

    def log(self, request: Any) -> None:
        return None
