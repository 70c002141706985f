"""Migration 0006_tickets keeps the tickets that exist (SQLite and PostgreSQL): open → new, callback requests get
their source and number, the constraints follow; downgrading maps the statuses back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ccserver.db import migrate
from ccserver.db.engine import make_engine

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _insert(conn, ticket_id: int, kind: str, status: str, key: str | None) -> None:
    conn.execute(text("INSERT INTO tickets (id, kind, status, subject, created_at, updated_at, dedupe_key) "
                      "VALUES (:id, :kind, :status, 's', :now, :now, :key)"),
                 {"id": ticket_id, "kind": kind, "status": status, "now": NOW.replace(tzinfo=None), "key": key})


def test_existing_tickets_survive_the_upgrade_and_the_downgrade(db_url: str) -> None:
    migrate.upgrade(db_url, "0005_agent_sessions")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        _insert(conn, 1, "complaint", "open", None)
        _insert(conn, 2, "callback", "open", "callback:+8613912345678:2026-11-23")
        _insert(conn, 3, "repair", "in_progress", None)
        _insert(conn, 4, "praise", "closed", None)
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text(
            "SELECT id, status, severity, source, contact_e164 FROM tickets ORDER BY id"))}
    assert [rows[i].status for i in (1, 2, 3, 4)] == ["new", "new", "in_progress", "closed"]
    assert {r.severity for r in rows.values()} == {"normal"}
    assert (rows[2].source, rows[2].contact_e164) == ("callback_request", "+8613912345678")
    assert rows[1].source is None and rows[1].contact_e164 is None
    # the new vocabulary is enforced, the old one refused; the de-duplication key is still unique
    with engine.begin() as conn:
        conn.execute(text("UPDATE tickets SET status = 'customer_called_back' WHERE id = 1"))
        _insert(conn, 5, "inquiry", "new", None)
    for bad in ("UPDATE tickets SET status = 'open' WHERE id = 3", "UPDATE tickets SET kind = 'x' WHERE id = 3",
                "UPDATE tickets SET satisfaction = 6 WHERE id = 3", "UPDATE tickets SET severity = 'x' WHERE id = 3"):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(bad))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _insert(conn, 6, "callback", "new", "callback:+8613912345678:2026-11-23")

    migrate.downgrade(db_url, "0005_agent_sessions")
    with engine.connect() as conn:
        back = dict(conn.execute(text("SELECT id, status FROM tickets ORDER BY id")).all())
    assert back == {1: "resolved", 2: "open", 3: "in_progress", 4: "closed"}  # the inquiry (5) has no place
    engine.dispose()
