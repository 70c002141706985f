"""Decision records into PostgreSQL from the event loop: one ``COPY`` per batch on a psycopg ``AsyncConnection``.

**Why not a worker thread.** Every routed call writes a decision row, 200 to a batch. Written from a worker
thread, the batch's Python (SQLAlchemy's session, pool checkout, psycopg calls) held the GIL in stretches of up
to a millisecond or more between its socket waits, and the reactor thread, woken by the next call, waited for the
GIL that long: on the routed-call benchmark the 2–4 calls after every batch were the slow tail (up to 5 ms) of
an otherwise sub-millisecond cache hit. On the loop, the batch costs a few short steps between calls, each
yielding while PostgreSQL works: the rows were made earlier (``records.record_submitter``), psycopg's
``copy.write_row`` escapes and encodes them (no COPY text format of ours), and the loop is let go every
``ROWS_PER_STEP`` rows.

Only the COPY of decisions runs here. Survey scores, and a batch the COPY refused (a customer deleted meanwhile,
or a retried batch that was in fact already written: a foreign-key or primary-key violation), go to the blocking
sink in a worker thread, whose INSERT path sorts them out — rare, and idempotent. A broken connection is
dropped and the batch fails; the batcher retries it with backoff and the next attempt connects anew.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ccserver.callrouting.records import COPY_SQL, COPY_TYPES, copy_row
from ccserver.db.engine import psycopg_connect_kwargs

__all__ = ["LoopCopySink"]

log = logging.getLogger(__name__)

# write_row: 2-3 µs a row, so a step of 100 rows held the loop 0.2-0.35 ms (a call arriving meanwhile waits for it);
# 25 rows: 0.05-0.1 ms, for ~30 more loop turns a batch, nothing per call.
ROWS_PER_STEP = 25


class LoopCopySink:
    """An ``async`` sink for :class:`ccserver.state.records.RecordBatcher` (awaited on the loop).

    ``connect_kwargs``: psycopg connection arguments (:meth:`from_engine` takes them from a SQLAlchemy engine);
    ``blocking_sink``: ``records.routing_record_sink`` for everything the COPY does not take. Call
    :meth:`aclose` at shutdown, after the batcher's last flush.
    """

    def __init__(self, connect_kwargs: dict[str, Any], blocking_sink: Callable[[list[dict]], None]) -> None:
        self._connect_kwargs = {"connect_timeout": 5, **connect_kwargs}
        self._blocking_sink = blocking_sink
        self._conn: Any = None  # psycopg.AsyncConnection, opened on the first batch
        self.copies = 0  # batches written by COPY
        self.handed_over = 0  # batches (or parts) given to the blocking sink

    @classmethod
    def from_engine(cls, engine: Any, blocking_sink: Callable[[list[dict]], None]) -> LoopCopySink:
        return cls(psycopg_connect_kwargs(engine), blocking_sink)

    async def __call__(self, records: list[dict]) -> None:
        import psycopg

        decisions = [r for r in records if r.get("kind") == "decision"]
        rest = [r for r in records if r.get("kind") != "decision"] if len(decisions) < len(records) else []
        if decisions:
            try:
                await self._copy(decisions)
                self.copies += 1
            except psycopg.IntegrityError as exc:
                log.info("decision batch refused by COPY (%s); writing it with INSERTs",
                         str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                rest = records
        if rest:
            self.handed_over += 1
            await asyncio.to_thread(self._blocking_sink, rest)

    async def _copy(self, decisions: list[dict]) -> None:
        import psycopg

        conn = await self._connection()
        try:
            async with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
                copy.set_types(COPY_TYPES)
                for i, r in enumerate(decisions, 1):
                    await copy.write_row(r.get("copy_row") or copy_row(r))
                    if not i % ROWS_PER_STEP:
                        await asyncio.sleep(0)  # let the calls waiting meanwhile in
            await conn.commit()
        except psycopg.IntegrityError:
            await conn.rollback()  # the connection stays usable
            raise
        except BaseException:  # broken connection, cancelled mid-COPY: its state is unknown, start afresh
            await self._drop()
            raise

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg

            self._conn = await psycopg.AsyncConnection.connect(**self._connect_kwargs)
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - already broken
                log.debug("closing a broken COPY connection failed", exc_info=True)

    async def aclose(self) -> None:
        await self._drop()
