"""Demo KPI history: the 15-minute queue and agent counters of the days before ``as_of``, as the KPI service would
have written them (``kpi_queue_intervals``, ``kpi_agent_intervals``), so the reports and the wallboard's
"yesterday" line have something to show on a freshly loaded demo (``ccserver demo-data --kpi-days N``).

Pure and deterministic, like the rest of the demo: every figure comes from ``random.Random`` seeded with the demo
seed, and each caller's visit is simulated one by one (a wait, a patience, a talk time) so the counters keep the
definitions of ``ccserver/kpi/counts.py``: offered = answered + abandoned + unanswered, short abandons among the
abandoned, answered_in_sl among the answered, handled = answered (every call's talk ended within its interval).
Agents are the call-centre agents (role ``agent``) on two shifts (early 08:00–17:00, late 12:00–21:00, each with an
hour's break paused), which between them cover every queue's opening hours: every answered call is some agent's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["SERVER", "kpi_history"]

SERVER = "default"  # the AMI server name of a single-Asterisk install
SLOT = 900  # seconds: the KPI interval
_SHANGHAI = timedelta(hours=8)  # the demo's stores are all in Asia/Shanghai (no DST)

# Calls an hour at the busiest time of an ordinary weekday, and the local hours (start, end) each line is open.
_VOLUME = {"hotline": 36.0, "sales": 7.0, "service": 9.0, None: 3.0}
_HOURS = {"hotline": (8.0, 21.0), "sales": (9.0, 18.5), "service": (8.0, 17.5), None: (8.5, 18.0)}
# Agents' shifts (local hours signed in, the hour paused, its pause reason: codes of desktop.pause_reasons),
# alternating by agent.
_SHIFTS = (((8.0, 17.0), (12.0, 13.0), "lunch"), ((12.0, 21.0), (15.0, 16.0), "break"))
_QUIET_QUEUES = ("callback",)  # outbound return visits: no inbound callers


def _shape(hour: float) -> float:
    """The day's arrival curve (share of the peak): a morning peak at 10:00, a smaller one after lunch."""
    morning = max(0.0, 1.0 - abs(hour - 10.0) / 3.0)
    afternoon = 0.8 * max(0.0, 1.0 - abs(hour - 14.5) / 3.0)
    return max(0.15, morning, afternoon)


def _poisson(rng: random.Random, mean: float) -> int:
    # Counting exponential gaps: exact, and cheap for the small means of one interval.
    n, t = 0, rng.expovariate(1.0) if mean > 0 else 1.0
    while t < mean:
        n += 1
        t += rng.expovariate(1.0)
    return n


def _utc(day: date, local_seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=local_seconds) - _SHANGHAI


def kpi_history(queues: Sequence[dict[str, Any]], users: Sequence[dict[str, Any]], as_of: date, days: int,
                seed: int, *, sl_seconds: float = 20.0, short_abandon_seconds: float = 5.0,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(queue interval rows, agent interval rows) for the ``days`` local days before ``as_of``; only intervals
    with something counted get a row, as the KPI service writes them."""
    if days < 0:
        raise ValueError("days must not be negative")
    rng = random.Random(f"demo-kpi:{seed}")
    agents = [u for u in users if u.get("role") == "agent" and u.get("interface")]
    queue_rows: list[dict[str, Any]] = []
    agent_rows: list[dict[str, Any]] = []
    for back in range(days, 0, -1):
        day = as_of - timedelta(days=back)
        weekend = day.weekday() >= 5
        # agent interface -> its counters for each interval of its shift, filled by the calls below
        worked: dict[str, dict[int, dict[str, Any]]] = {a["interface"]: {} for a in agents}
        for q in queues:
            name, line = q["name"], q.get("line")
            if name in _QUIET_QUEUES or not agents:
                continue
            volume = _VOLUME.get(line, _VOLUME[None])
            if weekend:
                volume *= 1.4 if line == "sales" else 0.6
            opens, closes = _HOURS.get(line, _HOURS[None])
            for slot in range(int(opens * 4), int(closes * 4)):
                start = slot * SLOT
                counts = _visits(rng, volume * _shape(slot / 4) / 4, sl_seconds, short_abandon_seconds)
                if counts is None:
                    continue
                calls = counts.pop("calls")
                free = [a for i, a in enumerate(agents) if _state(i, slot) == "signed_in"]
                for talk, wrapup in calls if free else ():  # each answered call to an agent signed in, not on a break
                    agent = free[rng.randrange(len(free))]
                    row = worked[agent["interface"]].setdefault(slot, _idle())
                    row["handled"] += 1
                    row["talk"] += talk
                    row["wrapup"] += wrapup
                    row["ringing"] += rng.uniform(3.0, 9.0)
                    row["queues"].add(name)
                    if rng.random() < 0.03:  # the agent also let a ring go unanswered (RINGNOANSWER) then
                        row["missed"] += 1
                queue_rows.append({"server": SERVER, "queue": name, "interval_start": _utc(day, start), "day": day,
                                   "sl_threshold": sl_seconds, **counts})
        for i, agent in enumerate(agents):
            agent_rows.extend(_agent_day(i, agent, day, worked[agent["interface"]]))
    return queue_rows, agent_rows


def _state(index: int, slot: int) -> str:
    """Agent ``index``'s state in the day's interval ``slot``: off, signed_in or on_break."""
    (starts, ends), (break_starts, break_ends), _ = _SHIFTS[index % len(_SHIFTS)]
    if not starts * 4 <= slot < ends * 4:
        return "off"
    return "on_break" if break_starts * 4 <= slot < break_ends * 4 else "signed_in"


def _idle() -> dict[str, Any]:
    return {"handled": 0, "talk": 0.0, "wrapup": 0.0, "ringing": 0.0, "missed": 0, "queues": set()}


def _visits(rng: random.Random, mean_calls: float, sl_seconds: float,
            short_abandon_seconds: float) -> dict[str, Any] | None:
    """One queue's interval: each caller waits, gives up or is answered; the counters, and each answered call's
    (talk, wrap-up) seconds under ``calls``. None when nobody called."""
    offered = _poisson(rng, mean_calls)
    if not offered:
        return None
    busy = min(1.0, mean_calls / 12.0)  # a busier interval: longer waits
    c: dict[str, Any] = {"offered": offered, "answered": 0, "abandoned": 0, "short_abandoned": 0, "unanswered": 0,
                         "answered_in_sl": 0, "wait_answered": 0.0, "wait_abandoned": 0.0, "max_wait": 0.0,
                         "handled": 0, "talk": 0.0, "wrapup": 0.0, "transfers": 0, "callbacks": 0}
    calls: list[tuple[float, float]] = []
    for _ in range(offered):
        wait = rng.expovariate(1.0 / (6.0 + 30.0 * busy))
        patience = rng.expovariate(1.0 / 120.0)
        if wait > 300.0:  # the queue's timeout: on to voicemail / the callback offer
            c["unanswered"] += 1
            c["callbacks"] += rng.random() < 0.5
            wait = 300.0
        elif patience < wait:
            wait = patience
            c["abandoned"] += 1
            c["short_abandoned"] += wait <= short_abandon_seconds
            c["wait_abandoned"] += wait
        else:
            c["answered"] += 1
            c["answered_in_sl"] += wait <= sl_seconds
            c["wait_answered"] += wait
            talk = min(rng.lognormvariate(5.0, 0.5), 1500.0)  # ~2.5 minutes, a long tail
            wrapup = rng.uniform(5.0, 40.0)
            c["handled"] += 1
            c["talk"] += talk
            c["wrapup"] += wrapup
            c["transfers"] += rng.random() < 0.04
            calls.append((talk, wrapup))
        c["max_wait"] = max(c["max_wait"], wait)
    for key in ("wait_answered", "wait_abandoned", "max_wait", "talk", "wrapup"):
        c[key] = round(c[key], 3)
    c["calls"] = calls
    return c


def _agent_day(index: int, agent: dict[str, Any], day: date, worked: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent's intervals over its shift: talk, wrap-up and ringing from its calls, the break paused, the rest
    available (a long call's talk stays counted in the interval it was answered in; the states are clipped to the
    interval's 15 minutes)."""
    rows = []
    reason = _SHIFTS[index % len(_SHIFTS)][2]
    for slot in range(96):
        state = _state(index, slot)
        if state == "off":
            continue
        w = worked.get(slot) or _idle()
        paused = float(SLOT) if state == "on_break" else 0.0
        ringing = round(min(w["ringing"], SLOT - paused), 3)  # rounded first: the five states sum to the slot
        talking = round(min(w["talk"], SLOT - paused - ringing), 3)
        wrapup = round(min(w["wrapup"], SLOT - paused - ringing - talking), 3)
        rows.append({"server": SERVER, "interface": agent["interface"], "name": agent["display_name"],
                     "interval_start": _utc(day, slot * SLOT), "day": day, "handled": w["handled"],
                     "talk": round(w["talk"], 3), "transfers": 0, "missed": w["missed"],
                     "available": round(SLOT - paused - ringing - talking - wrapup, 3), "ringing": ringing,
                     "talking": talking, "wrapup": wrapup, "paused": paused,
                     "paused_by_reason": {reason: paused} if paused else {}, "queues": sorted(w["queues"])})
    return rows
