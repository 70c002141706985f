"""Callback requests over FastAGI: a real callback ticket, due after the line next opens, never two for one number."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from ccserver.callrouting.callback import CALLBACK_TICKETS, callback_key, open_callback_ticket
from ccserver.callrouting.directory_data import RoutingData
from ccserver.callrouting.service import RoutingService
from ccserver.callrouting.settings import RoutingSettings
from ccserver.customers.directory import CustomerDirectory
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import BusinessHours, Customer, Store, Ticket
from ccserver.demo import generate
from ccserver.tickets.store import callback_store
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


def service(sessions: Any, data: RoutingData, *, tickets: Any = None, wall: float = CLOSED,
            run_blocking: Any = inline) -> tuple[Any, Clock]:
    clock = Clock()
    settings = RoutingSettings()
    svc = RoutingService(data, CustomerDirectory(sessions), None, None, settings.routing_rules(), settings,
                         run_blocking, clock, None, wall=lambda: wall,
                         callback_tickets=tickets or functools.partial(open_callback_ticket, sessions),
                         callback_store=functools.partial(callback_store, sessions))
    return svc, clock


def start(svc: RoutingService, clock: Clock, transcript: str, **overrides: str) -> Harness:
    overrides = {"arg_1": "dec0123456789abc", "arg_2": "4008002000", **overrides}
    peer = transcript_peer(transcript, Responder(), network_script="callback", extension="s", **overrides)
    harness = Harness(svc.handlers(), peer, clock=clock)
    harness.flush()
    return harness


def answer(harness: Harness) -> str | None:
    """The CC_CALLBACK_TICKET the dialplan got, or None while the handler has not answered."""
    sets = [c for c in harness.peer.commands if "CC_CALLBACK_TICKET" in c]
    if not sets:
        return None
    assert len(sets) == 1, harness.peer.commands
    words = agi_split(sets[0])
    name, _, value = words[-1].partition("=") if words[1] == "MSet" else (words[2], "", words[3])
    assert name == "CC_CALLBACK_TICKET"
    return value


def request(svc: RoutingService, clock: Clock, transcript: str, **overrides: str) -> dict[str, str]:
    value = answer(start(svc, clock, transcript, **overrides))
    assert value is not None
    return {"ticket": value}


def tickets(sessions: Any) -> list[Ticket]:
    with sessions() as s:
        return list(s.scalars(select(Ticket).where(Ticket.kind == "callback")))


def customer_id(sessions: Any, e164: str) -> int:
    customer = customer_of(sessions, e164)
    assert customer is not None
    return customer.id


def test_after_hours_request_opens_a_ticket_due_after_the_next_opening(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data)
    before = len(tickets(sessions))
    answer = request(svc, clock, "agi-02-13912345678")
    opened = [t for t in tickets(sessions) if t.subject == "Callback request from +8613912345678"]
    assert len(tickets(sessions)) == before + 1 and len(opened) == 1
    ticket = opened[0]
    assert answer["ticket"] == str(ticket.id)
    assert ticket.status == "new" and ticket.department == "service"
    assert ticket.customer_id == customer_id(sessions, "+8613912345678")
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


# -- de-duplication: one ticket per number and callback day, however concurrent ---------------------------------
LIU = "+8613912345678"
DUE = datetime(2026, 3, 17, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def ask(sessions: Any, *, due: datetime = DUE, now: datetime = datetime(2026, 3, 16, 15, 30, tzinfo=UTC),
        n: int = 0) -> tuple[int, bool]:
    return open_callback_ticket(sessions, e164=LIU, customer_id=None, store_id=None, line="service",
                                decision_id=f"dec{n}", uniqueid=f"1795416921.{n}", due_at=due, now=now,
                                dedupe_key=callback_key(LIU, due, "Asia/Shanghai"))


@pytest.fixture
def empty_db(db_url: str) -> Any:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield engine, session_factory(engine)
    engine.dispose()


def test_two_requests_at_the_same_moment_open_one_ticket(empty_db: Any) -> None:
    """Both requests have looked for an open ticket (none) and are about to insert at the same moment."""
    engine, sessions = empty_db
    together = threading.Barrier(2)

    @event.listens_for(engine, "before_cursor_execute")
    def insert_together(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TICKETS"):
            together.wait(timeout=10)

    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def request_from_liu(n: int) -> None:
        try:
            results.append(ask(sessions, n=n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request_from_liu, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len({ticket for ticket, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]
    with sessions() as s:
        keyed = s.scalars(select(Ticket).where(Ticket.kind == "callback")).all()
    assert [t.dedupe_key for t in keyed] == ["callback:+8613912345678:2026-03-17"]


def test_the_key_is_the_due_day_and_a_closed_ticket_is_reopened(empty_db: Any) -> None:
    _, sessions = empty_db
    first, created = ask(sessions, now=datetime(2026, 3, 16, 15, 50, tzinfo=UTC), n=1)  # 23:50 local
    assert created
    # 00:10 local, the line still closed: the same callback (due the same morning).
    assert ask(sessions, now=datetime(2026, 3, 16, 16, 10, tzinfo=UTC), n=2) == (first, False)
    # Still open a day later: a request due the next day reuses it rather than calling twice.
    assert ask(sessions, due=DUE + timedelta(days=1), n=3) == (first, False)
    with sessions() as s, s.begin():
        s.get(Ticket, first).status = "closed"
    # Worked and closed, and the caller asks again for the same day: reopened, due anew.
    again = datetime(2026, 3, 17, 5, 0, tzinfo=UTC)
    assert ask(sessions, due=again + timedelta(hours=2), now=again, n=4) == (first, True)
    with sessions() as s:
        ticket = s.get(Ticket, first)
        assert ticket.status == "new" and ticket.sla_due_at == again + timedelta(hours=2)
        assert "Asked again" in (ticket.body or "") and "1795416921.4" in (ticket.body or "")
    # Worked and closed again; another day, nothing open: a new ticket.
    with sessions() as s, s.begin():
        s.get(Ticket, first).status = "resolved"
    later, created = ask(sessions, due=DUE + timedelta(days=3), n=5)
    assert created and later != first


def test_two_calls_before_the_line_opens_are_one_callback(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data, wall=CLOSED)  # 23:30
    first = request(svc, clock, "agi-02-13912345678")["ticket"]
    svc._wall = lambda: CLOSED + 40 * 60  # 00:10 the next day
    assert request(svc, clock, "agi-02-13912345678")["ticket"] == first
    with sessions() as s:
        assert s.get(Ticket, int(first)).dedupe_key == "callback:+8613912345678:2026-03-17"


# -- the promise is kept when SQL is slow ---------------------------------------------------------------------------
class SlowTicketWrites:
    """run_blocking: identification inline; ticket writes as the test decides (held, failing, or inline)."""

    def __init__(self, *plan: str) -> None:
        self.plan = list(plan)  # per write: "hold", "fail", "run"; then "run"
        self.held: list[tuple[Deferred[Any], Any]] = []

    def __call__(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if "dedupe_key" not in getattr(fn, "keywords", {}):
            return inline(fn, *args, **kwargs)
        step = self.plan.pop(0) if self.plan else "run"
        if step == "hold":
            d: Deferred[Any] = Deferred()
            self.held.append((d, fn))
            return d
        if step == "fail":
            return fail(OperationalError("INSERT", {}, ConnectionError("server closed the connection")))
        return inline(fn)


def test_a_slow_insert_is_promised_and_then_written(demo: Any) -> None:
    sessions, data = demo
    writes = SlowTicketWrites("hold")
    svc, clock = service(sessions, data, run_blocking=writes)
    before = (CALLBACK_TICKETS.value(outcome="pending"), CALLBACK_TICKETS.value(outcome="written_late"))
    harness = start(svc, clock, "agi-02-13912345678")
    assert answer(harness) is None  # the caller waits on the write ...
    clock.advance(1.39)
    harness.flush()
    assert answer(harness) is None
    clock.advance(0.02)  # ... until the deadline: then the promise, with the ticket's reference
    harness.flush()
    reference = answer(harness)
    assert reference == "callback:+8613912345678:2026-03-17"
    with sessions() as s:
        assert s.scalars(select(Ticket).where(Ticket.dedupe_key == reference)).first() is None  # not yet
    held, write = writes.held[0]
    held.callback(write())  # the insert finishes after the caller was answered
    with sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.dedupe_key == reference)).one()
    assert ticket.status == "new" and ticket.kind == "callback"
    assert (CALLBACK_TICKETS.value(outcome="pending"), CALLBACK_TICKETS.value(outcome="written_late")) == (
        before[0] + 1, before[1] + 1)


def test_a_slow_insert_that_then_fails_is_retried_until_written(demo: Any) -> None:
    sessions, data = demo
    writes = SlowTicketWrites("hold", "fail", "run")
    svc, clock = service(sessions, data, run_blocking=writes)
    harness = start(svc, clock, "agi-02-13912345678")
    clock.advance(1.41)
    harness.flush()
    reference = answer(harness)
    assert reference and reference.startswith("callback:")
    writes.held[0][0].errback(OperationalError("INSERT", {}, ConnectionError("connection lost")))
    clock.advance(2)  # first retry: fails too
    clock.advance(10)  # second retry: written
    with sessions() as s:
        assert s.scalars(select(Ticket).where(Ticket.dedupe_key == reference)).one().status == "new"
    assert svc._promises.pending == 0


def test_a_promised_ticket_that_can_never_be_written_is_logged_loudly(demo: Any, caplog: Any) -> None:
    sessions, data = demo
    writes = SlowTicketWrites("hold", *["fail"] * 10)
    svc, clock = service(sessions, data, run_blocking=writes)
    lost = CALLBACK_TICKETS.value(outcome="lost")
    harness = start(svc, clock, "agi-02-13912345678")
    clock.advance(1.41)
    harness.flush()
    assert answer(harness)
    writes.held[0][0].errback(OperationalError("INSERT", {}, ConnectionError("database down")))
    for delay in svc._promises.delays:
        clock.advance(delay)
    assert CALLBACK_TICKETS.value(outcome="lost") == lost + 1
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "PROMISED" in r.getMessage()]
    assert len(errors) == 1 and "+86139" not in errors[0].getMessage()  # no caller number in the log


def test_an_insert_that_fails_fast_is_tried_again_within_the_deadline(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data, run_blocking=SlowTicketWrites("fail"))
    ticket = request(svc, clock, "agi-02-13912345678")["ticket"]
    assert ticket.isdigit()
    with sessions() as s:
        assert s.get(Ticket, int(ticket)).dedupe_key == "callback:+8613912345678:2026-03-17"


# -- a caller who leaves the queue for a callback keeps their place ---------------------------------------------
OPEN = datetime(2026, 3, 16, 2, 0, tzinfo=UTC).timestamp()  # 10:00 in Shanghai, the service line open


def test_queue_exit_keeps_the_arrival_time(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data, wall=OPEN)
    arrived = int(OPEN) - 300  # waited five minutes in the queue, then pressed 1
    request(svc, clock, "agi-02-13912345678", arg_3=str(arrived))
    ticket, = [t for t in tickets(sessions) if "+8613912345678" in t.subject]
    assert ticket.created_at == datetime.fromtimestamp(arrived, UTC)
    assert ticket.sla_due_at == datetime.fromtimestamp(arrived, UTC) + timedelta(hours=2)


@pytest.mark.parametrize("arrived", ["", "soon", str(int(OPEN) + 60), str(int(OPEN) - 7 * 3600), "1" * 20])
def test_an_arrival_time_that_cannot_be_true_is_ignored(demo: Any, arrived: str) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data, wall=OPEN)
    request(svc, clock, "agi-02-13912345678", arg_3=arrived)
    ticket, = [t for t in tickets(sessions) if "+8613912345678" in t.subject]
    assert ticket.created_at == datetime.fromtimestamp(OPEN, UTC)


def test_the_ivr_line_sets_calendar_and_department(demo: Any) -> None:
    sessions, data = demo
    svc, clock = service(sessions, data)  # 23:30: the sales line opens 09:00, the hotline never closes
    request(svc, clock, "agi-02-13912345678", arg_2="4008009000", arg_3="", arg_4="sales")
    ticket, = [t for t in tickets(sessions) if "+8613912345678" in t.subject]
    assert ticket.department == "sales"
    assert ticket.sla_due_at == datetime(2026, 3, 17, 1, 0, tzinfo=UTC) + timedelta(hours=2)  # 09:00 + 2 h
# -- the ticket's store: the caller's home store, else the called number's ------------------------------------------
BJ_SALES = "01064881000"  # bj-volvo's sales line


def home_elsewhere(sessions: Any) -> tuple[int, int]:
    """Liu Yang's home store becomes sh-bmw, whose sales line opens late on Tuesday (13:00): (bj-volvo, sh-bmw)."""
    liu = customer_id(sessions, LIU)
    with sessions.begin() as s:
        bj, sh = (s.scalars(select(Store.id).where(Store.code == code)).one() for code in ("bj-volvo", "sh-bmw"))
        s.get(Customer, liu).home_store_id = sh
        tuesday = s.scalars(select(BusinessHours).where(BusinessHours.store_id == sh, BusinessHours.line == "sales",
                                                        BusinessHours.weekday == 1)).one()
        tuesday.opens_at = tuesday.opens_at.replace(hour=13)
    return bj, sh


def test_a_customers_callback_goes_to_their_home_store_and_its_hours(demo: Any) -> None:
    sessions, _ = demo
    _bj, sh = home_elsewhere(sessions)
    svc, clock = service(sessions, RoutingData.load(sessions))  # Monday 23:30
    request(svc, clock, "agi-02-13912345678", arg_2=BJ_SALES)
    ticket, = [t for t in tickets(sessions) if t.contact_e164 == LIU]
    assert ticket.store_id == sh and ticket.department == "sales"
    # sh-bmw's sales line opens 13:00 on Tuesday (bj-volvo's at 09:00): due 15:00 in Shanghai
    assert ticket.sla_due_at == datetime(2026, 3, 17, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("callerid", ["13700000099", "13912345678"])  # unknown (a new prospect); no home store
def test_a_callback_without_a_home_store_keeps_the_called_numbers_store(demo: Any, callerid: str) -> None:
    sessions, _ = demo
    bj, _sh = home_elsewhere(sessions)
    liu = customer_id(sessions, LIU)
    with sessions.begin() as s:
        s.get(Customer, liu).home_store_id = None
    svc, clock = service(sessions, RoutingData.load(sessions))
    request(svc, clock, "agi-02-13912345678", arg_2=BJ_SALES, callerid=callerid)
    ticket, = [t for t in tickets(sessions) if t.contact_e164 == f"+86{callerid}"]
    assert ticket.store_id == bj and ticket.customer_id == customer_id(sessions, f"+86{callerid}")
    assert ticket.sla_due_at == datetime(2026, 3, 17, 3, 0, tzinfo=UTC)  # bj-volvo's sales line: 09:00 + 2 h


def test_a_home_store_not_known_in_time_leaves_the_called_numbers_store(demo: Any, caplog: Any) -> None:
    sessions, _ = demo
    bj, _sh = home_elsewhere(sessions)

    def stuck_lookup(fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return Deferred() if getattr(fn, "func", None) is callback_store else inline(fn, *args, **kwargs)

    svc, clock = service(sessions, RoutingData.load(sessions), run_blocking=stuck_lookup)
    harness = start(svc, clock, "agi-02-13912345678", arg_2=BJ_SALES)
    assert answer(harness) is None  # waiting on the home store ...
    clock.advance(1.41)  # ... until the deadline: the called number's store, and the ticket is written
    harness.flush()
    ticket, = [t for t in tickets(sessions) if t.contact_e164 == LIU]
    assert answer(harness) == str(ticket.id) and ticket.store_id == bj
    assert any("home store not known" in r.getMessage() for r in caplog.records)


# -- the KPIs count every request, by queue ------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "waiting_in", "queue"), [
    ({"arg_3": "", "arg_4": "", "arg_5": "vip"}, None, "vip"),  # CC_QUEUE, as the shipped dialplan passes it
    ({}, "complaints", "complaints"),  # an older dialplan: the queue the caller waited in
    ({}, None, "service"),  # nothing known: the DID's default queue (4008002000: the service line)
    ({"arg_3": "", "arg_4": "", "arg_5": "v i p;${x}"}, None, "v_i_p___x_"),  # plain characters only
])
def test_each_callback_request_is_counted_for_its_queue(demo: Any, overrides: dict, waiting_in: str | None,
                                                         queue: str) -> None:
    from types import SimpleNamespace

    sessions, data = demo
    svc, clock = service(sessions, data)
    calls = {} if waiting_in is None else {"1795416921.0": SimpleNamespace(queue=waiting_in)}
    svc._tracker = SimpleNamespace(call=lambda uniqueid, server: calls.get(uniqueid))  # type: ignore[assignment]
    counted: list[tuple[str, str, float]] = []
    svc.on_callback.append(lambda *a: counted.append(a))
    svc.on_callback.append(lambda *a: 1 / 0)  # a failing hook never fails the call
    assert request(svc, clock, "agi-02-13912345678", uniqueid="1795416921.0", **overrides)["ticket"]
    assert counted == [("default", queue, CLOSED)]
