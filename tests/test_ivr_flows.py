"""IVR calls through the FastAGI replay peer with scripted keys, on the demo dealer group (SQLite) and an in-memory
tickets port: every branch of the default menu, no key, wrong keys, the language key, VIP callers, closed lines,
self-service booking, the status of a car, tickets, hang-ups at each step, failures and deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from ccserver.callrouting.directory_data import RoutingData
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Customer, PhoneNumber, Vehicle, customer_phones
from ccserver.demo import generate
from ivr.ports import OpenRepair
from ivr.settings import IVRSettings
from routing.decision import DIALPLAN_KEYS
from tests.ivr_support import (
    AS_OF,
    CLOSED,
    HANGUP,
    HOTLINE,
    WANG_LEI,
    ZHANG_WEI,
    Caller,
    IVRHarness,
    MemoryTickets,
    day_slots,
    inline,
    mset,
    played,
)
from tests.replay.agi_peer import AGIPeer, Responder, env_block
from tests.replay.agi_transcripts import command_verb, load_agi
from tests.test_agi_protocol import Harness

TOMORROW = date(2026, 3, 17)
LIU_YANG_STORE = 3  # his home store (the hotline is group-wide: booking uses the home store)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('ivr') / 'demo.sqlite3'}"
    generate(url, customers=60, seed=7, as_of=AS_OF, agent_interface="PJSIP/{ext}")
    engine = make_engine(url)
    sessions = session_factory(engine)
    yield sessions, RoutingData.load(sessions)
    engine.dispose()


def booking_tickets(places: int = 1) -> MemoryTickets:
    return MemoryTickets(slots=day_slots(LIU_YANG_STORE, TOMORROW, places=places))


def expect_contract(variables: dict[str, str]) -> None:
    """The routing contract first, then the IVR's three variables."""
    assert list(variables) == [*DIALPLAN_KEYS, "CC_LINE", "CC_IVR", "CC_TICKET_ID"]


# -- the main menu ---------------------------------------------------------------------------------------------
def test_first_question_welcomes_in_the_callers_language(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["1"])
    call = h.call(caller)
    # agi-02's channel language is en; Liu Yang's preference is zh: the channel is switched before the menu
    assert call.peer.commands[0] == 'SET VARIABLE CHANNEL(language) "zh"'
    assert caller.questions[0] == ["cc-ivr-welcome", "cc-ivr-main", "cc-ivr-language"]
    variables = mset(call.peer)
    expect_contract(variables)
    assert (variables["CC_QUEUE"], variables["CC_LINE"], variables["CC_IVR"], variables["CC_LANGUAGE"]) == \
        ("sales", "sales", "main.1", "zh")
    assert call.peer.closed
    record = h.records[0]
    assert record["variables"] == variables and any("IVR: main.1 -> sales line" in r for r in record["reasons"])


@pytest.mark.parametrize(("keys", "queue", "line", "path"), [
    (["1"], "sales", "sales", "main.1"),
    (["4"], "insurance", "insurance", "main.4"),
    (["0"], "hotline", "hotline", "main.0"),
    (["2", "0"], "hotline", "hotline", "main.2/after_sales.0"),
    (["3", "0"], "hotline", "hotline", "main.3/complaints.0"),
])
def test_menu_branches_to_queues(demo: Any, keys: list[str], queue: str, line: str, path: str) -> None:
    h = IVRHarness(demo)
    variables = mset(h.call(Caller(keys)).peer)
    assert (variables["CC_QUEUE"], variables["CC_LINE"], variables["CC_IVR"]) == (queue, line, path)
    assert variables["CC_TIER"] == "silver" and variables["CC_PRIORITY"] == "5"
    assert h.tickets.written() == []


def test_operator_key_says_so_first(demo: Any) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(["0"]))
    assert played(call.peer)[-1] == "cc-ivr-operator"


@pytest.mark.parametrize(("keys", "category"), [(["3", "1"], "service_quality"), (["3", "2"], "parts"),
                                                (["3", "3"], "billing"), (["3", "4"], "staff_attitude"),
                                                (["3", "5"], "sales_promise"), (["3", "6"], "other")])
def test_complaint_files_a_ticket_and_raises_priority(demo: Any, keys: list[str], category: str) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(keys))
    variables = mset(call.peer)
    (ticket_id, ticket), = h.tickets.tickets.items()
    assert (ticket["kind"], ticket["category"], ticket["severity"]) == ("complaint", category, "high")
    assert ticket["customer_id"] == int(variables["CC_CUSTOMER_ID"]) and ticket["uniqueid"] == "1795416928.4"
    assert "+8613912345678" in ticket["body"]
    # silver 5, +2 for the complaint reported in the IVR
    assert (variables["CC_QUEUE"], variables["CC_PRIORITY"], variables["CC_TICKET_ID"]) == \
        ("complaints", "7", str(ticket_id))
    assert played(call.peer)[-1] == "cc-ivr-complaint-recorded"
    assert any("IVR complaint" in r and "+2" in r for r in h.records[0]["reasons"])


def test_breakdown_files_a_repair_ticket_to_service(demo: Any) -> None:
    h = IVRHarness(demo)
    variables = mset(h.call(Caller(["2", "2"])).peer)
    (ticket_id, ticket), = h.tickets.tickets.items()
    assert (ticket["kind"], ticket["category"]) == ("repair", "breakdown")
    assert (variables["CC_QUEUE"], variables["CC_PRIORITY"], variables["CC_LINE"], variables["CC_TICKET_ID"],
            variables["CC_IVR"]) == ("service", "7", "service", str(ticket_id), "main.2/after_sales.2/breakdown")


# -- no key, wrong keys, the language key -----------------------------------------------------------------------
def test_no_input_goes_to_the_operator_never_a_hangup(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["", "", ""])
    call = h.call(caller)
    assert caller.asked == 3  # the menu, then retries = 2
    assert caller.questions[1] == ["cc-ivr-no-input", "cc-ivr-main", "cc-ivr-language"]
    variables = mset(call.peer)
    assert (variables["CC_QUEUE"], variables["CC_IVR"]) == ("hotline", "main.none")
    assert not any(c == "HANGUP" for c in call.peer.commands)


def test_wrong_keys_then_the_operator(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["7", "#", "5"])
    variables = mset(h.call(caller).peer)
    assert caller.questions[1][0] == "cc-ivr-invalid" and caller.questions[2][0] == "cc-ivr-invalid"
    assert variables["CC_QUEUE"] == "hotline"


def test_a_wrong_key_then_a_right_one(demo: Any) -> None:
    h = IVRHarness(demo)
    variables = mset(h.call(Caller(["7", "1"])).peer)
    assert variables["CC_QUEUE"] == "sales"


def test_fewer_retries_by_config(demo: Any) -> None:
    h = IVRHarness(demo, settings=IVRSettings.from_dict({"retries": 0}))
    caller = Caller(["7"])
    variables = mset(h.call(caller).peer)
    assert caller.asked == 1 and variables["CC_QUEUE"] == "hotline"


def test_language_key_switches_to_english_and_back(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["9", "1"])
    call = h.call(caller)
    assert 'SET VARIABLE CHANNEL(language) "en"' in call.peer.commands
    assert caller.questions[1] == ["cc-ivr-main", "cc-ivr-language"]  # the menu again, no retry counted
    variables = mset(call.peer)
    assert (variables["CC_LANGUAGE"], variables["CC_QUEUE"]) == ("en", "sales")
    back = Caller(["9", "9", "1"])
    call = h.call(back)
    assert [c for c in call.peer.commands if "CHANNEL(language)" in c][-1] == 'SET VARIABLE CHANNEL(language) "zh"'
    assert mset(call.peer)["CC_LANGUAGE"] == "zh"


def test_switching_for_ever_ends_with_a_person(demo: Any) -> None:
    h = IVRHarness(demo)
    variables = mset(h.call(Caller(["9"] * 20)).peer)
    assert variables["CC_QUEUE"] == "hotline"


def test_did_language_when_the_caller_has_none(demo: Any) -> None:
    h = IVRHarness(demo, settings=IVRSettings.from_dict({"dids": {HOTLINE: {"start": "menu:main", "language": "en"}}}))
    call = h.call(Caller(["1"]), callerid="anonymous")  # withheld: nobody's preference
    assert not call.peer.commands[0].startswith("SET VARIABLE CHANNEL")  # the channel is en already
    assert mset(call.peer)["CC_LANGUAGE"] == "en"


# -- VIPs, closed lines, DIDs -------------------------------------------------------------------------------------
def test_vip_skips_the_menu_and_is_routed_as_the_number_dialled(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["1"])
    call = h.call(caller, ZHANG_WEI)
    assert caller.asked == 0 and played(call.peer) == []
    via_ivr = mset(call.peer)
    plain = IVRHarness(demo, settings=IVRSettings.from_dict({"enabled": False}))
    direct = mset(plain.call(Caller(), ZHANG_WEI).peer)
    assert {k: via_ivr[k] for k in DIALPLAN_KEYS if k != "CC_DECISION_ID"} == \
        {k: direct[k] for k in DIALPLAN_KEYS if k != "CC_DECISION_ID"}
    assert via_ivr["CC_TIER"] == "diamond" and via_ivr["CC_LINE"] == "hotline"
    assert any("VIP caller, menu skipped" in r for r in h.records[0]["reasons"])


def test_vip_tiers_from_config(demo: Any) -> None:
    h = IVRHarness(demo, settings=IVRSettings.from_dict({"vip_tiers": ["silver"]}))
    caller = Caller(["1"])
    h.call(caller)
    assert caller.asked == 0


def test_closed_line_skips_the_menu_to_the_callback_flow(demo: Any) -> None:
    h = IVRHarness(demo, wall=CLOSED)
    caller = Caller(["1"])
    call = h.call(caller, extension="4008002000")  # the service line's own DID, closed at 23:30
    assert caller.asked == 0
    variables = mset(call.peer)
    assert (variables["CC_QUEUE"], variables["CC_ANNOUNCE"], variables["CC_LINE"]) == \
        ("", "cc-after-hours", "service")


def test_a_line_chosen_after_hours_goes_to_the_callback_flow(demo: Any) -> None:
    h = IVRHarness(demo, wall=CLOSED)  # the hotline is open 24 hours; sales is not
    variables = mset(h.call(Caller(["1"])).peer)
    assert (variables["CC_QUEUE"], variables["CC_ANNOUNCE"], variables["CC_LINE"]) == ("", "cc-after-hours", "sales")


@pytest.mark.parametrize(("extension", "first"), [("4008002000", ["cc-ivr-after-sales"]),
                                                  ("4008003000", ["cc-ivr-complaints"])])
def test_a_lines_own_did_starts_at_its_part_of_the_menu(demo: Any, extension: str, first: list[str]) -> None:
    h = IVRHarness(demo)
    caller = Caller(["0"])
    h.call(caller, extension=extension)
    assert caller.questions[0] == first


def test_a_did_not_in_the_ivr_is_routed_at_once(demo: Any) -> None:
    h = IVRHarness(demo)
    caller = Caller(["1"])
    call = h.call(caller, extension="4008001000")  # sales: straight to its queue
    assert caller.asked == 0 and len(call.peer.commands) == 1
    assert list(mset(call.peer)) == list(DIALPLAN_KEYS)


def test_an_unknown_did_is_routed_at_once_unless_named(demo: Any) -> None:
    h = IVRHarness(demo)  # routing takes an unknown DID as a hotline call; the IVR does not guess
    caller = Caller(["1"])
    call = h.call(caller, extension="4008007777")
    assert caller.asked == 0 and list(mset(call.peer)) == list(DIALPLAN_KEYS)
    named = IVRHarness(demo, settings=IVRSettings.from_dict({"dids": {"4008007777": "menu:complaints"}}))
    caller = Caller(["0"])
    named.call(caller, extension="4008007777")
    assert caller.questions[0] == ["cc-ivr-complaints"]


def test_a_did_entry_wins_over_its_line(demo: Any) -> None:
    h = IVRHarness(demo, settings=IVRSettings.from_dict({"dids": {"4008002000": "route"}}))
    caller = Caller(["1"])
    h.call(caller, extension="4008002000")
    assert caller.asked == 0


def test_a_store_did_hands_over_to_that_stores_queue(demo: Any) -> None:
    h = IVRHarness(demo)
    # the Beijing store's service DID: after-sales menu; 0 is the operator (hotline), breakdown its own queue
    variables = mset(h.call(Caller(["2"]), extension="01064882000").peer)
    assert (variables["CC_QUEUE"], variables["CC_LINE"]) == ("bj-volvo-service", "service")
    assert h.tickets.tickets[int(variables["CC_TICKET_ID"])]["store_id"] == 1


# -- self-service booking -----------------------------------------------------------------------------------------
def test_booking_from_vehicle_to_read_back(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    caller = Caller(["2", "1", "2", "1"])
    call = h.call(caller)
    booking, = h.tickets.bookings
    assert booking.store_id == LIU_YANG_STORE and booking.slot.starts_at == datetime(2026, 3, 17, 2, tzinfo=UTC)
    assert booking.customer_id == 2 and booking.vehicle_id == 68
    assert h.tickets.notified == [booking]
    slots = caller.questions[2]
    # his only car, by model and plate, then three slots: tomorrow, Tuesday 17 March, 9, 10 and 14 o'clock
    assert slots[:10] == ["cc-ivr-booking-for", "cc-model-accord", "cc-province-yue", "cc-letter-a", "cc-letter-b",
                          "cc-letter-l", "cc-letter-u", "cc-letter-p", "cc-letter-v", "cc-ivr-booking-slots"]
    assert slots[10:18] == ["cc-tomorrow", "cc-month-3", "cc-day-17", "cc-weekday-1", "cc-am", "cc-hour-9",
                            "cc-oclock", "cc-press-1"]
    assert slots.count("cc-press-3") == 1 and "cc-press-4" not in slots and slots[-1] == "cc-ivr-booking-choose"
    assert caller.questions[3] == ["cc-ivr-booking-chosen", "cc-tomorrow", "cc-month-3", "cc-day-17", "cc-weekday-1",
                                   "cc-am", "cc-hour-10", "cc-oclock", "cc-ivr-booking-confirm"]
    assert played(call.peer)[-4:] == ["cc-hour-10", "cc-oclock", "cc-ivr-booking-sms", "cc-goodbye"]
    assert call.peer.commands[-1] == "HANGUP"
    assert not any(c.startswith("EXEC MSet") for c in call.peer.commands)


def test_booking_read_back_in_english_word_order(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    caller = Caller(["9", "2", "1", "1", "1"])
    h.call(caller)
    assert caller.questions[4][:8] == ["cc-ivr-booking-chosen", "cc-tomorrow", "cc-weekday-1", "cc-month-3",
                                       "cc-day-17", "cc-hour-9", "cc-oclock", "cc-am"]
    assert len(h.tickets.bookings) == 1


def test_booking_choose_another_time(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    caller = Caller(["2", "1", "1", "2", "3", "1"])
    h.call(caller)
    booking, = h.tickets.bookings
    assert booking.slot.starts_at.hour == 6  # 14:00 in Shanghai, the third slot of the second offer


def test_booking_slot_taken_meanwhile_offers_again(demo: Any) -> None:
    tickets = booking_tickets()
    h = IVRHarness(demo, tickets)
    first = min(tickets.slots, key=lambda s: s.starts_at)
    real_book = tickets.book_appointment

    async def someone_else_first(**kw: Any) -> Any:
        tickets.slots[first] = 0  # another caller took the last place between the offer and the confirmation
        return await real_book(**kw)

    tickets.book_appointment = someone_else_first  # type: ignore[method-assign]
    caller = Caller(["2", "1", "1", "1", "1", "1"])
    call = h.call(caller)
    assert "cc-ivr-booking-taken" in played(call.peer)
    booking, = tickets.bookings
    assert booking.slot != first and booking.slot.starts_at.hour == 2  # 10:00, now the first offered


def test_booking_with_several_cars_asks_which(demo: Any) -> None:
    sessions, _ = demo
    with sessions() as s:
        owners = s.scalars(select(Vehicle.customer_id).group_by(Vehicle.customer_id)
                           .having(func.count(Vehicle.id) > 1).order_by(Vehicle.customer_id)).all()
        owner = next(o for o in owners if not s.get(Customer, o).manual_vip
                     and s.get(Customer, o).tier in ("silver", "bronze", "prospect"))
        number = s.scalars(select(PhoneNumber.e164).join(customer_phones)
                           .where(customer_phones.c.customer_id == owner, PhoneNumber.kind == "mobile")).first()
        cars = s.execute(select(Vehicle.id).where(Vehicle.customer_id == owner)
                         .order_by(Vehicle.purchase_date.desc(), Vehicle.id)).all()
        home = s.scalar(select(Customer.home_store_id).where(Customer.id == owner))
    h = IVRHarness(demo, MemoryTickets(slots=day_slots(home, TOMORROW)))
    caller = Caller(["2", "1", "2", "1", "1"])
    h.call(caller, callerid=number.removeprefix("+86"))
    assert caller.questions[2][0] == "cc-ivr-booking-which" and "cc-press-2" in caller.questions[2]
    booking, = h.tickets.bookings
    assert booking.vehicle_id == cars[1].id


def test_booking_without_a_car_goes_to_service(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    call = h.call(Caller(["2", "1"]), WANG_LEI)
    assert "cc-ivr-no-vehicle" in played(call.peer)
    assert mset(call.peer)["CC_QUEUE"] == "service" and h.tickets.bookings == []


def test_booking_without_free_slots_goes_to_service(demo: Any) -> None:
    h = IVRHarness(demo, MemoryTickets())
    call = h.call(Caller(["2", "1"]))
    assert "cc-ivr-booking-none" in played(call.peer) and mset(call.peer)["CC_QUEUE"] == "service"


def test_booking_key_0_asks_for_a_person(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    variables = mset(h.call(Caller(["2", "1", "0"])).peer)
    assert (variables["CC_QUEUE"], variables["CC_IVR"]) == ("service", "main.2/after_sales.1/booking.slot0")


def test_booking_unconfirmed_goes_to_the_operator(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    variables = mset(h.call(Caller(["2", "1", "1", "", "", ""])).peer)
    assert variables["CC_QUEUE"] == "hotline" and h.tickets.bookings == []


@pytest.mark.parametrize("broken", ["free_slots", "book_appointment"])
def test_booking_failure_hands_the_caller_to_service(demo: Any, broken: str) -> None:
    tickets = booking_tickets()
    tickets.fail.add(broken)
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(["2", "1", "1", "1"]))
    assert "cc-ivr-booking-failed" in played(call.peer)
    assert mset(call.peer)["CC_QUEUE"] == "service" and tickets.bookings == []


def test_notification_failure_keeps_the_booking(demo: Any) -> None:
    tickets = booking_tickets()
    tickets.fail.add("notify_booking")
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(["2", "1", "1", "1"]))
    assert len(tickets.bookings) == 1 and call.peer.commands[-1] == "HANGUP"


# -- hang-ups: nothing half-written -------------------------------------------------------------------------------
@pytest.mark.parametrize("at", range(4))
def test_hangup_before_confirming_books_nothing(demo: Any, at: int) -> None:
    keys: list[Any] = ["2", "1", "2", "1"]
    keys[at] = HANGUP
    tickets = booking_tickets()
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(keys[: at + 1]))
    assert tickets.bookings == [] and tickets.tickets == {} and tickets.notified == []
    assert not any(c.startswith("EXEC MSet") for c in call.peer.commands) and call.peer.closed


def test_hangup_during_the_read_back_keeps_the_whole_booking(demo: Any) -> None:
    tickets = booking_tickets()
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(["2", "1", "2", "1"], hangup_on_play=0))
    assert len(tickets.bookings) == 1 and tickets.notified == tickets.bookings
    assert "HANGUP" not in call.peer.commands  # the caller left first


@pytest.mark.parametrize("keys", [[HANGUP], ["3", HANGUP], ["2", HANGUP]])
def test_hangup_in_a_menu_writes_nothing(demo: Any, keys: list[Any]) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(keys))
    assert h.tickets.tickets == {} and h.records == []
    assert not any(c.startswith("EXEC MSet") for c in call.peer.commands)


def test_hangup_after_reporting_keeps_the_whole_ticket(demo: Any) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(["2", "2"], hangup_on_play=0))  # gone during "your report is recorded"
    (ticket,) = h.tickets.tickets.values()
    assert ticket["kind"] == "repair" and not any(c.startswith("EXEC MSet") for c in call.peer.commands)


# -- status of my car ---------------------------------------------------------------------------------------------
def test_status_reads_todays_visit_and_open_repairs(demo: Any) -> None:
    tickets = MemoryTickets(repairs={2: [OpenRepair(77, "in_progress", 68, "breakdown", datetime(2026, 3, 16,
                                                                                                   tzinfo=UTC))]})
    h = IVRHarness(demo, tickets)
    caller = Caller(["2", "3", "1", "0"])
    call = h.call(caller)
    status = caller.questions[2]
    assert status[0] == "cc-ivr-status-intro" and status[-1] == "cc-ivr-status-end"
    assert status[1:3] == ["cc-model-accord", "cc-province-yue"] and "cc-visit-ready" in status
    assert status[status.index("cc-ivr-repair-report"):][-3:] == ["cc-letter-v", "cc-repair-in_progress",
                                                                  "cc-ivr-status-end"]
    assert caller.questions[3] == status  # 1: heard again
    variables = mset(call.peer)
    assert (variables["CC_QUEUE"], variables["CC_IVR"]) == ("service", "main.2/after_sales.3/status/status.0")


def test_status_with_nothing_to_tell_goes_to_service(demo: Any) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(["2", "3"]), WANG_LEI)
    assert "cc-ivr-status-none" in played(call.peer) and mset(call.peer)["CC_QUEUE"] == "service"


# -- failures and deadlines ----------------------------------------------------------------------------------------
def test_missing_prompt_hands_the_caller_to_a_person(demo: Any) -> None:
    h = IVRHarness(demo)
    call = h.call(Caller(["1"], missing_prompt="cc-ivr-after-sales"), extension="4008002000")
    variables = mset(call.peer)
    assert variables["CC_QUEUE"] == "hotline"


def test_tickets_service_down_still_raises_priority(demo: Any) -> None:
    tickets = MemoryTickets(fail={"create_ticket"})
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(["3", "1"]))
    variables = mset(call.peer)
    assert (variables["CC_QUEUE"], variables["CC_PRIORITY"], variables["CC_TICKET_ID"]) == ("complaints", "7", "")
    assert played(call.peer)[-1] == "cc-ivr-connecting"  # not "your complaint is recorded"


def test_a_hung_tickets_service_costs_the_caller_one_deadline(demo: Any) -> None:
    tickets = MemoryTickets(hang={"create_ticket"})
    h = IVRHarness(demo, tickets)
    call = h.call(Caller(["3", "1"]))
    assert not any(c.startswith("EXEC MSet") for c in call.peer.commands)
    h.clock.advance(1.39)
    call.flush()
    assert not any(c.startswith("EXEC MSet") for c in call.peer.commands)
    h.clock.advance(0.02)  # deadline 1.5 s less the 0.1 s margin
    call.flush()
    assert mset(call.peer)["CC_QUEUE"] == "complaints"


class SlowCaller(Caller):
    """A caller who takes ``think`` seconds (on the test clock) over every question."""

    def __init__(self, clock: Any, think: float, keys: list[Any]) -> None:
        super().__init__(keys)
        self.clock = clock
        self.think = think

    thinking = False

    def _next_key(self) -> Any:
        self.thinking = True  # the prompt plays and the caller thinks: the server's timers run meanwhile
        self.clock.advance(self.think)
        self.thinking = False
        return super()._next_key()


def test_the_deadline_is_per_decision_not_menu_time(demo: Any) -> None:
    tickets = MemoryTickets()
    h = IVRHarness(demo, tickets)
    call = h.call(SlowCaller(h.clock, 20.0, ["3", "1"]))  # 40 s in menus, far past the 1.5 s deadline
    variables = mset(call.peer)
    assert variables["CC_TICKET_ID"] and variables["CC_TIER"] == "silver"
    assert not any("FALLBACK" in str(r) or "timeout" in r for r in h.records[0]["reasons"])


# -- the IVR against Asterisk's own answers ------------------------------------------------------------------------
@pytest.mark.parametrize(("recording", "ends"), [
    ("agi-07-13912345678", "hangup"),  # main 2, after-sales 3: status read back, no key, hung up during the repeat
    ("agi-08-13600000002", "mset"),  # 9: English, then 4: insurance
    ("agi-09-13700000001", "mset"),  # 2, then no key at all in after-sales (GET DATA timeout, Read retries): operator
])
def test_recorded_ivr_sessions_replay(demo: Any, recording: str, ends: str) -> None:
    """The sessions recorded from Asterisk 22.10.1 running this IVR (tests/data/asterisk/README.md) replayed
    against it: the same commands, verb by verb, each answered as Asterisk answered it."""
    transcript = load_agi(recording)
    h = IVRHarness(demo)
    peer = AGIPeer(env_block(transcript.env), Responder(transcript))
    call = Harness({**h.routing.handlers(), **h.ivr.handlers()}, peer, clock=h.clock)
    call.flush()
    verbs = [command_verb(c) for c in peer.commands]
    assert verbs == [e.verb for e in transcript.exchanges][: len(verbs)]
    assert len(verbs) == len(transcript.exchanges)
    assert peer.closed
    if ends == "mset":
        assert peer.commands[-1].startswith("EXEC MSet")
    else:
        assert not any(c.startswith("EXEC MSet") for c in peer.commands)


def test_the_callers_cars_are_read_while_the_menu_plays(demo: Any) -> None:
    reads: list[tuple[str, bool]] = []
    h: IVRHarness
    caller: SlowCaller

    def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append((fn.__name__, caller.thinking))
        return inline(fn, *args, **kwargs)

    h = IVRHarness(demo, booking_tickets(), run_blocking=run_blocking)
    caller = SlowCaller(h.clock, 1.0, ["2", "1", "1", "1"])
    h.call(caller)
    # read once, while the after-sales menu was playing (0.2 s in), not after the caller pressed 1 to book
    assert [r for r in reads if r[0] == "caller_cars"] == [("caller_cars", True)]
    assert len(h.tickets.bookings) == 1


def test_a_quick_caller_does_not_wait_for_the_early_read(demo: Any) -> None:
    h = IVRHarness(demo, booking_tickets())
    h.call(Caller(["2", "1", "1", "1"]))  # no time passes: the booking read the cars itself, the timer is off
    assert len(h.tickets.bookings) == 1
    assert not [c for c in h.clock.getDelayedCalls() if "read_cars" in repr(c.func)]


# -- metrics: how each call left the IVR ----------------------------------------------------------------------------
def _ivr_counts() -> dict[str, float]:
    from ivr import metrics

    out = {f"end={end}": metrics.CALLS.value(end=end)
           for end in ("line", "operator", "booked", "vip", "closed", "caller_left", "error")}
    out.update({f"ticket={kind}": metrics.TICKETS.value(kind=kind) for kind in ("complaint", "repair")})
    out["bookings"] = metrics.BOOKINGS.value()
    out.update({f"failure={what}": metrics.FAILURES.value(what=what) for what in ("error", "timeout")})
    return out


def _counted(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in _ivr_counts().items() if v != before[k]}


@pytest.mark.parametrize(("keys", "tickets", "extension", "transcript", "counted"), [
    (["1"], None, HOTLINE, None, {"end=line": 1}),
    (["", "", ""], None, HOTLINE, None, {"end=operator": 1}),
    (["3", "1"], None, HOTLINE, None, {"end=line": 1, "ticket=complaint": 1}),
    (["2", "2"], None, HOTLINE, None, {"end=line": 1, "ticket=repair": 1}),
    (["2", "1", "1", "1"], "booking", HOTLINE, None, {"end=booked": 1, "bookings": 1}),
    (["2", HANGUP], None, HOTLINE, None, {"end=caller_left": 1}),
    (["3", "1"], "down", HOTLINE, None, {"end=line": 1, "failure=error": 1}),
    ([], None, HOTLINE, ZHANG_WEI, {"end=vip": 1}),
])
def test_each_call_is_counted_by_how_it_left_the_ivr(demo: Any, keys: list[Any], tickets: str | None,
                                                     extension: str, transcript: str | None,
                                                     counted: dict[str, float]) -> None:
    port = (booking_tickets() if tickets == "booking" else
            MemoryTickets(fail={"create_ticket"}) if tickets == "down" else None)
    h = IVRHarness(demo, port)
    before = _ivr_counts()
    if transcript is None:
        h.call(Caller(keys), extension=extension)
    else:
        h.call(Caller(keys), transcript=transcript, extension=extension)
    assert _counted(before) == counted


def test_a_call_to_a_closed_line_is_counted_as_closed(demo: Any) -> None:
    h = IVRHarness(demo, wall=CLOSED)
    before = _ivr_counts()
    h.call(Caller([]), extension="4008002000")  # the service line, closed at 23:30
    assert _counted(before) == {"end=closed": 1}


def test_a_read_asterisk_cannot_play_hands_the_caller_to_a_person_at_once(demo: Any) -> None:
    """Seen on a live Asterisk without the prompt files: Read answers READSTATUS=ERROR at once; taken as "no key",
    the three tries were gone in half a second. It is a prompt failure: the operator, after one question."""

    class NoSounds(Caller):
        def _answer(self, line: str, index: int) -> Any:
            if command_verb(line) == "GET FULL VARIABLE":
                return ("200 result=1 (ERROR:)",)
            return super()._answer(line, index)

    h = IVRHarness(demo)
    caller = NoSounds(["1"])
    call = h.call(caller)
    assert len(caller.questions) == 1
    assert mset(call.peer)["CC_QUEUE"] == "hotline" and mset(call.peer)["CC_IVR"] == "prompt-failed"
