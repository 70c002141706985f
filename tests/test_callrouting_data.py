"""In-memory routing data (DIDs, area codes, calendars, refresh with SQL down), the live-view adapter's queue
selection, and the settings."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ccserver.callrouting.directory_data import REFRESH_FAILURES, RoutingData, RoutingDataRefresher
from ccserver.callrouting.live import live_view, queue_view, queues_of_interest
from ccserver.callrouting.service import new_decision_id
from ccserver.callrouting.settings import RoutingSettings
from ccserver.config import load_config
from ccserver.db.engine import make_engine, session_factory
from ccserver.demo import generate
from ccserver.state.model import AgentStatus, DeviceStatus, Member, QueueState, WaitingCaller
from ccserver.state.tracker import StateTracker
from routing.decision import DidRoute
from routing.numbers import normalize
from routing.rules import RoutingRules


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> RoutingData:
    url = f"sqlite:///{tmp_path_factory.mktemp('data') / 'demo.sqlite3'}"
    generate(url, customers=20, seed=2, as_of=date(2026, 3, 16))
    engine = make_engine(url)
    loaded = RoutingData.load(session_factory(engine))
    engine.dispose()
    return loaded


def test_dids_by_number_and_e164(data: RoutingData) -> None:
    sales = data.did("4008001000")
    assert sales is not None and (sales.line, sales.default_queue, sales.store_id) == ("sales", "sales", "")
    assert data.did("+864008001000") is sales
    shanghai = data.did("02158881000")
    assert shanghai is not None and shanghai.area_code == "21" and shanghai.default_queue == "sh-bmw-sales"
    assert data.did("+862158881000") is shanghai
    assert data.did("4008007777") is None and data.did("") is None
    assert data.is_own_number(normalize("4008001000")) and data.is_own_number(normalize("+862158881000"))
    assert not data.is_own_number(normalize("13800138000"))


def test_calendars(data: RoutingData) -> None:
    def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:  # Shanghai wall time
        return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Shanghai"))

    sales, service = data.did("4008001000"), data.did("02158882000")
    assert sales is not None and service is not None
    assert data.is_open(sales, at(2026, 3, 16, 10))  # Monday morning
    assert not data.is_open(sales, at(2026, 3, 16, 19))  # sales closes 18:30 on weekdays
    assert data.is_open(sales, at(2026, 3, 14, 19))  # Saturday: open till 20:00
    assert not data.is_open(service, at(2026, 3, 15, 10))  # workshops closed on Sunday
    assert not data.is_open(sales, at(2026, 10, 1, 10))  # National Day
    hotline = data.did("4008009000")
    assert hotline is not None and data.is_open(hotline, at(2026, 3, 17, 3))  # the group hotline: day and night
    assert not data.is_open(hotline, at(2026, 10, 1, 3))  # ... but holidays close every line (routing.calendar)
    assert RoutingData.empty().is_open(DidRoute("1", "", "sales", "sales"), at(2026, 3, 16, 3))


def test_refresher_keeps_the_last_good_copy() -> None:
    from ccserver.clock import ManualClock

    async def main() -> None:
        clock = ManualClock()
        first = RoutingData(dids={"1": DidRoute("1", "", "sales", "sales")}, loaded_at=1.0)
        second = RoutingData(dids={"2": DidRoute("2", "", "sales", "sales")}, loaded_at=2.0)
        results: list[Any] = [first, ConnectionError("SQL down"), second]

        async def load(fn: Any) -> RoutingData:
            result = results.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

        refresher = RoutingDataRefresher(lambda: None, load, clock, interval=60)  # type: ignore[arg-type,return-value]
        assert refresher.current.dids == {}
        failures = REFRESH_FAILURES.value()
        await refresher.start()
        assert refresher.current is first
        await clock.advance(59)
        assert results and refresher.failures == 0  # not yet
        await clock.advance(1)
        assert refresher.current is first and refresher.failures == 1 and REFRESH_FAILURES.value() == failures + 1
        await clock.advance(60)
        assert refresher.current is second
        refresher.stop()

    asyncio.run(main())


def test_queues_of_interest_and_queue_view() -> None:
    rules = RoutingRules.from_dict({"overflow": {"vip": "sales", "sales": "hotline"}})
    names = queues_of_interest(DidRoute("4008001000", "", "sales", "sales"), rules)
    assert names == {"sales", "vip", "hotline", "default", "sales-en", "vip-en", "hotline-en", "default-en"}
    q = QueueState("default", "sales", talktime=100, callers=[WaitingCaller("a", 3, 10.0)], members={
        "PJSIP/1": Member("PJSIP/1", status=DeviceStatus.NOT_INUSE, penalty=2, wrapuptime=20),
        "PJSIP/2": Member("PJSIP/2", status=DeviceStatus.NOT_INUSE, paused=True, wrapuptime=20),
        "PJSIP/3": Member("PJSIP/3", status=DeviceStatus.UNAVAILABLE),
    })
    view = queue_view(q)
    assert (view.logged_in, view.free, view.paused, view.free_penalties) == (2, 1, 1, (2,))
    assert view.free_interfaces == ("PJSIP/1",)
    assert view.avg_handle_seconds == 120.0 and view.waiting[0].priority == 3
    tracker = StateTracker()
    tracker.queues[("default", "sales")] = q
    live = live_view(tracker, "default", 0.0, ["sales", "vip"], "agent-9")
    assert set(live.queues) == {"sales"} and not live.complete  # unknown stays absent, never "empty"
    assert live_view(None, "default", 0.0, ["sales"]).queues == {}


def test_live_view_is_complete_after_a_full_queue_status_and_skips_agents_in_wrapup() -> None:
    tracker = StateTracker()
    params = [{"Event": "QueueParams", "Queue": name, "Strategy": "ringall"} for name in ("sales", "agent-8001")]
    member = {"Event": "QueueMember", "Queue": "agent-8001", "Location": "PJSIP/8555", "Status": "1",
              "Membership": "dynamic", "Paused": "0", "InCall": "0", "Wrapuptime": "10"}
    tracker.resync_queues("default", [*params, member], 100.0, complete=True)
    live = live_view(tracker, "default", 100.0, ["sales", "vip"], "agent-8001")
    assert live.complete and set(live.queues) == {"sales", "agent-8001"}
    assert live.queues["agent-8001"].free_interfaces == ("PJSIP/8555",)
    # a queue removed from Asterisk is forgotten at the next full resync
    tracker.resync_queues("default", [params[1], member], 120.0, complete=True)
    assert tracker.queue("sales") is None
    # in wrap-up after a call: app_queue lists the member as free, but it cannot take the call yet
    agent = tracker.agents[("default", "PJSIP/8555")]
    agent.state, agent.wrapup_until = AgentStatus.WRAPUP, 130.0
    assert live_view(tracker, "default", 125.0, [], "agent-8001").queues["agent-8001"].free_interfaces == ()
    assert live_view(tracker, "default", 131.0, [], "agent-8001").queues["agent-8001"].free_interfaces == (
        "PJSIP/8555",)


def test_settings_from_config_and_ids(tmp_path: Any) -> None:
    config = load_config(environ={"CCSERVER_PHONE_DEFAULT_REGION": "HK"})
    settings = RoutingSettings.from_config(config)
    assert settings.default_region == "HK" and settings.deadline_seconds == 1.5
    assert settings.routing_rules() == RoutingRules()
    with pytest.raises(ValueError):
        RoutingSettings(deadline_seconds=0)
    ids = {new_decision_id(1_800_000_000.0) for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 16 and i.isalnum() and i.islower() for i in ids)
    assert new_decision_id(1_800_000_000.0) < new_decision_id(1_800_000_001.0)
    # Standard base32 (lowercased) of the 80 bits: epoch ms, a 16-bit counter, the process's 16-bit salt.
    import base64

    from ccserver.callrouting import service

    for now in (0.0, 1_800_000_000.123, 2**48 / 1000 - 0.001, 2**48 / 1000 + 5.0):
        decision_id = new_decision_id(now)
        value = int.from_bytes(base64.b32decode(decision_id.upper()), "big")
        assert base64.b32encode(value.to_bytes(10, "big")).decode().lower() == decision_id
        assert value >> 32 == int(now * 1000) & 0xFFFF_FFFF_FFFF and value & 0xFFFF == service._SALT


@pytest.mark.parametrize(("closes", "step"), [((18, 0, 0), 60), ((17, 59, 59), 1), ((17, 59, 59, 500_000), 0)])
def test_calendar_memo_answers_as_the_calendar_does(closes: tuple[int, ...], step: int) -> None:
    """The per-line memo (one answer per minute, per second, or none for sub-second hours) never differs from
    routing.calendar's own answer: second by second across an opening, a closing, midnight into a holiday and
    back, for two lines, with instants also going backwards."""
    from datetime import UTC, time, timedelta

    from ccserver.callrouting.directory_data import StoreCalendar
    from routing.calendar import OpeningHours, is_open

    hours = tuple(OpeningHours(wd, time(8, 30), time(*closes)) for wd in range(7)) + tuple(
        OpeningHours(wd, time(22, 0), time(6, 0), line="service") for wd in range(7))
    calendar = StoreCalendar(1, "Asia/Shanghai", hours, holidays=frozenset({date(2026, 10, 1)}))
    assert calendar._step == step
    base = datetime(2026, 9, 30, 0, 29, 50, tzinfo=UTC)  # 08:29:50 in Shanghai
    instants = [base + timedelta(seconds=s) for s in range(0, 30)]  # the opening
    instants += [datetime(2026, 9, 30, 9, 59, 30, tzinfo=UTC) + timedelta(seconds=s, microseconds=250_000 * (s % 4))
                 for s in range(60)]  # the closing, with sub-second steps
    instants += [datetime(2026, 9, 30, 15, 59, 50, tzinfo=UTC) + timedelta(seconds=s) for s in range(20)]  # midnight
    instants += [instants[5], instants[40], instants[-1], instants[0]]  # back in time
    for at in instants:
        for line in (None, "service", "sales"):
            expected = is_open(at, hours, calendar.holidays, calendar.makeup_workdays, "Asia/Shanghai", line)
            assert calendar.is_open(at, line) is expected, (at, line)
