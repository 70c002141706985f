"""The IVR inside a real `ccserver run` (SQLite, demo data, its own tickets service), reached over real FastAGI
on loopback: a caller books a maintenance visit and hangs up; the booking is in SQL, whole, once. The flows'
own tests (test_ivr_flows.py) drive the IVR through an in-memory tickets port; this one proves the wiring: the
IVR files through the server's tickets service, on the server's event loop and thread pool."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ivr_support import HOTLINE, LIU_YANG, Caller
from tests.live_server import LiveServer
from tests.replay.agi_peer import EOF, env_block
from tests.replay.agi_transcripts import load_agi


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("ivr-live"), customers=120)
    live.start()
    try:
        yield live
    finally:
        live.stop()


def _db(server: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "ccserver.sqlite3")


def _one_car_regular(server: LiveServer, nth: int = 0) -> tuple[int, str]:
    """A customer with exactly one car, a home store, no VIP treatment (VIPs skip the menu): id and number; ``nth``:
    another such customer (one who holds an appointment cannot book a second one at the same hour)."""
    with _db(server) as db:
        row = db.execute(
            "SELECT c.id, p.e164 FROM customers c JOIN customer_phones cp ON cp.customer_id = c.id"
            " JOIN phone_numbers p ON p.id = cp.phone_id"
            " WHERE c.tier NOT IN ('diamond', 'gold') AND NOT c.manual_vip AND c.home_store_id IS NOT NULL"
            " AND NOT p.shared AND (SELECT count(*) FROM vehicles v WHERE v.customer_id = c.id) = 1"
            " AND (SELECT count(*) FROM customer_phones o WHERE o.phone_id = p.id) = 1"
            " ORDER BY c.id LIMIT 1 OFFSET ?", (nth,)).fetchone()
    assert row is not None, "the demo data has a one-car customer"
    return int(row[0]), str(row[1])


def play_call(port: int, caller: Caller, **overrides: str) -> list[str]:
    """Be Asterisk on one FastAGI connection: send the recorded request block (with overrides), answer each
    command as ``caller`` does, until ccserver hangs up or closes. Every command ccserver sent, in order."""
    commands: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(env_block(load_agi(LIU_YANG).env, **overrides))
        buffered = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return commands
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8")
                commands.append(line)
                reply: Any = caller(line, len(commands) - 1)
                if reply is EOF:
                    return commands  # Asterisk closes instead of answering
                if reply:
                    sock.sendall(("\n".join(reply) + "\n").encode("utf-8"))


def test_a_caller_books_a_visit_through_the_servers_tickets_service(server: LiveServer) -> None:
    customer_id, number = _one_car_regular(server)
    local = number.removeprefix("+86")
    # After-sales (2), book a visit (1), the first time offered (1), confirm (1).
    commands = play_call(server.agi_port, Caller(["2", "1", "1", "1"]), callerid=local, extension=HOTLINE,
                         uniqueid="1795000001.77", network_script="incoming")
    assert commands[-1] == "HANGUP", commands
    assert not any(c.startswith("EXEC MSet") for c in commands), "a booked caller is not routed to a queue"
    with _db(server) as db:
        rows = db.execute(
            "SELECT t.kind, t.customer_id, a.customer_id, a.vehicle_id, a.status, a.slot_start, a.store_id"
            " FROM tickets t JOIN appointments a ON a.ticket_id = t.id WHERE t.uniqueid = ?",
            ("1795000001.77",)).fetchall()
        car = db.execute("SELECT id FROM vehicles WHERE customer_id = ?", (customer_id,)).fetchone()[0]
        home = db.execute("SELECT home_store_id FROM customers WHERE id = ?", (customer_id,)).fetchone()[0]
    assert len(rows) == 1, rows
    kind, ticket_customer, booked_customer, vehicle, status, slot_start, store = rows[0]
    assert (kind, ticket_customer, booked_customer, vehicle, status) == (
        "appointment", customer_id, customer_id, car, "booked")
    assert store == home and slot_start


def test_the_same_call_asked_again_books_nothing_more(server: LiveServer) -> None:
    """Asterisk retrying a request after a lost answer (same uniqueid): one booking, not two."""
    customer_id, number = _one_car_regular(server, nth=1)
    for _ in range(2):
        play_call(server.agi_port, Caller(["2", "1", "1", "1"]), callerid=number.removeprefix("+86"),
                  extension=HOTLINE, uniqueid="1795000002.5", network_script="incoming")
    with _db(server) as db:
        count = db.execute("SELECT count(*) FROM tickets t JOIN appointments a ON a.ticket_id = t.id"
                           " WHERE t.uniqueid = ?", ("1795000002.5",)).fetchone()[0]
    assert count == 1


def test_a_caller_who_hangs_up_before_confirming_leaves_nothing(server: LiveServer) -> None:
    from tests.ivr_support import HANGUP

    _, number = _one_car_regular(server)
    play_call(server.agi_port, Caller(["2", "1", "1", HANGUP]), callerid=number.removeprefix("+86"),
              extension=HOTLINE, uniqueid="1795000003.9", network_script="incoming")
    with _db(server) as db:
        count = db.execute("SELECT count(*) FROM tickets WHERE uniqueid = ?", ("1795000003.9",)).fetchone()[0]
    assert count == 0

