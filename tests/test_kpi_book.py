"""The KPI book (pure counting): recorded Asterisk traffic through the real tracker, and hand-made event sequences
for the rules the recordings do not exercise (service level, short abandons, wrap-up, interval ends)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ccserver.events import (
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallTransferred,
    Resynced,
)
from ccserver.kpi import KpiSettings, ServerBook
from ccserver.kpi.intervals import interval_start, local_day
from ccserver.state import StateTracker
from tests.test_state_support import timed_messages

TZ = "Asia/Shanghai"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(TZ)).timestamp()  # 09:00 local: an interval starts
_seq = itertools.count(1)


def book(**settings: Any) -> ServerBook:
    return ServerBook("default", KpiSettings(time_zone=TZ, **settings))


def offered(uid: str, at: float, queue: str = "sales", **kw: Any) -> CallOffered:
    return CallOffered("default", next(_seq), at, uid, uid, queue, 1, kw.get("priority", 0), kw.get("caller"), None,
                       None, None, kw.get("customer_id"), kw.get("tier"))


def answered(uid: str, at: float, wait: float, queue: str = "sales", agent: str = "PJSIP/8001") -> CallAnswered:
    return CallAnswered("default", next(_seq), at, uid, uid, queue, agent, "Agent", wait, int(wait), None, None)


def abandoned(uid: str, at: float, wait: float, queue: str = "sales") -> CallAbandoned:
    return CallAbandoned("default", next(_seq), at, uid, queue, 1, 1, wait, int(wait), None, None, None)


def ended(uid: str, at: float, outcome: str, queue: str = "sales", talk: float | None = None) -> CallEnded:
    return CallEnded("default", next(_seq), at, uid, outcome, queue, None, None, talk, {}, {})


def agent(state: str, at: float, previous: str = "idle", interface: str = "PJSIP/8001", reason: str = "",
          queues: tuple[str, ...] = ("sales",)) -> AgentStateChanged:
    return AgentStateChanged("default", next(_seq), at, interface, "Agent", state, previous, at, reason, queues, None)


def resynced(at: float, calls: list[dict] = (), queues: list[dict] = (), agents: list[dict] = ()) -> Resynced:
    return Resynced("default", next(_seq), at, tuple(calls), tuple(queues), tuple(agents), False)


def feed(b: ServerBook, *events: Any) -> ServerBook:
    for event in events:
        b.apply(event)
    return b


def queue_now(b: ServerBook, now: float, name: str = "sales") -> dict:
    return b.snapshot(now)["queues"][name]


# -- recorded traffic --------------------------------------------------------------------------------------------


def replay_into(name: str, stop_at: str | None = None, tracker: StateTracker | None = None,
                kpi: ServerBook | None = None) -> tuple[ServerBook, StateTracker, list]:
    kpi = kpi or book()
    tracker = tracker or StateTracker(publish=kpi.apply)
    messages = timed_messages(name)
    for i, (msg, t) in enumerate(messages):
        if stop_at is not None and msg.get("Event") == stop_at:
            return kpi, tracker, messages[i:]
        tracker.handle(msg, t)
    return kpi, tracker, []


def test_busy_hour_counts_agree_with_asterisk_and_both_averages_are_reported():
    kpi, tracker, rest = replay_into("ami-inbound-load-40-calls", stop_at="QueueSummary")
    summary = next(m for m, _ in rest if m.get("Event") == "QueueSummary")
    params = next(m for m, _ in rest if m.get("Event") == "QueueParams")
    bulk = queue_now(kpi, tracker.now, "bulk")
    today = bulk["today"]
    # Counts: exactly Asterisk's (every caller either answered and completed, or abandoned).
    assert (today["answered"], today["abandoned"]) == (int(params["Completed"]), int(params["Abandoned"])) == (26, 14)
    assert today["offered"] == 40 == int(params["Completed"]) + int(params["Abandoned"])
    assert today["handled"] == 26 and today["unanswered"] == 0 and today["short_abandoned"] == 0
    assert bulk["waiting"] == int(summary["Callers"]) == 0 and bulk["callers"] == []
    # Asterisk's running averages, computed the app_queue way from the book's own samples: equal to its figures.
    assert bulk["asterisk"] == {"completed": 26, "abandoned": 14, "holdtime": int(summary["HoldTime"]),
                                "talktime": int(summary["TalkTime"])}
    assert (int(params["Holdtime"]), int(params["TalkTime"])) == (23, 1)
    # The true averages, next to them: every answered caller's wait from the recording's own AgentConnect HoldTime.
    holds = [int(m["HoldTime"]) for m, _ in timed_messages("ami-inbound-load-40-calls")
             if m.get("Event") == "AgentConnect"]
    talks = [int(m["TalkTime"]) for m, _ in timed_messages("ami-inbound-load-40-calls")
             if m.get("Event") == "AgentComplete"]
    assert today["asa"] == pytest.approx(sum(holds) / len(holds), abs=0.5)  # 13.5 s, not Asterisk's 23
    assert today["aht"] == pytest.approx(sum(talks) / len(talks), abs=0.5)  # no wrap-up in this lab
    assert today["answered_in_sl"] == sum(1 for h in holds if h < 20)  # HoldTime 20 was 20.02 s: not within 20 s
    assert today["service_level"] == pytest.approx(100 * today["answered_in_sl"] / 40, abs=0.1)
    assert today["abandon_rate"] == 35.0
    assert today["max_wait"] == pytest.approx(27.0, abs=0.1)
    assert today == bulk["interval"]  # one interval: today is the interval
    # Agents: 26 calls handled between them; each agent's time adds up to the time observed.
    agents = kpi.snapshot(tracker.now)["agents"]
    assert len(agents) == 20 and sum(a["today"]["handled"] for a in agents.values()) == 26
    first_seen = {}
    for msg, t in timed_messages("ami-inbound-load-40-calls"):
        if msg.get("Event") == "AgentCalled":
            first_seen.setdefault(msg["Interface"], t)
    for interface, a in agents.items():
        figures = a["today"]
        assert a["state"] == "idle"
        assert figures["signed_in"] == pytest.approx(tracker.now - first_seen[interface], abs=0.2)
        assert 0 < figures["occupancy"] < 100
        assert figures["aht"] == pytest.approx(figures["talk"] / figures["handled"], abs=0.1)
    # Applying Asterisk's own QueueStatus (a resync's first half) changes no count.
    for msg, t in rest:
        tracker.handle(msg, t)
    assert queue_now(kpi, tracker.now, "bulk")["today"] == today


def test_asterisk_restart_leaves_no_ghost_and_counts_once():
    kpi, tracker, _ = replay_into("ami-asterisk-restart-with-waiting-caller")
    complaints = queue_now(kpi, tracker.now, "complaints")
    # Asterisk's clean shutdown still sent the abandon: one offered, one abandoned, nobody left waiting.
    assert (complaints["today"]["offered"], complaints["today"]["abandoned"], complaints["waiting"]) == (1, 1, 0)
    assert complaints["today"]["short_abandoned"] == 1  # hung up after 1 s
    assert complaints["asterisk"] == {"completed": 0, "abandoned": 0, "holdtime": 0, "talktime": 0}  # restarted
    assert not kpi.visits


def _split_restart() -> tuple[list, list]:
    msgs = timed_messages("ami-asterisk-restart-with-waiting-caller")
    first_status = next(i for i, (m, _) in enumerate(msgs) if m.get("Event") == "QueueStatusComplete")
    second_boot = next(i for i, (m, _) in enumerate(msgs) if m.get("Event") == "FullyBooted" and i > first_status)
    return msgs[: first_status + 1], msgs[second_boot:]


def test_asterisk_crash_with_a_waiting_caller_then_resync_counts_the_caller_once():
    before, after = _split_restart()
    kpi = book()
    tracker = StateTracker(publish=kpi.apply)
    for msg, t in before:
        tracker.handle(msg, t)
    waiting = queue_now(kpi, tracker.now, "complaints")
    assert waiting["waiting"] == 1 and waiting["callers"][0]["uniqueid"] == "1795417153.162"
    assert waiting["today"]["offered"] == 0  # counted when the visit ends
    for msg, t in after:  # nothing between: as if Asterisk had crashed
        tracker.handle(msg, t)
    complaints = queue_now(kpi, tracker.now, "complaints")
    assert complaints["waiting"] == 0 and complaints["callers"] == []
    assert (complaints["today"]["offered"], complaints["today"]["unanswered"], complaints["today"]["abandoned"]) == (
        1, 1, 0)
    # The same snapshot again (another reconnect): nothing changes.
    counts = complaints["today"]
    tracker.resync("default", [], [], tracker.now + 1)
    assert queue_now(kpi, tracker.now + 1, "complaints")["today"] == counts


# -- the rules, on hand-made sequences ---------------------------------------------------------------------------


def test_service_level_short_abandons_and_unanswered():
    b = feed(book(short_abandon_seconds=5.0, service_level_seconds=20.0),
             offered("a", T0), answered("a", T0 + 10, 10.0),  # within 20 s
             offered("b", T0 + 1), answered("b", T0 + 31, 30.0),  # not within
             offered("c", T0 + 2), abandoned("c", T0 + 5, 3.0),  # short abandon
             offered("d", T0 + 3), abandoned("d", T0 + 43, 40.0),  # a real abandon
             offered("e", T0 + 4), ended("e", T0 + 64, "no_answer"),  # the queue's timeout, then hung up
             offered("f", T0 + 5))  # still waiting
    q = queue_now(b, T0 + 100)
    today = q["today"]
    assert (today["offered"], today["answered"], today["abandoned"], today["short_abandoned"],
            today["unanswered"], today["answered_in_sl"]) == (5, 2, 2, 1, 1, 1)
    assert today["service_level"] == 25.0  # 1 / (5 - 1)
    assert today["abandon_rate"] == 40.0
    assert today["asa"] == 20.0
    assert today["max_wait"] == 60.0
    assert q["waiting"] == 1 and q["longest_wait"] == 95.0


def test_per_queue_threshold():
    b = feed(book(service_level_by_queue={"vip": 10.0}),
             offered("a", T0, "vip"), answered("a", T0 + 15, 15.0, "vip"),
             offered("b", T0, "sales"), answered("b", T0 + 15, 15.0, "sales"))
    assert queue_now(b, T0 + 20, "vip")["today"]["answered_in_sl"] == 0
    assert queue_now(b, T0 + 20, "sales")["today"]["answered_in_sl"] == 1
    assert queue_now(b, T0 + 20, "vip")["sl_threshold"] == 10.0


def test_handle_time_wrapup_capped_by_the_members_wrapuptime_and_occupancy():
    b = book()
    b.apply(resynced(T0, queues=[{"name": "sales", "completed": 0, "abandoned": 0, "holdtime": 0, "talktime": 0,
                                  "members": {"PJSIP/8001": {"wrapuptime": 10}}}],
                     agents=[{"interface": "PJSIP/8001", "name": "Agent", "state": "idle", "since": T0,
                              "paused_reason": "", "queues": ["sales"]}]))
    feed(b, offered("a", T0 + 10), agent("ringing", T0 + 12), answered("a", T0 + 15, 5.0),
         agent("talking", T0 + 15, "ringing"), agent("wrapup", T0 + 75, "talking"),
         # The tracker notices the wrap-up's end only at the agent's next event, 65 s later.
         agent("paused", T0 + 150, "wrapup", reason="lunch"), ended("a", T0 + 160, "answered", talk=60.0))
    snap = b.snapshot(T0 + 200)
    a = snap["agents"]["PJSIP/8001"]["today"]
    assert a["handled"] == 1 and a["talk"] == 60.0  # the talk ended when the agent left the call
    assert a["wrapup"] == 10.0  # wrapuptime, not the 75 s until the next event
    assert (a["available"], a["ringing"], a["talking"]) == (12 + 65.0, 3.0, 60.0)
    assert a["paused"] == 50.0 and a["paused_by_reason"] == {"lunch": 50.0}
    assert a["occupancy"] == pytest.approx(100 * 70 / (77 + 3 + 70), abs=0.1)
    assert a["aht"] == 70.0
    q = snap["queues"]["sales"]["today"]
    assert (q["handled"], q["talk"], q["wrapup"], q["aht"]) == (1, 60.0, 10.0, 70.0)
    assert snap["agents"]["PJSIP/8001"]["state"] == "paused"


def test_wrapup_shows_available_once_the_wrapuptime_is_over():
    b = book()
    b.set_wrapup_time("sales", "PJSIP/8001", 30)
    feed(b, agent("idle", T0, "logged_out"), offered("a", T0), answered("a", T0 + 5, 5.0),
         agent("talking", T0 + 5), agent("wrapup", T0 + 20, "talking"))
    assert b.snapshot(T0 + 40)["agents"]["PJSIP/8001"]["state"] == "wrapup"
    later = b.snapshot(T0 + 60)["agents"]["PJSIP/8001"]
    assert later["state"] == "idle" and later["since"] == T0 + 50
    assert later["today"]["wrapup"] == 30.0 and later["today"]["available"] == 5.0 + 10.0


def test_intervals_close_into_rows_and_days_reset_at_local_midnight():
    b = feed(book(), agent("idle", T0, "logged_out"), offered("a", T0 + 60), answered("a", T0 + 70, 10.0))
    assert b.pending == []
    b.apply(offered("b", T0 + 900 + 5))  # the next interval: the first one closes
    rows = b.take_pending()
    queue_row = next(r for r in rows if r["kind"] == "queue")
    agent_row = next(r for r in rows if r["kind"] == "agent")
    assert (queue_row["interval_start"], queue_row["day"], queue_row["offered"], queue_row["answered"]) == (
        T0, "2026-11-23", 1, 1)
    assert agent_row["available"] == 900.0 and agent_row["queues"] == ["sales"]  # counted up to the interval's end
    b.roll(T0 + 1800)
    (agent_only,) = b.take_pending()
    assert agent_only["kind"] == "agent" and agent_only["available"] == 900.0  # the waiting caller is not counted
    assert queue_now(b, T0 + 1800)["today"]["offered"] == 1
    midnight = datetime(2026, 11, 24, 0, 0, tzinfo=ZoneInfo(TZ)).timestamp()
    b.roll(midnight - 1)
    b.apply(answered("b", midnight + 1, 400.0))
    q = queue_now(b, midnight + 2)
    assert q["today"]["offered"] == 1 and q["today"]["answered_in_sl"] == 0  # the new day starts from zero
    assert b.day == "2026-11-24"


def test_an_unobserved_gap_is_not_counted_as_agent_time():
    b = feed(book(), agent("idle", T0, "logged_out"))
    b.roll(T0 + 10)
    b.roll(T0 + 4 * 900 + 10)  # nobody rolled it for an hour: ccserver was down
    rows = b.take_pending()
    assert [r["available"] for r in rows] == [10.0]  # the first interval, up to when it was last seen
    assert b.snapshot(T0 + 4 * 900 + 70)["agents"]["PJSIP/8001"]["today"]["available"] == 70.0


def test_a_late_event_counts_in_the_open_interval():
    b = book()
    b.roll(T0 + 900)
    b.apply(offered("a", T0 + 890))
    b.apply(abandoned("a", T0 + 899, 9.0))
    assert b.start == T0 + 900 and queue_now(b, T0 + 905)["interval"]["abandoned"] == 1


def test_resync_adopts_a_caller_it_never_saw_join_and_counts_it_once():
    caller = {"uniqueid": "x", "state": "queued", "queue": "sales", "queue_joined_at": T0 - 30, "priority": 5,
              "tier": "gold", "caller_number": "13800138000", "customer_id": "42"}
    b = feed(book(), resynced(T0, calls=[caller]))
    q = queue_now(b, T0 + 10)
    assert q["waiting"] == 1 and q["longest_wait"] == 40.0
    assert q["callers"][0] | {"wait": 0} == {"uniqueid": "x", "wait": 0, "joined_at": T0 - 30, "priority": 5,
                                             "tier": "gold", "caller_number": "13800138000", "caller_name": None,
                                             "customer_id": "42", "decision_id": None}
    feed(b, answered("x", T0 + 12, 42.0), resynced(T0 + 13, calls=[caller]))  # a stale snapshot still shows it
    q = queue_now(b, T0 + 20)
    assert q["waiting"] == 0 and q["today"]["offered"] == 1 and q["today"]["answered"] == 1


def test_a_repeated_answer_or_abandon_is_not_counted_twice():
    b = feed(book(), offered("a", T0), answered("a", T0 + 5, 5.0), answered("a", T0 + 5, 5.0),
             offered("b", T0), abandoned("b", T0 + 9, 9.0), abandoned("b", T0 + 9, 9.0))
    today = queue_now(b, T0 + 10)["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (2, 1, 1)


def test_a_caller_who_left_the_queue_is_no_longer_waiting_and_counts_when_the_call_ends():
    b = feed(book(), offered("a", T0), offered("b", T0 + 1))
    b.left_queue("a")  # seen in the live model: the queue's timeout
    q = queue_now(b, T0 + 30)
    assert [c["uniqueid"] for c in q["callers"]] == ["b"] and q["today"]["offered"] == 0
    b.apply(ended("a", T0 + 40, "no_answer"))
    b.apply(offered("b", T0 + 41, "service"))  # b gave up on sales and joined service
    sales = queue_now(b, T0 + 50)
    assert (sales["today"]["offered"], sales["today"]["unanswered"], sales["waiting"]) == (2, 2, 0)
    assert queue_now(b, T0 + 50, "service")["waiting"] == 1


def test_transfers_callbacks_and_missed_rings():
    b = feed(book(), agent("idle", T0, "logged_out"), offered("a", T0), answered("a", T0 + 3, 3.0),
             CallTransferred("default", next(_seq), T0 + 30, "a", "blind", "PJSIP/8001", "8002@agents", "Success"),
             CallTransferred("default", next(_seq), T0 + 31, "a", "blind", "PJSIP/8001", "8003@agents", "Fail"),
             AgentRingStopped("default", next(_seq), T0 + 40, "z", "sales", "PJSIP/8001", "no_answer"),
             AgentRingStopped("default", next(_seq), T0 + 41, "y", "sales", "PJSIP/8001", "answered_elsewhere"))
    b.callback_requested("sales", T0 + 50)
    snap = b.snapshot(T0 + 60)
    assert (snap["queues"]["sales"]["today"]["transfers"], snap["queues"]["sales"]["today"]["callbacks"]) == (1, 1)
    assert (snap["agents"]["PJSIP/8001"]["today"]["transfers"], snap["agents"]["PJSIP/8001"]["today"]["missed"]) == (
        1, 1)


def test_the_state_round_trips_through_json():
    b = feed(book(), agent("idle", T0, "logged_out"), offered("a", T0), answered("a", T0 + 3, 3.0),
             agent("talking", T0 + 3), offered("b", T0 + 4, tier="gold"), offered("c", T0 + 905))
    b.callback_requested("sales", T0 + 906)
    copy = ServerBook.from_state(json.loads(json.dumps(b.to_state())), b.settings)
    assert copy.snapshot(T0 + 950) == b.snapshot(T0 + 950)
    assert copy.pending == b.pending and copy.pending
    for later in (copy, b):
        later.apply(agent("idle", T0 + 960, "talking"))
    assert copy.snapshot(T0 + 970) == b.snapshot(T0 + 970)
    with pytest.raises(ValueError, match="version"):
        ServerBook.from_state({**b.to_state(), "version": 99}, b.settings)


def test_seeded_from_sql_rows_after_a_restart():
    b = feed(book(), offered("a", T0 + 1), answered("a", T0 + 5, 4.0), offered("b", T0 + 905),
             abandoned("b", T0 + 950, 45.0))
    closed = b.take_pending()
    current = b.rows()
    fresh = book()
    fresh.roll(T0 + 960)
    fresh.seed(closed + current + [{**current[0], "day": "2026-11-22"}])  # another day's row is ignored
    today = queue_now(fresh, T0 + 960)["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (2, 1, 1)
    assert queue_now(fresh, T0 + 960)["interval"]["abandoned"] == 1


def test_local_intervals_and_days():
    t = datetime(2026, 11, 23, 23, 59, 59, tzinfo=ZoneInfo(TZ)).timestamp()
    assert interval_start(t, TZ) == datetime(2026, 11, 23, 23, 45, tzinfo=ZoneInfo(TZ)).timestamp()
    assert local_day(t, TZ).isoformat() == "2026-11-23" and local_day(t + 1, TZ).isoformat() == "2026-11-24"
    # Kathmandu is UTC+5:45: its quarter hours are not UTC's.
    k = datetime(2026, 11, 23, 9, 7, tzinfo=ZoneInfo("Asia/Kathmandu")).timestamp()
    assert interval_start(k, "Asia/Kathmandu") == datetime(2026, 11, 23, 9, 0,
                                                           tzinfo=ZoneInfo("Asia/Kathmandu")).timestamp()


def test_a_ghost_only_the_snapshot_reveals_is_closed_once():
    # The book (read back from Redis, say) has a caller the tracker never knew: only the snapshot says it is gone.
    b = feed(book(), offered("g", T0), offered("h", T0 + 1))
    b.apply(resynced(T0 + 60, calls=[{"uniqueid": "h", "state": "ringing", "queue": "sales",
                                      "queue_joined_at": T0 + 1}]))
    q = queue_now(b, T0 + 61)
    assert [c["uniqueid"] for c in q["callers"]] == ["h"]
    assert (q["today"]["offered"], q["today"]["unanswered"]) == (1, 1)
    assert q["today"]["max_wait"] == 0.0  # when it really left is unknown
    b.apply(resynced(T0 + 62, calls=[{"uniqueid": "h", "state": "queued", "queue": "sales",
                                      "queue_joined_at": T0 + 1}]))
    assert queue_now(b, T0 + 63)["today"]["offered"] == 1
