"""Write generated demo rows: Core bulk inserts on SQLite, COPY on PostgreSQL.

PostgreSQL bulk path, all inside one transaction (a failure rolls back to the previous state, schema
included): foreign keys, unique constraints and secondary indexes of the streamed tables are read from the
catalog, dropped, the rows are COPYed, then everything is recreated from the saved definitions — building
an index once is far cheaper than maintaining it row by row, and one FK validation query is far cheaper
than a trigger per row. Ids are explicit, so sequences are moved past them at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, Connection, func, insert, select, text

from ccserver.db.models import Base
from ccserver.demo.generator import COLUMNS

if TYPE_CHECKING:
    import psycopg

SQLITE_CHUNK = 5000  # rows per executemany: big enough to amortise, small enough for SQLite's limits


def _json_columns(table: str) -> set[int]:
    cols = Base.metadata.tables[table].c
    return {i for i, name in enumerate(COLUMNS[table]) if isinstance(cols[name].type, JSON)}


_JSON_POSITIONS = {table: _json_columns(table) for table in COLUMNS}


def insert_dicts(conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Core executemany insert of ``rows`` (used for the small reference tables on every backend)."""
    tbl = Base.metadata.tables[table]
    for start in range(0, len(rows), SQLITE_CHUNK):
        conn.execute(insert(tbl), list(rows[start : start + SQLITE_CHUNK]))


class SqliteWriter:
    def __init__(self, conn: Connection):
        self.conn = conn

    def begin(self) -> None:
        pass

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            cols = COLUMNS[table]
            insert_dicts(self.conn, table, [dict(zip(cols, row, strict=True)) for row in rows])

    def finish(self) -> None:
        pass


class PostgresCopyWriter:
    def __init__(self, conn: Connection):
        self.conn = conn
        self._saved_constraints: list[tuple[str, str, str, str]] = []  # (table, name, contype, definition)
        self._saved_indexes: list[str] = []

    def begin(self) -> None:
        c = self.conn
        c.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))  # index builds sort in memory
        tables = list(COLUMNS)
        self._saved_constraints = [
            (r[0], r[1], r[2], r[3])
            for r in c.execute(
                text(
                    "SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid) "
                    "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                    "JOIN pg_namespace n ON n.oid = t.relnamespace "
                    "WHERE n.nspname = current_schema() AND t.relname = ANY(:tables) AND c.contype IN ('f', 'u') "
                    "ORDER BY c.contype, t.relname, c.conname"
                ),
                {"tables": tables},
            )
        ]
        # Secondary indexes only: PK / unique indexes come back with their constraints.
        index_rows = c.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = current_schema() AND t.relname = ANY(:tables) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
                "ORDER BY i.relname"
            ),
            {"tables": tables},
        ).all()
        self._saved_indexes = [r[1] for r in index_rows]
        for table, name, _, _ in sorted(self._saved_constraints, key=lambda r: r[2]):  # 'f' before 'u'
            c.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
        for name, _ in index_rows:
            c.execute(text(f'DROP INDEX "{name}"'))

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        json_at = _JSON_POSITIONS[table]
        if json_at:
            rows = [_dump_json(row, json_at) for row in rows]
        cols = ", ".join(COLUMNS[table])
        # conn is checked out (we run inside its transaction), so its DBAPI connection is set: psycopg's
        dbapi = cast("psycopg.Connection[Any]", self.conn.connection.driver_connection)
        cursor = dbapi.cursor()  # the same psycopg connection & transaction
        with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def finish(self) -> None:
        c = self.conn
        for ddl in self._saved_indexes:
            c.execute(text(ddl))
        # Unique constraints first: their indexes make the FK validation queries cheap.
        for table, name, _, definition in sorted(self._saved_constraints, key=lambda r: r[2], reverse=True):
            c.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
        for table in COLUMNS:
            c.execute(text(f'ANALYZE "{table}"'))


def _dump_json(row: tuple[Any, ...], positions: Iterable[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = json.dumps(values[i], ensure_ascii=False, separators=(",", ":"))
    return tuple(values)


def fix_sequences(conn: Connection) -> None:
    """Move every PostgreSQL id sequence past the explicit ids just loaded."""
    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.primary_key:
            next_id = func.coalesce(func.max(table.c.id), 0) + 1
            conn.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"), next_id, False)))
