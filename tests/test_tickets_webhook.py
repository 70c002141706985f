"""The notification webhook against a local receiver on loopback (a real HTTP server and client): signed
bodies, retries with backoff on an injected clock, dead letters after the last attempt, nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from ccserver.clock import ManualClock
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Notification, NotificationDeadLetter
from ccserver.tickets.notify import Outbox, WebhookDeliverer, http_post, sign

SECRET = "webhook-secret"
T0 = 1_800_000_000.0


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST of an event with the next of ``statuses[event]`` (then
    200)."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[int]] = {}
        self.received: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                queued = owner.statuses.get(self.headers["X-Ccserver-Event"], [])
                status = queued.pop(0) if queued else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ccserver"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def outbox_db(db_url: str) -> Iterator[Any]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def queue(sessions: Any, *events: str) -> None:
    outbox = Outbox(True)
    with sessions.begin() as s:
        for n, event in enumerate(events):
            outbox.enqueue(s, event, {"ticket": {"id": n + 1, "subject": "异响"}}, datetime.fromtimestamp(T0, UTC))


def deliverer(sessions: Any, url: str, clock: ManualClock) -> WebhookDeliverer:
    async def inline(fn: Any, *args: Any) -> Any:
        return fn(*args)

    return WebhookDeliverer(sessions, inline, url, SECRET, http_post(), clock, retry_delays=(10.0, 60.0, 300.0),
                            timeout=5.0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def counts(sessions: Any) -> tuple[int, int]:
    with sessions() as s:
        return (s.execute(select(func.count()).select_from(Notification)).scalar_one(),
                s.execute(select(func.count()).select_from(NotificationDeadLetter)).scalar_one())


def test_delivered_signed_and_removed(outbox_db: Any, receiver: Receiver) -> None:
    clock = ManualClock(T0)
    queue(outbox_db, "ticket.created", "booking.made")
    sender = deliverer(outbox_db, receiver.url, clock)
    assert run(sender.deliver_due()) == 2
    assert counts(outbox_db) == (0, 0)
    (headers, body), (second, _) = receiver.received
    payload = json.loads(body)
    assert payload["event"] == "ticket.created" and payload["data"]["ticket"]["subject"] == "异响"
    assert headers["x-ccserver-event"] == "ticket.created" and second["x-ccserver-event"] == "booking.made"
    assert headers["x-ccserver-delivery"] == str(payload["id"])
    stamp = headers["x-ccserver-timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["x-ccserver-signature"] == expected == sign(SECRET, int(stamp), body)
    assert run(sender.deliver_due()) == 0  # nothing left


def test_failures_are_retried_with_backoff_then_dead_lettered(outbox_db: Any, receiver: Receiver) -> None:
    clock = ManualClock(T0)
    queue(outbox_db, "ticket.sla_breached", "ticket.resolved")
    receiver.statuses = {"ticket.sla_breached": [500] * 10, "ticket.resolved": [503]}  # one keeps failing
    sender = deliverer(outbox_db, receiver.url, clock)

    def attempt_at(offset: float) -> int:
        clock._now = T0 + offset  # the injected clock: retries are due by it, not by real time
        return int(run(sender.deliver_due()))

    assert attempt_at(0) == 2 and counts(outbox_db) == (2, 0)
    assert attempt_at(9) == 0  # backoff: not before 10 s
    assert attempt_at(10) == 2 and counts(outbox_db) == (1, 0)  # the second got through
    assert attempt_at(69) == 0 and attempt_at(70) == 1  # then 60 s
    assert attempt_at(369) == 0 and attempt_at(370) == 1  # then 300 s: that was the last attempt
    assert counts(outbox_db) == (0, 1)
    with outbox_db() as s:
        dead = s.scalars(select(NotificationDeadLetter)).one()
        assert dead.event == "ticket.sla_breached" and dead.attempts == 4 and dead.last_error == "HTTP 500"
        assert dead.payload == {"ticket": {"id": 1, "subject": "异响"}}  # nothing lost
    assert [h["x-ccserver-event"] for h, _ in receiver.received].count("ticket.sla_breached") == 4


def test_an_unreachable_receiver_is_retried(outbox_db: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = ManualClock(T0)
    queue(outbox_db, "ticket.created")
    sender = deliverer(outbox_db, f"http://127.0.0.1:{port}/", clock)
    assert run(sender.deliver_due()) == 1
    with outbox_db() as s:
        row = s.scalars(select(Notification)).one()
        assert row.attempts == 1 and "refused" in (row.last_error or "").lower()
        assert row.next_attempt_at == datetime.fromtimestamp(T0 + 10, UTC) and row.locked_until is None


def test_a_claimed_notification_is_not_sent_twice(outbox_db: Any, receiver: Receiver) -> None:
    clock = ManualClock(T0)
    queue(outbox_db, "ticket.created")
    one, two = (deliverer(outbox_db, receiver.url, clock) for _ in range(2))
    with outbox_db() as s:
        nid = s.scalars(select(Notification.id)).one()
    assert one._claim(nid, datetime.fromtimestamp(T0, UTC)) is not None  # node one is sending it
    assert run(two.deliver_due()) == 0 and receiver.received == []
    clock._now = T0 + 60  # node one died mid-attempt: its claim runs out and the notification is sent
    assert run(two.deliver_due()) == 1 and len(receiver.received) == 1


def test_disabled_outbox_writes_nothing(outbox_db: Any) -> None:
    with outbox_db.begin() as s:
        Outbox(False).enqueue(s, "ticket.created", {}, datetime.fromtimestamp(T0, UTC))
    assert counts(outbox_db) == (0, 0)
    with pytest.raises(ValueError), outbox_db.begin() as s:
        Outbox(True).enqueue(s, "ticket.exploded", {}, datetime.fromtimestamp(T0, UTC))
