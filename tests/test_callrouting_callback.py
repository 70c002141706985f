"""Callback requests over FastAGI: a real callback ticket, due after the line next opens, never two for one number."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from twisted.internet.defer import fail
from twisted.internet.task import Clock

from ccserver.callrouting.callback import open_callback_ticket
from ccserver.callrouting.directory_data import RoutingData
from ccserver.callrouting.service import RoutingService
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.directory import CustomerDirectory
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Ticket
from ccserver.demo import generate
from tests.replay.agi_peer import Responder, agi_split, transcript_peer
from tests.test_agi_protocol import Harness
from tests.test_callrouting_service import CLOSED, customer_of, inline

AS_OF = date(2026, 3, 16)


@pytest.fixture
def demo(tmp_path: Any) -> Any:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    generate(url, customers=60, seed=7, as_of=AS_OF)
    engine = make_engine(url)
    sessions = session_factory(engine)
    yield sessions, RoutingData.load(sessions)
    engine.dispose()


def service(sessions: Any, data: RoutingData, *, tickets: Any = None, wall: float = CLOSED) -> tuple[Any, Clock]:
    clock = Clock()
    settings = RoutingSettings()
    svc = RoutingService(data, CustomerDirectory(sessions), None, None, settings.routing_rules(), settings, inline,
                         clock, None, wall=lambda: wall,
                         callback_tickets=tickets or functools.partial(open_callback_ticket, sessions))
    return svc, clock


def request(svc: RoutingService, clock: Clock, transcript: str, **overrides: str) -> dict[str, str]:
    peer = transcript_peer(transcript, Responder(), network_script="callback", arg_1="dec0123456789abc",
                           arg_2="4008002000", extension="s", **overrides)
    Harness(svc.handlers(), peer, clock=clock).flush()
    sets = [c for c in peer.commands if "CC_CALLBACK_TICKET" in c]
    assert len(sets) == 1, peer.commands
    words = agi_split(sets[0])
    name, _, value = words[-1].partition("=") if words[1] == "MSet" else (words[2], "", words[3])
    assert name == "CC_CALLBACK_TICKET"
    return {"ticket": value}


def tickets(sessions: Any) -> list[Ticket]:
    with sessions() as s:
        return list(s.scalars(select(Ticket).where(Ticket.kind == "callback")))


def test_after_hours_request_opens_a_ticket_due_after_the_next_opening(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data)
    before = len(tickets(sessions))
    answer = request(svc, clock, "agi-02-13912345678")
    opened = [t for t in tickets(sessions) if t.subject == "Callback request from +8613912345678"]
    assert len(tickets(sessions)) == before + 1 and len(opened) == 1
    ticket = opened[0]
    assert answer["ticket"] == str(ticket.id)
    assert ticket.status == "open" and ticket.department == "service"
    assert ticket.customer_id == customer_of(sessions, "+8613912345678").id
    # Called at 23:30 Shanghai time: due after the service line opens the next morning, not in the night.
    closed_at = datetime.fromtimestamp(CLOSED, UTC)
    assert ticket.sla_due_at is not None and ticket.sla_due_at > closed_at
    assert ticket.sla_due_at.astimezone(UTC).date() == date(2026, 3, 17)
    assert "dec0123456789abc" in (ticket.body or "")


def test_a_second_request_reuses_the_open_ticket(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data)
    first = request(svc, clock, "agi-02-13912345678")
    second = request(svc, clock, "agi-02-13912345678")
    assert first == second
    assert len([t for t in tickets(sessions) if "+8613912345678" in t.subject]) == 1


@pytest.mark.parametrize("callerid", ["anonymous", "", "4008001000"])
def test_no_ticket_without_a_number_to_call_back(demo: Any, callerid: str) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data)
    before = len(tickets(sessions))
    assert request(svc, clock, "agi-02-13912345678", callerid=callerid) == {"ticket": ""}
    assert len(tickets(sessions)) == before


def test_sql_failure_promises_nothing(demo: Any) -> None:
    sessions, data = demo

    def broken(*_: Any, **__: Any) -> Any:
        raise ConnectionError("database down")

    svc, clock = service(sessions, data, tickets=broken)
    svc._run_blocking = lambda fn, *a, **k: fail(ConnectionError("down")) if fn is broken else inline(fn, *a, **k)
    assert request(svc, clock, "agi-02-13912345678") == {"ticket": ""}
