"""The desktop's forced wrap-up (a queue pause with reason ``wrapup``) counts as wrap-up in the KPIs: in the agent's
time in state, in AHT (talk + wrap-up) and occupancy, and in the wrap-up of the queue of the agent's last call;
never as paused. Pure counting first, then a recorded call through the state tracker into the book."""

from __future__ import annotations

from typing import Any

import pytest

from ccserver.ami.message import AMIMessage
from ccserver.desktop.settings import WRAPUP_REASON
from ccserver.kpi.counts import WRAPUP_PAUSE, AgentCounts, agent_figures, counted_state
from ccserver.state import StateTracker
from tests.test_kpi_book import T0, agent, answered, book, ended, feed, offered, resynced
from tests.test_state_support import timed_messages


def test_the_kpis_and_the_desktop_agree_on_the_reason():
    assert WRAPUP_PAUSE == WRAPUP_REASON


@pytest.mark.parametrize(("state", "reason", "counted"), [
    ("paused", "wrapup", ("wrapup", "")),
    ("paused", "lunch", ("paused", "lunch")),
    ("paused", "", ("paused", "")),
    ("paused", "Auto-Pause", ("paused", "Auto-Pause")),
    ("paused", "Wrapup", ("paused", "Wrapup")),  # codes are lower-case; another spelling is another reason
    ("idle", "", ("available", "")),
    ("wrapup", "", ("wrapup", "")),
    ("talking", "", ("talking", "")),
])
def test_which_state_an_agents_time_counts_in(state, reason, counted):
    assert counted_state(state, reason) == counted


def test_a_forced_wrapup_pause_is_wrapup_time_in_the_figures():
    c = AgentCounts(handled=2, talk=100.0, talking=100.0, available=60.0)
    c.spend("paused", 30.0, "wrapup")
    c.spend("paused", 50.0, "lunch")
    c.spend("paused", 10.0, "wrapup")
    assert (c.wrapup, c.paused, c.paused_by_reason) == (40.0, 50.0, {"lunch": 50.0})
    figures = agent_figures(c)
    assert figures["aht"] == 70.0  # (100 talk + 40 wrap-up) / 2
    assert figures["occupancy"] == pytest.approx(100 * 140 / 200, abs=0.1)
    assert figures["signed_in"] == 250.0  # available + talking + wrap-up + paused: nothing lost, nothing twice
    merged = AgentCounts()
    merged.add(c)
    merged.add(AgentCounts.from_dict(c.to_dict()))
    assert (merged.wrapup, merged.paused_by_reason) == (80.0, {"lunch": 100.0})


def test_the_book_counts_a_forced_wrapup_for_the_agent_and_the_calls_queue():
    b = book()
    b.apply(resynced(T0, agents=[{"interface": "PJSIP/8001", "name": "Agent", "state": "idle", "since": T0,
                                  "paused_reason": "", "queues": ["sales"]}]))
    feed(b, offered("a", T0 + 10), agent("ringing", T0 + 12), answered("a", T0 + 15, 5.0),
         agent("talking", T0 + 15, "ringing"),
         # The call ends; the desktop pauses the agent for wrap-up (no app_queue wrapuptime here).
         agent("paused", T0 + 75, "talking", reason="wrapup"), ended("a", T0 + 76, "answered", talk=60.0))
    live = b.snapshot(T0 + 90)["agents"]["PJSIP/8001"]["today"]  # still in wrap-up: counted to now
    assert (live["wrapup"], live["paused"]) == (15.0, 0.0)
    feed(b, agent("idle", T0 + 105, "paused"), agent("paused", T0 + 200, "idle", reason="lunch"))
    snap = b.snapshot(T0 + 260)
    a = snap["agents"]["PJSIP/8001"]["today"]
    assert (a["talk"], a["wrapup"], a["aht"]) == (60.0, 30.0, 90.0)
    assert a["paused"] == 60.0 and a["paused_by_reason"] == {"lunch": 60.0}
    assert a["available"] == 12.0 + 95.0
    assert a["occupancy"] == pytest.approx(100 * 90 / (107 + 3 + 90), abs=0.1)
    q = snap["queues"]["sales"]["today"]
    assert (q["handled"], q["talk"], q["wrapup"], q["aht"]) == (1, 60.0, 30.0, 90.0)


def _pause(status: AMIMessage, t: float, reason: str) -> AMIMessage:
    """The QueueMemberPause Asterisk sends for a member when QueuePause pauses it (the fields of its
    QueueMemberStatus, as in tests/data/asterisk/ami-queue-member-actions.jsonl) with ``reason`` ("" unpauses)."""
    changes = {"Event": "QueueMemberPause", "Timestamp": f"{t:.6f}", "Paused": "1" if reason else "0",
               "PausedReason": reason}
    return AMIMessage([(k, changes.get(k, v)) for k, v in status.items()])


def test_a_recorded_call_then_a_forced_wrapup_through_the_tracker():
    kpi = book()
    tracker = StateTracker(publish=kpi.apply)
    messages = timed_messages("ami-inbound-vip-answered")
    for msg, t in messages:
        tracker.handle(msg, t)
    complete = next(t for m, t in messages if m.get("Event") == "AgentComplete")
    statuses = {m["Queue"]: m for m, t in messages
                if m.get("Event") == "QueueMemberStatus" and t >= complete}  # the member, idle again
    assert set(statuses) == {"vip", "sales"}
    agent_id = statuses["vip"]["Interface"]
    before = kpi.snapshot(complete)["agents"][agent_id]["today"]
    # ForcedWrapUp's QueuePause (no queue: every queue of the member) at the end of the call, 30 s of wrap-up.
    for queue in ("vip", "sales"):
        tracker.handle(_pause(statuses[queue], complete, WRAPUP_REASON), complete)
    assert kpi.snapshot(complete + 1)["agents"][agent_id]["state"] == "paused"
    for queue in ("vip", "sales"):
        tracker.handle(_pause(statuses[queue], complete + 30, ""), complete + 30)
    snap = kpi.snapshot(complete + 40)
    a: dict[str, Any] = snap["agents"][agent_id]["today"]
    assert a["wrapup"] == pytest.approx(before["wrapup"] + 30.0, abs=0.01)
    assert a["paused"] == before["paused"] == 0.0 and "wrapup" not in a["paused_by_reason"]
    assert a["handled"] == 1
    assert a["aht"] == pytest.approx(a["talk"] + 30.0, abs=0.1)
    vip = snap["queues"]["vip"]["today"]
    assert vip["handled"] == 1 and vip["wrapup"] == pytest.approx(30.0, abs=0.01)
    assert vip["aht"] == pytest.approx(vip["talk"] + 30.0, abs=0.1)
