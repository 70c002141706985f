"""The ticket lifecycle, the [tickets] settings and business-hours arithmetic (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ccserver.config import ConfigError, load_config
from ccserver.db.models import TICKET_KINDS, TICKET_STATUSES
from ccserver.tickets.lifecycle import IllegalTransition, allowed_next, check
from ccserver.tickets.settings import SlaSpec, TicketSettings, TicketSettingsError
from routing.calendar import OpeningHours, add_open_time, working_day_close

SH = ZoneInfo("Asia/Shanghai")

LEGAL = {
    ("new", "assigned"), ("new", "in_progress"), ("new", "cancelled"),
    ("assigned", "in_progress"), ("assigned", "cancelled"),
    ("in_progress", "resolved"), ("in_progress", "assigned"), ("in_progress", "cancelled"),
    ("resolved", "customer_called_back"), ("resolved", "closed"), ("resolved", "in_progress"),
    ("customer_called_back", "closed"), ("customer_called_back", "in_progress"),
}  # fmt: skip


@pytest.mark.parametrize("kind", TICKET_KINDS)
def test_every_transition_legal_and_illegal(kind: str) -> None:
    for current in TICKET_STATUSES:
        for to in TICKET_STATUSES:
            legal = (current, to) in LEGAL and not (
                kind in ("complaint", "repair") and (current, to) == ("resolved", "closed"))
            if legal:
                check(kind, current, to)
                assert to in allowed_next(kind, current)
            else:
                with pytest.raises(IllegalTransition) as caught:
                    check(kind, current, to)
                assert caught.value.allowed == allowed_next(kind, current)
                assert to not in caught.value.allowed


def test_complaints_and_repairs_are_called_back_before_closing() -> None:
    assert allowed_next("complaint", "resolved") == ("customer_called_back", "in_progress")
    assert allowed_next("inquiry", "resolved") == ("customer_called_back", "closed", "in_progress")
    assert allowed_next("praise", "closed") == () and allowed_next("repair", "cancelled") == ()
    with pytest.raises(IllegalTransition, match="allowed next: customer_called_back, in_progress"):
        check("repair", "resolved", "closed")


def test_settings_defaults_route_and_sla() -> None:
    s = TicketSettings.from_dict({})
    assert s.department_for("complaint", "bj-volvo", "billing") == "finance"
    assert s.department_for("complaint", "bj-volvo", "parts") == "service"
    assert s.department_for("callback", None, None) == "call_center"
    assert s.sla_for("complaint", "normal") == (SlaSpec("business", timedelta(hours=2)),
                                                SlaSpec("business", timedelta(hours=48)))
    assert s.sla_for("repair", "low") == s.sla_for("repair", "normal") == (SlaSpec("business", timedelta(hours=1)),
                                                                          SlaSpec("close"))
    assert s.sla_for("appointment", "normal") == (SlaSpec("business"), None)
    assert s.slot_capacity("bj-volvo", 0, 9) == 3 and s.slot_capacity("bj-volvo", 6, 9) == 0
    assert s.slot_capacity("bj-volvo", 0, 12) == 0


def test_more_specific_routes_win_and_kinds_fall_back_one_by_one() -> None:
    s = TicketSettings.from_dict({
        "routes": [{"kind": "repair", "department": "workshop"},
                   {"kind": "repair", "store": "sh-bmw", "category": "accident", "department": "bodyshop-sh"},
                   {"kind": "repair", "store": "sh-bmw", "department": "service-sh"}],
        "sla": {"complaint": {"normal": {"first_response": "30m", "resolution": ""}}},
        "slots": {"capacity": [{"weekdays": [0], "hours": [9], "capacity": 2},
                               {"store": "sh-bmw", "weekdays": [0], "hours": [9], "capacity": 5}]},
    })
    assert s.department_for("repair", "sh-bmw", "accident") == "bodyshop-sh"
    assert s.department_for("repair", "sh-bmw", "breakdown") == "service-sh"
    assert s.department_for("repair", "bj-volvo", "accident") == "workshop"
    assert s.sla_for("complaint", "urgent") == (SlaSpec("business", timedelta(minutes=30)), None)
    assert s.sla_for("inquiry", "normal")[1] == SlaSpec("business", timedelta(hours=24))  # built-in kept
    assert s.slot_capacity("sh-bmw", 0, 9) == 5 and s.slot_capacity("gz-honda", 0, 9) == 2
    assert s.slot_line == "service"  # slots keys not given keep their defaults


@pytest.mark.parametrize("values, key", [
    ({"sla": {"complaint": {"normal": {"first_response": "2 days"}}}}, "tickets.sla.complaint.normal.first_response"),
    ({"sla": {"complaint": {"high": {"first_response": "1h"}}}}, "tickets.sla.complaint"),
    ({"sla": {"complaint": {"normal": {}, "severe": {}}}}, "tickets.sla.complaint.severe"),
    ({"sla": {"tyres": {"normal": {}}}}, "tickets.sla.tyres"),
    ({"routes": [{"kind": "complaint", "category": "nope", "department": "x"}]}, "tickets.routes[0].category"),
    ({"routes": [{"kind": "complaint", "department": "bad name"}]}, "tickets.routes[0].department"),
    ({"categories": {"complaint": "billing"}}, "tickets.categories.complaint"),
    ({"slots": {"capacity": [{"hours": [25], "capacity": 1}]}}, "tickets.slots.capacity[0].hours"),
    ({"slots": {"capacity": [{"hours": [9], "capacity": -1}]}}, "tickets.slots.capacity[0].capacity"),
    ({"sla_warning_minutes": "soon"}, "tickets.sla_warning_minutes"),
])  # fmt: skip
def test_bad_settings_name_the_key(values: dict, key: str) -> None:
    with pytest.raises(TicketSettingsError, match=key.replace("[", r"\[").replace("]", r"\]")):
        TicketSettings.from_dict(values)


def test_config_layers_reach_the_ticket_settings(tmp_path) -> None:
    env = {"CCSERVER_TICKETS_SLA": '{"complaint": {"normal": {"first_response": "1h", "resolution": "8h"}}}',
           "CCSERVER_NOTIFY_WEBHOOK_URL": "https://hook:secret@hooks.example.com/cc",
           "CCSERVER_NOTIFY_WEBHOOK_SECRET": "s3cret", "CCSERVER_NOTIFY_RETRY_DELAYS": "1,2,3"}
    config = load_config(environ=env)
    s = TicketSettings.from_config(config)
    assert s.sla_for("complaint", "normal")[0] == SlaSpec("business", timedelta(hours=1))
    assert config.notify.retry_delays == [1.0, 2.0, 3.0]
    shown = config.redacted()["notify"]
    assert shown["webhook_secret"] == "********" and "secret" not in shown["webhook_url"]
    with pytest.raises(ConfigError, match=r"\[tickets\] tickets.sla.complaint.normal.resolution"):
        load_config(environ={"CCSERVER_TICKETS_SLA": '{"complaint": {"normal": {"resolution": "forever"}}}'})
    with pytest.raises(ConfigError, match="notify.webhook_url"):
        load_config(environ={"CCSERVER_NOTIFY_WEBHOOK_URL": "ftp://x"})
    with pytest.raises(ConfigError, match="notify.retry_delays"):
        load_config(environ={"CCSERVER_NOTIFY_RETRY_DELAYS": "[]"})


# --- business hours arithmetic --------------------------------------------------------------------------------

# Weekdays 08:30-12:00 and 13:30-18:00, Saturday 09:00-12:00, closed Sunday.
HOURS = (*(OpeningHours(d, time(8, 30), time(12, 0)) for d in range(5)),
         *(OpeningHours(d, time(13, 30), time(18, 0)) for d in range(5)),
         OpeningHours(5, time(9, 0), time(12, 0)))
HOLIDAY = date(2026, 10, 1)  # a Thursday
MAKEUP = date(2026, 10, 11)  # a Sunday worked as a Monday


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


@pytest.mark.parametrize("start, hours, expected", [
    (at("2026-09-28", "09:00"), 2, at("2026-09-28", "11:00")),      # within the morning
    (at("2026-09-28", "11:00"), 2, at("2026-09-28", "14:30")),      # over lunch
    (at("2026-09-28", "17:00"), 2, at("2026-09-29", "09:30")),      # over the night
    (at("2026-09-28", "20:00"), 0, at("2026-09-29", "08:30")),      # closed: "at once" = when it opens
    (at("2026-09-28", "10:00"), 0, at("2026-09-28", "10:00")),      # open: at once
    (at("2026-09-26", "11:00"), 2, at("2026-09-28", "09:30")),      # Saturday morning, Sunday closed
    (at("2026-09-30", "17:00"), 2, at("2026-10-02", "09:30")),      # over the 1 October holiday
    (at("2026-10-10", "11:30"), 1, at("2026-10-11", "09:00")),      # into the make-up Sunday
    (at("2026-09-28", "08:30"), 48, at("2026-10-06", "15:00")),     # 48 business hours: six working days
])  # fmt: skip
def test_add_open_time(start: datetime, hours: float, expected: datetime) -> None:
    got = add_open_time(start, timedelta(hours=hours), HOURS, {HOLIDAY}, {MAKEUP}, "Asia/Shanghai")
    assert got == expected


@pytest.mark.parametrize("start, expected", [
    (at("2026-09-28", "10:00"), at("2026-09-28", "18:00")),
    (at("2026-09-28", "12:30"), at("2026-09-28", "18:00")),         # lunch: the same working day
    (at("2026-09-28", "19:00"), at("2026-09-29", "18:00")),         # after hours: the next one
    (at("2026-09-30", "18:30"), at("2026-10-02", "18:00")),         # the holiday is skipped
    (at("2026-09-26", "13:00"), at("2026-09-28", "18:00")),         # Saturday afternoon → Monday
])  # fmt: skip
def test_working_day_close(start: datetime, expected: datetime) -> None:
    assert working_day_close(start, HOURS, {HOLIDAY}, {MAKEUP}, "Asia/Shanghai") == expected


def test_no_hours_means_no_answer() -> None:
    now = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
    assert add_open_time(now, timedelta(hours=1), (), set(), set(), "Asia/Shanghai") is None
    assert working_day_close(now, (), set(), set(), "Asia/Shanghai") is None
