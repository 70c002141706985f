"""The call path's customer lookup on PostgreSQL, run on the event loop (psycopg's libpq connection, driven here).

Why: a cache miss sent the lookup to a worker thread through SQLAlchemy. The one SELECT itself is cheap for
PostgreSQL, but the Python around it (session, pool checkout with its ping, BEGIN / COMMIT, result objects) and
the hop into the thread and back cost more server CPU than the rest of the routed call together (py-spy on the
routed-call benchmark: ~0.8 ms in the thread, plus the hop and GIL hand-overs on the loop). Here the same query
— compiled once from the directory's own statement (``directory.by_number_sql``) — runs on a few autocommit
connections on the loop: one round trip to a server-side prepared statement (``PREPARE``d once per connection,
positional parameters), and the rows go through the directory's own ``identity_from_rows``, so both paths answer
alike.

Why the connections are driven here and not through psycopg's cursors and ``psycopg_pool``: a lookup through
``AsyncConnectionPool.getconn`` / ``conn.cursor()`` / ``execute`` / ``fetchall`` / ``putconn`` cost ~200 µs of
CPU, most of it around the one round trip — the pool's checkout and return, the connection lock, a cursor and
row factory per lookup, and psycopg's wait on the socket (a reader added and removed — two ``epoll_ctl`` — a
future and a timer per query). Each connection here is a psycopg ``AsyncConnection`` (connecting, its type
loaders) whose libpq connection (``conn.pgconn``) gets the prepared statement sent directly, its socket's reader
left registered on the loop for the connection's life, and the rows loaded by psycopg's ``Transformer``: ~70 µs
per lookup measured alone (one ``sendto``, one ``recvfrom``, one ``epoll_wait``). ``identify_deferred``, which the
routing service awaits on a cache miss, fires its Deferred from that reader, so the routed call carries on in
the same loop step as the answer arrives. (On the routed-call benchmark side by side, 8 rounds × 1,000 calls:
the cache miss's server CPU 1.40 -> 0.90 ms with this and the smaller changes made alongside, hits unchanged.)

The lookup owns at most ``max_connections`` connections, opened on demand. A lookup takes an idle one, or opens
one while there are fewer, or waits (in order) at most ``acquire_timeout`` seconds for one to come back, else
``LookupBusy``. A connection that breaks — during a lookup, or while idle (its reader sees the server close it)
— is closed and its place freed; the lookup it broke under is tried once more on a newly opened connection (a
restarted database costs no caller their tier). So is a lookup whose prepared statement went stale (a migration
changed a returned column's type: "cached plan must not change result type"), that connection dropped. A query
PostgreSQL refuses otherwise (a statement timeout, say) is raised as it is, the connection kept; a lookup
cancelled with its query under way closes its connection. What is raised goes to the routing service, which
routes without customer data.

Read only. Creating a prospect for an unknown number stays with ``CustomerDirectory.identify`` in a worker
thread (a transaction with race handling, and rarer).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from twisted.internet.defer import Deferred

from ccserver.bridge import as_deferred
from ccserver.customers.directory import CustomerDirectory, Identity, by_number_sql
from ccserver.db.engine import psycopg_connect_kwargs

__all__ = ["LookupBusy", "LoopLookup"]

log = logging.getLogger(__name__)


_E164 = object()  # where the caller's number goes among the positional parameters
_STATEMENT = b"ccserver_customer_by_number"
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_OK = pq.ConnStatus.OK
_BAD = pq.ConnStatus.BAD
_IDLE = pq.TransactionStatus.IDLE
# SQLSTATEs after which the connection's prepared statement cannot serve again: feature_not_supported ("cached
# plan must not change result type", after a column's type changed) and invalid_sql_statement_name (gone).
_STALE_STATEMENT = frozenset({"0A000", "26000"})


Done = Callable[[list[Any] | None, BaseException | None], None]


class LookupBusy(psycopg.OperationalError):
    """No connection for the lookup within ``acquire_timeout``: every one busy (a slow or hung database)."""


def _positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``%(name)s`` placeholders as ``$1``, ``$2``… with the values in order (nothing to map per execution)."""
    values: list[Any] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        values.append(_E164 if name == "e164" else params[name])
        return f"${len(values)}"

    return re.sub(r"%\((\w+)\)s", one, sql), values


def _text(value: Any) -> bytes:
    """A fixed parameter in PostgreSQL's text format."""
    if isinstance(value, bool):
        return b"t" if value else b"f"
    return str(value).encode()


def _settle(future: asyncio.Future[list[Any]], results: list[Any] | None, error: BaseException | None) -> None:
    if future.done():  # cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(results or [])


class _Connection:
    """One of the lookup's connections: the prepared statement sent on its libpq connection, the answer read by
    a reader registered on the loop for the connection's whole life (so a server closing it while idle is seen
    at once)."""

    __slots__ = ("conn", "pgconn", "fd", "loop", "transformer", "typed", "waiter", "results", "broken", "gone",
                 "_lost")

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop,
                 lost: Any) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.fd = self.pgconn.socket
        self.loop = loop
        self.transformer = Transformer(conn)
        self.typed = False  # the transformer's column loaders set (from this connection's first rows)
        self.waiter: Done | None = None  # called once with the query's results, or its error
        self.results: list[Any] = []
        self.broken = False  # failed: to be closed
        self.gone = False  # closed, or being closed: never handed out again
        self._lost = lost  # the owner's callback for a connection that broke while idle
        loop.add_reader(self.fd, self._readable)

    def query(self, values: list[bytes | None], done: Done) -> None:
        """Send the prepared statement; ``done(results, None)`` once they are all in — called from the reader,
        the connection idle again — or ``done(None, error)`` (an OperationalError: the connection broke).
        Raises OperationalError when it cannot be sent."""
        pgconn = self.pgconn
        try:
            pgconn.send_query_prepared(_STATEMENT, values)
        except BaseException:
            self.broken = True
            raise
        self.waiter = done
        if pgconn.flush():  # the socket's buffer is full (never seen for one small message): the rest when writable
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            if self.pgconn.flush() == 0:
                self.loop.remove_writer(self.fd)
        except psycopg.OperationalError as exc:
            self._broken(exc)

    def _readable(self) -> None:
        pgconn = self.pgconn
        try:
            pgconn.consume_input()
            if self.waiter is None:  # idle: a notice, or the server closing the connection
                if pgconn.status == _BAD:
                    self._broken(psycopg.OperationalError("the server closed the connection"))
                return
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:  # the query's results are all in
                    done, self.waiter = self.waiter, None
                    results, self.results = self.results, []
                    done(results, None)  # may send the next query on this connection: nothing more here
                    return
                self.results.append(result)
        except psycopg.OperationalError as exc:
            self._broken(exc)

    @property
    def usable(self) -> bool:
        """Nothing under way and nothing wrong: it can serve the next lookup."""
        pgconn = self.pgconn
        return (self.waiter is None and not self.broken and not self.gone and pgconn.status == _OK
                and pgconn.transaction_status == _IDLE)

    def _broken(self, exc: BaseException) -> None:
        self.broken = True
        done, self.waiter = self.waiter, None
        if done is not None:
            done(None, exc)  # the lookup discards the connection
        else:
            self._lost(self, exc)

    def close(self) -> None:
        """Off the loop, then closed at once (``PQfinish``, as ``AsyncConnection.close`` does)."""
        if self.gone:
            return
        self.gone = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.waiter = None  # a query under way belongs to a lookup no one awaits any more (cancelled)
        self.pgconn.finish()


class LoopLookup:
    """``identify(e164)`` on at most ``max_connections`` autocommit connections of its own (module docstring);
    ``aclose()`` at shutdown."""

    def __init__(self, directory: CustomerDirectory, connect_kwargs: dict[str, Any], sql: str,
                 params: list[Any], *, max_connections: int = 4, acquire_timeout: float = 2.0,
                 statement_timeout: float = 2.0) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._directory = directory
        # connect_timeout: a database host that does not answer must not hold a connection slot for minutes.
        self._connect_kwargs = {"connect_timeout": 2, **connect_kwargs, "autocommit": True}
        # statement_timeout: a lookup behind a lock must not hold its connection until the lock goes, nor — when
        # it was cancelled and its connection closed — leave its server session waiting there (PostgreSQL notices
        # the closed client only when it answers). Unless the database URL's options already set one.
        options = str(self._connect_kwargs.get("options") or "")
        if "statement_timeout" not in options:
            self._connect_kwargs["options"] = f"{options} -c statement_timeout={round(statement_timeout * 1000)}"
            self._connect_kwargs["options"] = str(self._connect_kwargs["options"]).strip()
        self._prepare = f"PREPARE {_STATEMENT.decode()} AS {sql}"
        self._params: list[Any] = [v if v is _E164 else _text(v) for v in params]
        self.max_connections = max_connections
        self.acquire_timeout = acquire_timeout
        self._idle: list[_Connection] = []
        self._open = 0  # connections open, being opened, or a place handed to a waiter to open one in
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._row: Any = None  # the rows' namedtuple class, from the first result's column names
        self._closed = False

    @classmethod
    def from_engine(cls, engine: Any, directory: CustomerDirectory, **kwargs: Any) -> LoopLookup:
        sql, params = by_number_sql(engine.dialect)
        return cls(directory, psycopg_connect_kwargs(engine), *_positional(sql, params), **kwargs)

    @property
    def connections(self) -> int:
        """Connections open or being opened."""
        return self._open

    def identify_deferred(self, e164: str) -> Deferred[Identity]:
        """``identify`` as a Deferred fired straight from the connection's reader — no asyncio Task, no loop turn
        between the answer and the caller — for the routed call's Twisted-driven coroutine (a cache miss).
        When no connection is idle, or the one taken breaks, the rest is ``identify``'s (waiting, retrying)."""
        if self._closed or not self._idle:
            return as_deferred(self.identify(e164))
        conn = self._idle.pop()
        values = self._values(e164)
        answer: Deferred[Identity] = Deferred()

        def done(results: list[Any] | None, error: BaseException | None) -> None:
            rows: list[Any] = []
            if error is None:
                try:
                    rows = self._rows(conn, results)
                except Exception as exc:  # noqa: BLE001 - handed on below
                    error = exc
            if error is None:
                self._release(conn)
                try:
                    identity = self._directory.identity_from_rows(rows)
                except Exception:  # noqa: BLE001 - to the caller, as a Failure
                    answer.errback()
                    return
                answer.callback(identity)
            elif self._failed(conn, error, 1):
                as_deferred(self._attempts(values, 2)).chainDeferred(answer)
            else:
                answer.errback(error)

        try:
            conn.query(values, done)
        except psycopg.OperationalError as exc:
            done(None, exc)
        return answer

    async def identify(self, e164: str) -> Identity:
        """The customer behind ``e164`` (never creates one)."""
        if self._closed:
            raise RuntimeError("customer lookup closed")
        return await self._attempts(self._values(e164), 1)

    def _values(self, e164: str) -> list[bytes | None]:
        number = e164.encode()
        return [number if v is _E164 else v for v in self._params]

    async def _attempts(self, values: list[bytes | None], first: int) -> Identity:
        loop = asyncio.get_running_loop()
        for attempt in range(first, 3):
            if attempt == 1 and self._idle:
                conn = self._idle.pop()
            else:  # after a broken one, a new connection: the idle ones may be broken too (a restarted database)
                conn = await self._acquire(fresh=attempt == 2)
            answer: asyncio.Future[list[Any]] = loop.create_future()
            try:
                conn.query(values, functools.partial(_settle, answer))
                rows = self._rows(conn, await answer)
            except BaseException as exc:
                if self._failed(conn, exc, attempt):
                    continue
                raise
            self._release(conn)
            return self._directory.identity_from_rows(rows)
        raise AssertionError("unreachable")

    def _failed(self, conn: _Connection, exc: BaseException, attempt: int) -> bool:
        """After ``exc`` on ``conn``: whether to try again (once, on a new connection)."""
        stale = getattr(exc, "sqlstate", None) in _STALE_STATEMENT
        if conn.usable and not stale:  # the query refused (a statement timeout, say), the connection fine: no retry
            self._release(conn)
            return False
        # broken, its query still under way (the lookup cancelled), or its prepared statement no longer usable
        # (a migration changed a column's type: "cached plan must not change result type"; or it is gone)
        self._discard(conn)
        if attempt == 2 or self._closed or not (stale or isinstance(exc, psycopg.OperationalError)):
            return False
        log.info("customer lookup connection lost (%s); trying again on a new one", exc)
        return True

    def _rows(self, conn: _Connection, results: list[Any] | None) -> list[Any]:
        if results is None:
            raise psycopg.InterfaceError("customer lookup: no results")
        if len(results) != 1 or results[0].status != _TUPLES_OK:
            bad = next((r for r in results if r.status != _TUPLES_OK), None)
            if bad is None:
                raise psycopg.InterfaceError(f"customer lookup: {len(results)} results for one query")
            raise psycopg.errors.error_from_result(bad, encoding=conn.conn.info.encoding)
        result = results[0]
        make_row = self._row
        if make_row is None:
            fields = [result.fname(i).decode() for i in range(result.nfields)]
            row_type: Any = collections.namedtuple("CustomerRow", fields, rename=True)  # type: ignore[misc]
            make_row = self._row = row_type._make
        transformer = conn.transformer
        # The prepared statement's columns and their types are fixed for the connection's life (PostgreSQL refuses
        # to run it, rather than change its result's types, after a schema change): their loaders are looked up
        # from the first rows only.
        transformer.set_pgresult(result, set_loaders=not conn.typed)
        conn.typed = True
        return transformer.load_rows(0, result.ntuples, make_row)

    async def _acquire(self, *, fresh: bool) -> _Connection:
        """An idle connection (unless ``fresh``), a new one while there are fewer than ``max_connections``, or
        the first one given back within ``acquire_timeout`` (a place freed by a broken one: a new one)."""
        if self._closed:
            raise RuntimeError("customer lookup closed")
        if self._idle and (not fresh or self._open >= self.max_connections):
            return self._idle.pop()  # (fresh, with no place free for a new one: an idle one rather than a wait)
        if self._open < self.max_connections:
            self._open += 1
            return await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.acquire_timeout, self._timed_out, waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()  # handed over as this lookup was cancelled: hand it on
                self._release(given) if given is not None else self._give_back_place()
            raise
        finally:
            timer.cancel()
        return conn if conn is not None else await self._connect()

    def _timed_out(self, waiter: asyncio.Future[_Connection | None]) -> None:
        if not waiter.done():
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass
            waiter.set_exception(LookupBusy(f"no customer lookup connection free within {self.acquire_timeout} s"))

    async def _connect(self) -> _Connection:
        """A new connection in a place already counted in ``_open``; the place is given back if it fails."""
        try:
            conn = await psycopg.AsyncConnection.connect(**self._connect_kwargs)
            try:
                await conn.execute(self._prepare)
            except BaseException:
                await conn.close()
                raise
            return _Connection(conn, asyncio.get_running_loop(), self._lost)
        except BaseException:
            self._give_back_place()
            raise

    def _release(self, conn: _Connection) -> None:
        if self._closed or conn.gone or conn.broken:
            self._discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _discard(self, conn: _Connection) -> None:
        if conn.gone:
            return
        conn.close()
        try:
            self._idle.remove(conn)
        except ValueError:
            pass
        self._give_back_place()

    def _give_back_place(self) -> None:
        """A connection's place is free: the first waiter opens a new one in it, else it is free."""
        if not self._closed:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the place stays counted: the waiter connects in it
                    return
        self._open -= 1

    def _lost(self, conn: _Connection, exc: BaseException) -> None:
        log.info("idle customer lookup connection lost (%s)", exc)
        self._discard(conn)

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._idle):
            self._discard(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("customer lookup closed"))
