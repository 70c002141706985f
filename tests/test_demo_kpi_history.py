"""Demo KPI history (``ccserver demo-data --kpi-days N``): counters that keep the KPI definitions, agents whose
calls add up to the queues', deterministic rows, and reports that read them back."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ccserver.cli import main
from ccserver.db.engine import make_engine, session_factory
from ccserver.demo.generator import DemoGenerator
from ccserver.demo.kpi_history import SLOT, kpi_history
from ccserver.kpi.reports import agent_report, queue_report
from ccserver.kpi.store import KpiStore

AS_OF = date(2026, 11, 23)  # a Monday: the history holds a weekend
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def reference():
    tables = dict(DemoGenerator(200, 5, AS_OF, "PJSIP/{ext}").reference_tables("x", "y"))
    return tables["queues"], tables["users"]


@pytest.fixture(scope="module")
def history(reference):
    return kpi_history(*reference, AS_OF, 7, seed=5)


def test_queue_counters_keep_the_kpi_definitions(history):
    queue_rows, _ = history
    assert len(queue_rows) > 1000
    for r in queue_rows:
        assert r["offered"] == r["answered"] + r["abandoned"] + r["unanswered"] > 0
        assert 0 <= r["short_abandoned"] <= r["abandoned"]
        assert 0 <= r["answered_in_sl"] <= r["answered"] == r["handled"]
        assert r["max_wait"] * r["answered"] >= r["wait_answered"]  # no answered caller waited longer than the max
        assert (r["talk"] > 0) == (r["handled"] > 0)
        assert r["sl_threshold"] == 20.0 and r["server"] == "default"
    totals = Counter()
    for r in queue_rows:
        totals.update({k: r[k] for k in ("offered", "answered", "abandoned", "answered_in_sl", "short_abandoned")})
    service_level = totals["answered_in_sl"] / (totals["offered"] - totals["short_abandoned"])
    assert 0.6 < service_level < 0.95  # a plausible centre, not a perfect one
    assert 0.02 < totals["abandoned"] / totals["offered"] < 0.2


def test_intervals_are_the_days_before_as_of_in_local_time(history, reference):
    queue_rows, agent_rows = history
    days = {r["day"] for r in queue_rows}
    assert days == {AS_OF - timedelta(days=n) for n in range(1, 8)}
    for r in queue_rows + agent_rows:
        local = r["interval_start"].astimezone(SHANGHAI)
        assert local.date() == r["day"]
        assert local.minute % 15 == 0 and local.second == 0
    assert not any(r["queue"] == "callback" for r in queue_rows)  # outbound return visits take no inbound callers
    slots = Counter((r["queue"], r["interval_start"]) for r in queue_rows)
    assert max(slots.values()) == 1  # one row per queue and interval, as the unique key wants
    queues = {q["name"] for q in reference[0]}
    assert {r["queue"] for r in queue_rows} <= queues
    # the hotline is open in the evening, the workshops' service lines are not
    evening = {r["queue"] for r in queue_rows if r["interval_start"].astimezone(SHANGHAI).hour >= 19}
    assert "hotline" in evening and not any(q.endswith("-service") for q in evening)


def test_agents_handle_exactly_the_answered_calls_within_their_time(history, reference):
    queue_rows, agent_rows = history
    agents = {u["interface"]: u for u in reference[1] if u["role"] == "agent"}
    assert {r["interface"] for r in agent_rows} == set(agents)
    for day in {r["day"] for r in queue_rows}:
        answered = sum(r["handled"] for r in queue_rows if r["day"] == day)
        assert sum(r["handled"] for r in agent_rows if r["day"] == day) == answered
    for r in agent_rows:
        states = r["available"] + r["ringing"] + r["talking"] + r["wrapup"] + r["paused"]
        assert states == pytest.approx(SLOT) and min(r["available"], r["talking"], r["wrapup"]) >= 0
        assert r["name"] == agents[r["interface"]]["display_name"]
        assert sum(r["paused_by_reason"].values()) == r["paused"]
        assert set(r["paused_by_reason"]) <= {"lunch", "break"}
        assert bool(r["queues"]) == (r["handled"] > 0)
    per_agent_day = Counter((r["interface"], r["day"]) for r in agent_rows)
    assert set(per_agent_day.values()) == {36}  # a nine-hour shift of 15-minute intervals


def test_same_seed_same_rows_and_none_without_days(reference):
    again = kpi_history(*reference, AS_OF, 2, seed=5)
    assert again == kpi_history(*reference, AS_OF, 2, seed=5)
    assert again != kpi_history(*reference, AS_OF, 2, seed=6)
    assert kpi_history(*reference, AS_OF, 0, seed=5) == ([], [])
    with pytest.raises(ValueError, match="negative"):
        kpi_history(*reference, AS_OF, -1, seed=5)
    strict = kpi_history(*reference, AS_OF, 2, seed=5, sl_seconds=5.0)
    assert sum(r["answered_in_sl"] for r in strict[0]) < sum(r["answered_in_sl"] for r in again[0])


def test_demo_data_command_loads_the_history_the_reports_read(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *data]) == 0
    assert main(["demo-data", "--customers", "50", "--seed", "5", "--as-of", AS_OF.isoformat(), "--kpi-days", "2",
                 *data]) == 0
    capsys.readouterr()
    engine = make_engine(f"sqlite:///{tmp_path / 'ccserver.sqlite3'}")
    try:
        store = KpiStore(session_factory(engine))
        start = datetime(2026, 11, 20, 16, tzinfo=UTC)  # local midnight of the 21st
        queue_rows = store.queue_rows(start, start + timedelta(days=3))
        agent_rows = store.agent_rows(start, start + timedelta(days=3))
    finally:
        engine.dispose()
    expected_queues, expected_agents = kpi_history(
        *(lambda t: (t["queues"], t["users"]))(dict(DemoGenerator(50, 5, AS_OF, "PJSIP/{ext}")
                                                     .reference_tables("x", "y"))), AS_OF, 2, seed=5)
    assert len(queue_rows) == len(expected_queues) and len(agent_rows) == len(expected_agents)
    by_day = queue_report(queue_rows, "day", "Asia/Shanghai")
    assert {r["period"] for r in by_day} == {"2026-11-21", "2026-11-22"}
    hotline = next(r for r in by_day if r["queue"] == "hotline" and r["period"] == "2026-11-22")
    assert hotline["offered"] == sum(r["offered"] for r in expected_queues
                                     if r["queue"] == "hotline" and r["day"] == date(2026, 11, 22))
    agents = agent_report(agent_rows, "day", "Asia/Shanghai")
    assert sum(r["handled"] for r in agents) == sum(r["handled"] for r in expected_queues)
    # loaded once: --if-empty leaves it, and a negative count is refused before anything is touched
    assert main(["demo-data", "--if-empty", "--kpi-days", "2", *data]) == 0
    with pytest.raises(SystemExit):
        main(["demo-data", "--replace", "--kpi-days", "-1", *data])
    assert "between 0 and 366" in capsys.readouterr().err
