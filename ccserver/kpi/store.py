"""The KPI interval rows in SQL (``kpi_queue_intervals``, ``kpi_agent_intervals``): written when an interval ends,
read back for reports and, after a restart without Redis, to pick up today's figures. Blocking: run it in the
thread pool (``await pool.run(store.write, rows)``).

Writing the same interval again (a partial row at shutdown, then the whole interval; two nodes around a leadership
change) replaces the row — ``INSERT … ON CONFLICT (server, queue|interface, interval_start) DO UPDATE`` — so an
interval is never counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccserver.db.models import KpiAgentInterval, KpiQueueInterval
from ccserver.kpi.counts import AgentCounts, QueueCounts

__all__ = ["KpiStore"]

_QUEUE_COUNTS = tuple(QueueCounts.__dataclass_fields__)
_AGENT_COUNTS = tuple(name for name in AgentCounts.__dataclass_fields__ if name not in ("paused_by_reason", "queues"))


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _upsert(session: Session, model: Any, values: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - ccserver runs on these two
        raise NotImplementedError(f"KPI rows need PostgreSQL or SQLite, not {dialect}")
    stmt = insert(model).values(values)
    updated = {name: stmt.excluded[name] for name in values[0] if name not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updated))


class KpiStore:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session_factory = session_factory

    def write(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write (or rewrite) interval rows as :meth:`ccserver.kpi.book.ServerBook.rows` makes them."""
        now = datetime.now(UTC)
        queues: dict[tuple[str, str, float], dict[str, Any]] = {}
        agents: dict[tuple[str, str, float], dict[str, Any]] = {}
        for row in rows:
            common = {"server": row["server"], "interval_start": _when(row["interval_start"]),
                      "day": date.fromisoformat(row["day"]), "updated_at": now}
            if row["kind"] == "queue":
                # The last row of a slot wins (the same interval written twice in one batch).
                queues[(row["server"], row["queue"], row["interval_start"])] = {
                    **common, "queue": row["queue"], "sl_threshold": row["sl_threshold"],
                    **{name: row.get(name) or 0 for name in _QUEUE_COUNTS}}
            else:
                agents[(row["server"], row["interface"], row["interval_start"])] = {
                    **common, "interface": row["interface"], "name": str(row.get("name") or row["interface"])[:120],
                    **{name: row.get(name) or 0 for name in _AGENT_COUNTS},
                    "paused_by_reason": dict(row.get("paused_by_reason") or {}),
                    "queues": sorted(row.get("queues") or ())}
        with self.session_factory() as session, session.begin():
            if queues:
                _upsert(session, KpiQueueInterval, list(queues.values()), ("server", "queue", "interval_start"))
            if agents:
                _upsert(session, KpiAgentInterval, list(agents.values()), ("server", "interface", "interval_start"))
        return len(queues) + len(agents)

    def day_rows(self, server: str, day: str) -> list[dict[str, Any]]:
        """A server's rows of one local day, shaped as the book makes them (to seed a book after a restart)."""
        wanted = date.fromisoformat(day)
        with self.session_factory() as session:
            queue_rows = session.scalars(select(KpiQueueInterval).where(
                KpiQueueInterval.server == server, KpiQueueInterval.day == wanted)).all()
            agent_rows = session.scalars(select(KpiAgentInterval).where(
                KpiAgentInterval.server == server, KpiAgentInterval.day == wanted)).all()
            return [self._queue_row(r) for r in queue_rows] + [self._agent_row(r) for r in agent_rows]

    def queue_rows(self, start: datetime, end: datetime, queues: Collection[str] | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """Queue rows whose interval starts in [start, end), optionally only these queues."""
        query = select(KpiQueueInterval).where(KpiQueueInterval.interval_start >= start,
                                               KpiQueueInterval.interval_start < end)
        if queues is not None:
            query = query.where(KpiQueueInterval.queue.in_(sorted(queues)))
        query = query.order_by(KpiQueueInterval.interval_start, KpiQueueInterval.server, KpiQueueInterval.queue)
        with self.session_factory() as session:
            return [self._queue_row(r) for r in session.scalars(query.limit(limit)).all()]

    def agent_rows(self, start: datetime, end: datetime, interfaces: Collection[str] | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        query = select(KpiAgentInterval).where(KpiAgentInterval.interval_start >= start,
                                               KpiAgentInterval.interval_start < end)
        if interfaces is not None:
            query = query.where(KpiAgentInterval.interface.in_(sorted(interfaces)))
        query = query.order_by(KpiAgentInterval.interval_start, KpiAgentInterval.server, KpiAgentInterval.interface)
        with self.session_factory() as session:
            return [self._agent_row(r) for r in session.scalars(query.limit(limit)).all()]

    @staticmethod
    def _queue_row(r: KpiQueueInterval) -> dict[str, Any]:
        return {"kind": "queue", "server": r.server, "queue": r.queue, "interval_start": _epoch(r.interval_start),
                "day": r.day.isoformat(), "sl_threshold": float(r.sl_threshold),
                **{name: getattr(r, name) for name in _QUEUE_COUNTS}}

    @staticmethod
    def _agent_row(r: KpiAgentInterval) -> dict[str, Any]:
        return {"kind": "agent", "server": r.server, "interface": r.interface, "name": r.name,
                "interval_start": _epoch(r.interval_start), "day": r.day.isoformat(),
                **{name: getattr(r, name) for name in _AGENT_COUNTS},
                "paused_by_reason": dict(r.paused_by_reason or {}), "queues": list(r.queues or ())}
