"""KPI interval rows in SQL (SQLite and PostgreSQL): written at interval ends, rewritten not added, read back by a
new book after a restart and summed into reports; the CSV form parses and never turns text into a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.kpi import ServerBook
from ccserver.kpi.reports import AGENT_COLUMNS, QUEUE_COLUMNS, agent_report, queue_report, to_csv
from ccserver.kpi.store import KpiStore
from ccserver.state import StateTracker
from tests.test_kpi_book import T0, TZ, abandoned, agent, answered, book, ended, feed, offered, queue_now
from tests.test_state_support import timed_messages


@pytest.fixture
def store(db_url: str) -> Any:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield KpiStore(session_factory(engine))
    engine.dispose()


def test_the_busy_hour_lands_in_sql_and_a_new_book_reads_today_back(store: KpiStore) -> None:
    kpi = book()
    tracker = StateTracker(publish=kpi.apply)
    for msg, t in timed_messages("ami-inbound-load-40-calls"):
        tracker.handle(msg, t)
    end = kpi.end
    before = kpi.snapshot(end)["queues"]["bulk"]["today"]
    kpi.roll(end)  # the interval ends: its rows are pending for SQL
    rows = kpi.take_pending()
    assert {r["kind"] for r in rows} == {"queue", "agent"} and len(rows) == 21  # bulk and its 20 agents
    assert store.write(rows) == 21
    # ccserver restarts (no Redis): a new book for the same day starts from what SQL holds.
    fresh = book()
    fresh.roll(end + 60)
    fresh.seed(store.day_rows("default", fresh.day))
    after = fresh.snapshot(end + 60)
    assert after["queues"]["bulk"]["today"] == before
    assert after["queues"]["bulk"]["interval"]["offered"] == 0  # a new interval
    assert sum(a["today"]["handled"] for a in after["agents"].values()) == 26
    assert store.day_rows("other-server", fresh.day) == []


def test_an_interval_written_twice_is_replaced_not_added(store: KpiStore) -> None:
    b = feed(book(), offered("a", T0), answered("a", T0 + 5, 5.0))
    store.write(b.rows())  # partial, at a shutdown
    b.apply(offered("b", T0 + 10))
    b.apply(abandoned("b", T0 + 20, 10.0))
    store.write(b.rows() + b.rows())  # the whole interval (twice in one batch, too)
    (row,) = store.day_rows("default", "2026-11-23")
    assert (row["offered"], row["answered"], row["abandoned"]) == (2, 1, 1)
    assert row["interval_start"] == T0 and row["sl_threshold"] == 20.0


def _two_days(store: KpiStore) -> None:
    b = feed(book(), agent("idle", T0, "logged_out"), offered("a", T0), answered("a", T0 + 5, 5.0),
             ended("a", T0 + 65, "answered", talk=60.0), offered("b", T0 + 900), abandoned("b", T0 + 930, 30.0))
    b.roll(T0 + 1800)
    b.apply(offered("c", T0 + 86_400))
    b.apply(answered("c", T0 + 86_400 + 40, 40.0))
    b.roll(T0 + 86_400 + 900)
    store.write(b.take_pending())


def test_reports_sum_intervals_and_days(store: KpiStore) -> None:
    _two_days(store)
    start, end = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 2 * 86_400, UTC)
    by_day = queue_report(store.queue_rows(start, end), "day", TZ)
    assert [(r["period"], r["offered"], r["answered"], r["abandoned"], r["service_level"]) for r in by_day] == [
        ("2026-11-23", 2, 1, 1, 50.0), ("2026-11-24", 1, 1, 0, 0.0)]
    by_interval = queue_report(store.queue_rows(start, end), "15m", TZ)
    assert [r["period"] for r in by_interval] == [
        "2026-11-23T09:00:00+08:00", "2026-11-23T09:15:00+08:00", "2026-11-24T09:00:00+08:00"]
    assert queue_report(store.queue_rows(start, end, queues={"vip"}), "day", TZ) == []
    one_day = store.queue_rows(start, start + timedelta(days=1))
    assert {r["day"] for r in one_day} == {"2026-11-23"}
    agents = agent_report(store.agent_rows(start, end), "day", TZ)
    assert [(a["period"], a["interface"], a["handled"]) for a in agents] == [
        ("2026-11-23", "PJSIP/8001", 1), ("2026-11-24", "PJSIP/8001", 0)]
    # The agent was available all along: 30 minutes of the first day counted (then nobody rolled the book for a
    # day: that gap is not counted), 15 of the second.
    assert [a["available"] for a in agents] == [1800.0, 900.0]
    assert agents[0]["talk"] == 60.0 and agents[0]["aht"] == 60.0
    assert agent_report(store.agent_rows(start, end, interfaces={"PJSIP/9999"}), "day", TZ) == []


def test_csv_parses_and_hostile_names_stay_text() -> None:
    rows = [
        {"period": "2026-11-23", "server": "default", "queue": "=HYPERLINK(\"http://evil\",\"x\")", "offered": 3,
         "service_level": 66.7, "asa": None},
        {"period": "2026-11-23", "server": "default", "queue": "+86 13800138000", "offered": 1},
        {"period": "2026-11-23", "server": "default", "queue": "-1+1", "offered": 0},
        {"period": "2026-11-23", "server": "default", "queue": "@SUM(A1)", "offered": 0},
        {"period": "2026-11-23", "server": "default", "queue": "\tcmd", "offered": 0},
        {"period": "2026-11-23", "server": "default", "queue": "售后, \"服务\"\r\n第二行", "offered": 2},
    ]
    data = to_csv(rows, QUEUE_COLUMNS)
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [p["queue"] for p in parsed] == ["'=HYPERLINK(\"http://evil\",\"x\")", "'+86 13800138000", "'-1+1",
                                            "'@SUM(A1)", "'\tcmd", "售后, \"服务\"\r\n第二行"]
    assert all(not p["queue"].startswith(("=", "+", "-", "@", "\t")) for p in parsed)
    assert parsed[0]["offered"] == "3" and parsed[0]["service_level"] == "66.7" and parsed[0]["asa"] == ""
    agent_rows = [{"period": "2026-11-23", "server": "default", "interface": "PJSIP/8001", "name": "=1+2",
                   "paused_by_reason": {"lunch": 60.0, "": 5.0}, "queues": ["vip", "sales"]}]
    (agent_row,) = csv.DictReader(io.StringIO(to_csv(agent_rows, AGENT_COLUMNS).decode("utf-8-sig"), newline=""))
    assert agent_row["name"] == "'=1+2"
    assert agent_row["paused_by_reason"] == "(none)=5.0; lunch=60.0"
    assert agent_row["queues"] == "sales vip"


def test_a_queue_row_of_the_book_fits_the_table(store: KpiStore) -> None:
    b = feed(book(), offered("a", T0, "q" * 80), answered("a", T0 + 1, 1.0, "q" * 80),
             ended("a", T0 + 2, "answered", "q" * 80, 1.0))
    assert store.write(b.rows()) == 2
    assert queue_now(ServerBook.from_state(b.to_state(), b.settings), T0 + 2, "q" * 80)["today"]["answered"] == 1
