"""A small Redis client on Twisted for the call path's round trips (the number-cache lookup, the store after a miss).

Why not redis.asyncio there: measured side by side on the routed-call benchmark (``bench_route --ab``; figures in
the README, "The routed call's own I/O"), one lookup costs 26 µs of CPU here against 83 µs through redis-py's
asyncio client with hiredis from the routing service (command packing, pool checkout, retry wrapper, and the
asyncio Task a Twisted-driven coroutine needs to await it): +0.08 ms CPU per cache hit, +0.14 ms per miss, and a
longer tail against the hit p99 ≤ 1 ms target. This client speaks just what the call path needs:
RESP2 requests pipelined on one connection, replies matched in order, each request bounded by a timeout, and
the connection set up with ``AUTH`` / ``SELECT`` from the same ``redis://`` URL. Everything else in ccserver
(stores, invalidations, live state, leases, pub/sub) keeps using redis-py.

When it is not connected a request fails at once (``RespUnavailable``): the caller falls back (the routing
service then asks SQL), and the connection is retried in the background with capped backoff. A request with no
reply within ``timeout`` drops the connection — replies come in order, so after a lost one none can be trusted —
and fails everything pending on it. Values never carry CR/LF problems: RESP frames every argument by length.

**Every command is answered, and a reply can be checked.** Replies are matched to requests by position, so this
client never sends a command it does not read the reply of (no ``CLIENT REPLY SKIP``: a proxy or an old Redis
that does not honour it answers anyway, and every later reply would go to the request before it). On top of
that a request may carry ``check(reply) -> bool`` (the cache's scripts answer with the number they looked up):
a reply that fails it is a stream out of step — the request fails with ``RespOutOfStep``, everything pending
fails, and the connection is dropped, so no caller is ever handed another caller's reply.

**A request can wait for company.** ``request_behind(..., within=s)`` holds the command back and writes it in
front of the next ``request`` on the connection — one ``send``, one wake of Redis, both replies read together —
or, when none comes first, ``s`` seconds later (one timer, left armed rather than cancelled). Its reply is
matched, checked and timed out like any other. The cache store after a miss goes this way (with the next
caller's lookup): on the routed-call benchmark its own send and reply were a tenth of a cache miss's server
CPU. ``RespClient.stop`` writes what is held before closing; a connection lost fails it with the rest.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Factory, Protocol

from ccserver.netio import write_through

__all__ = ["RespClient", "RespError", "RespOutOfStep", "RespProtocol", "RespUnavailable", "ScriptDigest",
           "encode_command", "parse_reply", "redis_address"]

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a reply larger than this is a protocol error here (lookups are ~300 bytes)


class RespError(Exception):
    """An error reply from Redis (``-ERR …``, ``-NOSCRIPT …``)."""


class RespUnavailable(ConnectionError):
    """No connection to Redis right now, or it was lost with the request pending."""


class RespOutOfStep(RespUnavailable):
    """A reply that is not the answer to the request it came for (its ``check`` failed): the connection's reply
    stream is out of step, so it is dropped with everything pending on it."""


class _Incomplete(Exception):
    pass


_INCOMPLETE = _Incomplete()


def parse_reply(buf: bytes | bytearray, pos: int = 0) -> tuple[Any, int]:
    """One RESP2 reply from ``buf[pos:]``: (value, position after it). Bulk strings are bytes, nil is None,
    an error reply is a :class:`RespError` *value*. Raises ``_Incomplete`` when more bytes are needed and
    ValueError on bytes that are not RESP."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > 64 * 1024:
            raise ValueError("RESP header line too long")
        raise _INCOMPLETE
    kind = buf[pos]
    head = bytes(buf[pos + 1:end])
    nxt = end + 2
    if kind == 0x24:  # $ bulk string
        size = int(head)
        if size < 0:
            return None, nxt
        if size > MAX_REPLY_BYTES:
            raise ValueError(f"RESP bulk string of {size} bytes")
        if len(buf) < nxt + size + 2:
            raise _INCOMPLETE
        if buf[nxt + size:nxt + size + 2] != b"\r\n":
            raise ValueError("RESP bulk string not terminated by CRLF")
        return bytes(buf[nxt:nxt + size]), nxt + size + 2
    if kind == 0x3A:  # : integer
        return int(head), nxt
    if kind == 0x2A:  # * array
        count = int(head)
        if count < 0:
            return None, nxt
        if count > MAX_REPLY_BYTES // 4:
            raise ValueError(f"RESP array of {count} items")
        items = []
        for _ in range(count):
            item, nxt = parse_reply(buf, nxt)
            items.append(item)
        return items, nxt
    if kind == 0x2B:  # + simple string
        return head.decode("utf-8", "replace"), nxt
    if kind == 0x2D:  # - error
        return RespError(head.decode("utf-8", "replace")), nxt
    raise ValueError(f"not a RESP reply: {bytes(buf[pos:pos + 16])!r}")


def _arg(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode("ascii")
    raise TypeError(f"Redis argument must be bytes, str, int or float, not {type(value).__name__}")


def encode_command(args: tuple[object, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for value in args:
        data = value.encode("utf-8") if type(value) is str else _arg(value)  # str, the usual argument: inline
        append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespProtocol(Protocol):
    """Pipelined requests on one connection; ``request`` returns a Deferred fired with the reply (an error
    reply fails it with RespError, a reply its ``check`` refuses with RespOutOfStep)."""

    def __init__(self, clock: Any, timeout: float) -> None:
        self._clock = clock
        self._timeout = timeout
        self._buf = bytearray()
        # (reply, answer due by, check or None) in request order
        self._pending: deque[tuple[Deferred[Any], float, Callable[[Any], bool] | None]] = deque()
        self._sweeper: Any = None  # one timer for all pending requests, not one per request
        self._lost = False
        self._held: list[bytes] = []  # requests held back (request_behind): written before the next request
        self._flusher: Any = None  # the timer that writes them when no request comes first

    def unwrapped(self) -> RespProtocol:
        """This protocol itself: what ``ClientService`` hands its set-up is a proxy that forwards every attribute
        through ``__getattr__`` (several per routed call); the client keeps the protocol behind it."""
        return self

    def connectionMade(self) -> None:
        # Small requests, one after another: Nagle would hold one back until the previous is acknowledged, and
        # after an unanswered command that acknowledgement is a delayed ACK (40 ms).
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            try:
                set_no_delay(True)
            except OSError:  # a UNIX socket
                pass

    def request(self, *args: object, check: Callable[[Any], bool] | None = None) -> Deferred[Any]:
        """Send one command; its reply (or error reply) fires the Deferred. ``check``: see the module docstring."""
        if self._lost or self.transport is None:
            return fail(RespUnavailable("Redis connection closed"))
        data = encode_command(args)
        d: Deferred[Any] = Deferred()
        self._pending.append((d, self._clock.seconds() + self._timeout, check))
        if self._sweeper is None:
            self._sweeper = self._clock.callLater(self._timeout, self._sweep)
        if self._held:  # requests held back go first, in the same write: their replies come first too
            self._held.append(data)
            data = b"".join(self._held)
            self._held.clear()
        write_through(self.transport, data)
        return d

    def request_behind(self, *args: object, within: float, check: Callable[[Any], bool] | None = None
                       ) -> Deferred[Any]:
        """``request``, but written with the next request on this connection — one write, one wake of Redis,
        the replies read together — or at most ``within`` seconds from now when none comes first (see the
        module docstring: the store after a cache miss). Its reply is awaited, checked and timed out like any
        other (the timeout counted from when it is written at the latest)."""
        if self._lost or self.transport is None:
            return fail(RespUnavailable("Redis connection closed"))
        d: Deferred[Any] = Deferred()
        self._pending.append((d, self._clock.seconds() + within + self._timeout, check))
        if self._sweeper is None:
            self._sweeper = self._clock.callLater(within + self._timeout, self._sweep)
        self._held.append(encode_command(args))
        if self._flusher is None:
            # Left armed when a request writes the held ones first: one timer per ``within`` at most, none
            # created or cancelled per request.
            self._flusher = self._clock.callLater(within, self._flush)
        return d

    def _flush(self) -> None:
        self._flusher = None
        self.flush()

    def flush(self) -> None:
        """Write the requests held back now."""
        if self._held and not self._lost and self.transport is not None:
            data = b"".join(self._held)
            self._held.clear()
            write_through(self.transport, data)

    def _sweep(self) -> None:
        """The oldest request is the first to be late (replies come in order)."""
        self._sweeper = None
        if not self._pending or self._lost:
            return
        due = self._pending[0][1]
        now = self._clock.seconds()
        if now >= due:
            log.warning("Redis did not answer within %.2f s; reconnecting", self._timeout)
            self._abort(RespUnavailable(f"no reply from Redis within {self._timeout:.2f} s"))
        else:
            self._sweeper = self._clock.callLater(due - now, self._sweep)

    def dataReceived(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        try:
            while pos < len(buf) and self._pending and not self._lost:
                value, pos = parse_reply(buf, pos)
                d, _, check = self._pending.popleft()
                if isinstance(value, RespError):
                    d.errback(value)
                elif check is not None and not check(value):
                    log.error("Redis answered a request with another request's reply; reconnecting")
                    error = RespOutOfStep("Redis reply does not match its request")
                    self._abort(error)
                    d.errback(error)
                    return
                else:
                    d.callback(value)
        except _Incomplete:
            pass
        except ValueError as exc:
            log.error("Redis sent a malformed reply (%s); reconnecting", exc)
            self._abort(RespUnavailable(f"malformed reply from Redis: {exc}"))
            return
        if self._lost:  # a callback dropped the connection: what is left belongs to nobody
            return
        if pos:
            del buf[:pos]
        if buf and not self._pending:
            log.error("Redis sent %d bytes nobody asked for; reconnecting", len(buf))
            self._abort(RespUnavailable("unexpected data from Redis"))

    def _abort(self, error: Exception) -> None:
        self._fail_pending(error)
        if self.transport is not None:
            self.transport.abortConnection()

    def _fail_pending(self, error: Exception) -> None:
        self._lost = True
        if self._sweeper is not None and self._sweeper.active():
            self._sweeper.cancel()
        self._sweeper = None
        if self._flusher is not None and self._flusher.active():
            self._flusher.cancel()
        self._flusher = None
        self._held.clear()  # never written: their requests fail below with the rest
        pending, self._pending = self._pending, deque()
        for d, _, _ in pending:
            d.errback(error)

    def connectionLost(self, reason: Any = None) -> None:
        self._fail_pending(RespUnavailable("Redis connection lost"))


def redis_address(url: str) -> tuple[str, Any, dict[str, Any]] | None:
    """``redis://[user:password@]host[:port][/db]`` or ``unix:///path[?db=N]`` → ("tcp", (host, port), setup)
    or ("unix", path, setup), setup holding ``username``, ``password`` and ``db``. None for what this client
    does not speak (``rediss://`` TLS): the caller keeps redis-py for it."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    setup = {"username": unquote(parts.username) if parts.username else None,
             "password": unquote(parts.password) if parts.password else query.get("password"),
             "db": int(query.get("db") or (parts.path.strip("/") if parts.scheme == "redis" else "") or 0)}
    if parts.scheme == "redis":
        return "tcp", (parts.hostname or "localhost", parts.port or 6379), setup
    if parts.scheme == "unix":
        return "unix", parts.path, setup
    return None


class RespClient:
    """One managed connection (Twisted ``ClientService``: reconnects with capped backoff), set up with AUTH and
    SELECT before it is used."""

    def __init__(self, reactor: Any, url: str, *, timeout: float = 1.0, connect_timeout: float = 1.0) -> None:
        from twisted.application.internet import ClientService, backoffPolicy
        from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint

        address = redis_address(url)
        if address is None:
            raise ValueError(f"unsupported Redis URL scheme for the call-path client: {urlsplit(url).scheme}")
        kind, where, self._setup = address
        if kind == "tcp":
            endpoint: Any = TCP4ClientEndpoint(reactor, where[0], where[1], timeout=connect_timeout)
        else:
            endpoint = UNIXClientEndpoint(reactor, where, timeout=connect_timeout)
        self.timeout = timeout  # a request fails by itself this long after it was sent
        self._protocol: RespProtocol | None = None
        factory: Any = Factory.forProtocol(lambda: RespProtocol(reactor, timeout))  # type: ignore[arg-type]
        self._service = ClientService(endpoint, factory, retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=30.0),
                                      clock=reactor, prepareConnection=self._prepare)

    @classmethod
    def for_url(cls, reactor: Any, url: str, **kwargs: Any) -> RespClient | None:
        """A client, or None when the URL is one this client does not speak (``rediss://``)."""
        return cls(reactor, url, **kwargs) if redis_address(url) is not None else None

    async def _prepare(self, protocol: RespProtocol) -> None:
        setup = self._setup
        if setup["password"]:
            auth = (setup["username"], setup["password"]) if setup["username"] else (setup["password"],)
            await protocol.request("AUTH", *auth)
        if setup["db"]:
            await protocol.request("SELECT", setup["db"])
        self._protocol = protocol.unwrapped()
        log.info("call-path Redis client connected")

    def start(self) -> None:
        self._service.startService()

    def when_connected(self) -> Deferred[Any]:
        """Fires once a connection is up and set up (AUTH / SELECT done)."""
        return self._service.whenConnected()  # type: ignore[no-any-return]

    def stop(self) -> Deferred[None]:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.flush()  # requests held back (a cache store) still reach Redis
        return self._service.stopService()  # type: ignore[no-any-return]

    @property
    def connected(self) -> bool:
        p = self._protocol
        return p is not None and not p._lost

    def request(self, *args: object, check: Callable[[Any], bool] | None = None) -> Deferred[Any]:
        protocol = self._protocol
        if protocol is None or protocol._lost:
            return fail(RespUnavailable("not connected to Redis"))
        return protocol.request(*args, check=check)

    def request_behind(self, *args: object, within: float, check: Callable[[Any], bool] | None = None
                       ) -> Deferred[Any]:
        """``RespProtocol.request_behind``: written with the next request, or within ``within`` seconds."""
        protocol = self._protocol
        if protocol is None or protocol._lost:
            return fail(RespUnavailable("not connected to Redis"))
        return protocol.request_behind(*args, within=within, check=check)


class ScriptDigest:
    """A Lua script and the SHA-1 digest Redis names it by (``EVALSHA``)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
