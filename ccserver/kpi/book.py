"""The KPI book of one Asterisk server: the call-events hub's typed events in, plain counters and figures out.

Pure: no I/O, no clock of its own (time is the events' ``at`` and the ``now`` given to :meth:`ServerBook.roll`),
its whole state a JSON-able dict (:meth:`to_state` / :meth:`from_state`), so the node leading the server keeps it
in Redis for the others and for whoever leads next.

What it keeps (see :mod:`ccserver.kpi.counts` for the definitions):

- per queue and per agent, the counters of the **open interval** (15 minutes of local time) and of **today**
  (the closed intervals of the local day); when an interval ends its counters become rows (:attr:`pending`) for
  SQL, and the next interval starts from zero. An interval ends when an event or :meth:`roll` reaches its end;
- the **open queue visits** (callers waiting now: queue, join time, tier, priority), the calls being talked (for
  handle times and transfers), every agent's state clock (time in state, split at interval ends);
- Asterisk's own queue counters as app_queue keeps them (completed, abandoned and the running averages of hold
  and talk time: ``new = (3·old + sample) / 4``), re-seeded from every ``Resynced``, so both can be shown.

After a reconnect or an Asterisk restart the ``Resynced`` snapshot is the truth: visits of callers no longer waiting
are closed (counted once, as unanswered), callers waiting that the book never saw join are adopted (counted when
they leave), and a visit already counted is never opened again from a snapshot (:attr:`recent`), so replayed or
re-sent history is never counted twice. Agents' states are taken from the snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ccserver.events.types import (
    AgentRingStopped,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOffered,
    CallTransferred,
    Resynced,
)
from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, counted_state, queue_figures
from ccserver.kpi.intervals import INTERVAL_SECONDS, interval_start, iso_utc, local_day
from ccserver.state.model import running_average

__all__ = ["KpiSettings", "ServerBook"]

STATE_VERSION = 1
UNOBSERVED_SLACK = 60.0  # a book not rolled for an interval and this long was not being kept
RECENT_SECONDS = 3600.0  # how long a closed visit is remembered against snapshots that still show it
MAX_PENDING_ROWS = 20_000  # closed-interval rows kept while SQL is down (about a week of a busy site)
WAITING_STATES = ("queued", "ringing")


@dataclass(frozen=True)
class KpiSettings:
    time_zone: str = "Asia/Shanghai"
    short_abandon_seconds: float = 5.0
    service_level_seconds: float = 20.0
    service_level_by_queue: dict[str, float] = field(default_factory=dict)
    interval_seconds: int = INTERVAL_SECONDS

    def threshold(self, queue: str) -> float:
        return self.service_level_by_queue.get(queue, self.service_level_seconds)

    @classmethod
    def from_config(cls, config: Any) -> KpiSettings:
        kpi = config.kpi
        return cls(time_zone=config.server.time_zone, short_abandon_seconds=kpi.short_abandon_seconds,
                   service_level_seconds=kpi.service_level_seconds,
                   service_level_by_queue=dict(kpi.service_level_by_queue))


@dataclass(slots=True)
class Visit:
    """A caller waiting in a queue (not yet counted)."""

    queue: str
    joined_at: float
    priority: int = 0
    tier: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    customer_id: str | None = None
    decision_id: str | None = None
    left: bool = False  # no longer waiting (left the queue); counted when its outcome is known


@dataclass(slots=True)
class Talk:
    """An answered call whose talk has not ended yet."""

    queue: str
    interface: str
    answered_at: float


@dataclass(slots=True)
class AgentClock:
    """An agent's current state and the time from which it has not been counted yet."""

    name: str = ""
    state: str = "logged_out"
    reason: str = ""
    since: float = 0.0  # when the agent entered the state (for display)
    counted_to: float = 0.0
    last_queue: str | None = None  # the queue of the agent's last call: its wrap-up belongs there
    wrapup_until: float | None = None  # wrap-up ends by itself (app_queue wrapuptime) …
    queues: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AsteriskQueue:
    """app_queue's own counters for a queue (what QueueSummary / QueueStatus report)."""

    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


class ServerBook:
    def __init__(self, server: str, settings: KpiSettings) -> None:
        self.server = server
        self.settings = settings
        self.start: float | None = None  # the open interval's start (None until the first event or roll)
        self.now = 0.0  # the latest time seen
        self.queues: dict[str, QueueCounts] = {}
        self.agents: dict[str, AgentCounts] = {}
        self.day: str = ""
        self.day_queues: dict[str, QueueCounts] = {}
        self.day_agents: dict[str, AgentCounts] = {}
        self.visits: dict[str, Visit] = {}
        self.talks: dict[str, Talk] = {}
        self.clocks: dict[str, AgentClock] = {}
        self.recent: dict[str, float] = {}  # "uniqueid|queue" -> when its visit was counted
        self.wrapup_times: dict[str, int] = {}  # "queue|interface" -> the member's wrapuptime
        self.asterisk: dict[str, AsteriskQueue] = {}
        self.pending: list[dict[str, Any]] = []

    # -- time --------------------------------------------------------------------------------------------------
    @property
    def end(self) -> float:
        assert self.start is not None
        return self.start + self.settings.interval_seconds

    def _begin(self, t: float) -> None:
        self.start = interval_start(t, self.settings.time_zone, self.settings.interval_seconds)
        day = local_day(self.start, self.settings.time_zone).isoformat()
        if day != self.day:
            self.day, self.day_queues, self.day_agents = day, {}, {}

    def roll(self, now: float) -> int:
        """Close every interval that ended by ``now``; returns how many rows that added to :attr:`pending`."""
        if self.start is None:
            self._begin(now)
            self.now = max(self.now, now)
            return 0
        if now - self.now > self.settings.interval_seconds + UNOBSERVED_SLACK:
            # Nobody rolled this book for longer than an interval: it was not being kept (ccserver was down, or
            # this state was read back from Redis). Agents' time in that gap is unknown, so it is not counted.
            for interface, clock in self.clocks.items():
                self._count_clock(interface, clock, self.now)
                clock.counted_to = max(clock.counted_to, now)
        before = len(self.pending)
        while now >= self.end:
            end = self.end
            self._close_interval(end)
            if now - end >= 86_400:  # nothing observed for a day (a stale state): skip the empty intervals
                for clock in self.clocks.values():
                    clock.counted_to = max(clock.counted_to, now)
                self._begin(now)
            else:
                self._begin(end)
        self.now = max(self.now, now)
        return len(self.pending) - before

    def _close_interval(self, end: float) -> None:
        for interface, clock in self.clocks.items():
            self._count_clock(interface, clock, end)
        self.pending.extend(self.rows())
        for name, queue_counts in self.queues.items():
            self.day_queues.setdefault(name, QueueCounts()).add(queue_counts)
        for interface, agent_counts in self.agents.items():
            self.day_agents.setdefault(interface, AgentCounts()).add(agent_counts)
        self.queues, self.agents = {}, {}
        # Agents keep their queues for the next interval (store filtering reads them off every row).
        for interface, clock in self.clocks.items():
            if clock.state != "logged_out" and clock.queues:
                self._agent(interface).queues.update(clock.queues)
        self.recent = {k: v for k, v in self.recent.items() if end - v < RECENT_SECONDS}
        if len(self.pending) > MAX_PENDING_ROWS:
            del self.pending[: len(self.pending) - MAX_PENDING_ROWS]

    def count_to(self, now: float) -> None:
        """Count every agent's time in state up to ``now`` (ending intervals first if ``now`` is past one)."""
        self.roll(now)
        for interface, clock in self.clocks.items():
            self._count_clock(interface, clock, now)

    def rows(self) -> list[dict[str, Any]]:
        """The open interval's counters as SQL rows (counted up to the last event or roll)."""
        if self.start is None:
            return []
        common = {"server": self.server, "interval_start": self.start, "day": self.day}
        out: list[dict[str, Any]] = []
        for name, queue_counts in sorted(self.queues.items()):
            if not queue_counts.empty():
                out.append({"kind": "queue", **common, "queue": name, "sl_threshold": self.settings.threshold(name),
                            **queue_counts.to_dict()})
        for interface, counts in sorted(self.agents.items()):
            if not counts.empty():
                clock = self.clocks.get(interface)
                out.append({"kind": "agent", **common, "interface": interface,
                            "name": clock.name if clock is not None else interface, **counts.to_dict()})
        return out

    def take_pending(self) -> list[dict[str, Any]]:
        rows, self.pending = self.pending, []
        return rows

    def seed(self, rows: list[dict[str, Any]]) -> None:
        """Start from rows read back from SQL (after a restart without Redis): today's closed intervals go to the
        day's counters, the open interval's own row (written at shutdown) to the interval's."""
        if self.start is None:
            return
        for row in rows:
            if row.get("day") != self.day:
                continue
            current = abs(float(row["interval_start"]) - self.start) < 1.0
            if row["kind"] == "queue":
                target = self.queues if current else self.day_queues
                target.setdefault(row["queue"], QueueCounts()).add(QueueCounts.from_dict(row))
            else:
                agents = self.agents if current else self.day_agents
                agents.setdefault(row["interface"], AgentCounts()).add(AgentCounts.from_dict(row))

    # -- events ------------------------------------------------------------------------------------------------
    def apply(self, event: CallEvent) -> None:
        """Count one event. Durations come from the event's own times; ``t``, the time it is counted at, is never
        before the open interval (a late event counts in it)."""
        t = event.at
        if isinstance(event, Resynced) and self.start is not None:
            # A resync is stamped with ccserver's clock when it completes, the other events with Asterisk's
            # Timestamp (when it sends one): it never moves the book's time forward; the next event and the
            # interval job do.
            t = min(t, max(self.now, self.start))
        else:
            self.roll(t)
        if self.start is not None and t < self.start:
            t = self.start
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, t)

    def _queue(self, name: str) -> QueueCounts:
        counts = self.queues.get(name)
        if counts is None:
            counts = self.queues[name] = QueueCounts()
        return counts

    def _agent(self, interface: str) -> AgentCounts:
        counts = self.agents.get(interface)
        if counts is None:
            counts = self.agents[interface] = AgentCounts()
        return counts

    def _mirror(self, queue: str) -> AsteriskQueue:
        mirror = self.asterisk.get(queue)
        if mirror is None:
            mirror = self.asterisk[queue] = AsteriskQueue()
        return mirror

    def _counted(self, uniqueid: str, queue: str, t: float) -> bool:
        """Whether this visit was counted already; marks it counted."""
        key = f"{uniqueid}|{queue}"
        if key in self.recent:
            return True
        self.recent[key] = t
        return False

    def _on_offered(self, e: CallOffered, t: float) -> None:
        visit = self.visits.get(e.uniqueid)
        if visit is not None:
            if visit.queue == e.queue and abs(visit.joined_at - e.at) < 1.0:
                return  # the same join seen twice
            self._close_unanswered(e.uniqueid, e.at, t)  # it left that queue unanswered and joined this one
        self.recent.pop(f"{e.uniqueid}|{e.queue}", None)  # a new join of this queue (after a timeout, say)
        self.visits[e.uniqueid] = Visit(e.queue, e.at, e.priority, e.tier, e.caller_number, e.caller_name,
                                        e.customer_id, e.decision_id)

    def _close_unanswered(self, uniqueid: str, at: float | None, t: float) -> None:
        """The visit ended without an answer or an abandon, at ``at`` (None: unknown; counted at ``t``)."""
        visit = self.visits.pop(uniqueid)
        if self._counted(uniqueid, visit.queue, t):
            return
        counts = self._queue(visit.queue)
        counts.offered += 1
        counts.unanswered += 1
        if at is not None:
            counts.max_wait = max(counts.max_wait, at - visit.joined_at)

    def _on_answered(self, e: CallAnswered, t: float) -> None:
        visit = self.visits.pop(e.uniqueid, None)
        if self._counted(e.uniqueid, e.queue, t):
            return
        if e.wait_seconds is not None:
            wait = e.wait_seconds
        else:
            wait = e.at - visit.joined_at if visit is not None else float(e.holdtime)
        counts = self._queue(e.queue)
        counts.offered += 1
        counts.answered += 1
        counts.wait_answered += wait
        counts.max_wait = max(counts.max_wait, wait)
        if wait <= self.settings.threshold(e.queue):
            counts.answered_in_sl += 1
        mirror = self._mirror(e.queue)
        # app_queue's recalc_holdtime(): the sample as is while the queue has neither completed nor abandoned.
        mirror.holdtime = running_average(mirror.holdtime, e.holdtime, mirror.completed + mirror.abandoned == 0)
        self.talks[e.uniqueid] = Talk(e.queue, e.interface, e.at)
        agent = self._agent(e.interface)
        agent.queues.add(e.queue)
        clock = self.clocks.get(e.interface)
        if clock is None:
            clock = self.clocks[e.interface] = AgentClock(name=e.member_name, counted_to=t)
        clock.last_queue = e.queue

    def _on_abandoned(self, e: CallAbandoned, t: float) -> None:
        self.visits.pop(e.uniqueid, None)
        if self._counted(e.uniqueid, e.queue, t):
            return
        wait = e.wait_seconds if e.wait_seconds is not None else float(e.holdtime)
        counts = self._queue(e.queue)
        counts.offered += 1
        counts.abandoned += 1
        counts.wait_abandoned += wait
        counts.max_wait = max(counts.max_wait, wait)
        if wait <= self.settings.short_abandon_seconds:
            counts.short_abandoned += 1
        self._mirror(e.queue).abandoned += 1

    def _complete_talk(self, uniqueid: str, at: float, talk_seconds: float | None = None) -> None:
        """The agent's part of an answered call is over (at ``at``): it is handled, in the open interval."""
        talk = self.talks.pop(uniqueid, None)
        if talk is None:
            return
        seconds = max(0.0, talk_seconds if talk_seconds is not None else at - talk.answered_at)
        counts = self._queue(talk.queue)
        counts.handled += 1
        counts.talk += seconds
        agent = self._agent(talk.interface)
        agent.handled += 1
        agent.talk += seconds
        mirror = self._mirror(talk.queue)
        mirror.completed += 1
        # app_queue's TalkTime is time(NULL) − callstart: whole seconds between the two clock readings.
        sample = math.floor(round(talk.answered_at + seconds, 6)) - math.floor(talk.answered_at)
        mirror.talktime = running_average(mirror.talktime, sample, mirror.completed == 1)

    def _on_ended(self, e: CallEnded, t: float) -> None:
        if e.uniqueid in self.visits:
            self._close_unanswered(e.uniqueid, e.at, t)
        if e.uniqueid in self.talks:
            self._complete_talk(e.uniqueid, e.at, e.talk_seconds)

    def _on_transferred(self, e: CallTransferred, t: float) -> None:
        if e.result != "Success":
            return
        talk = self.talks.get(e.uniqueid)
        interface = e.interface or (talk.interface if talk is not None else None)
        queue = talk.queue if talk is not None else None
        if queue is None and interface is not None:
            clock = self.clocks.get(interface)
            queue = clock.last_queue if clock is not None else None
        if queue is not None:
            self._queue(queue).transfers += 1
        if interface is not None:
            self._agent(interface).transfers += 1

    def _on_ring_stopped(self, e: AgentRingStopped, t: float) -> None:
        if e.reason == "no_answer":
            self._agent(e.interface).missed += 1

    def _on_agent_state(self, e: AgentStateChanged, t: float) -> None:
        clock = self.clocks.get(e.interface)
        if clock is None:
            # First sight of this agent: its time counts from now (the time before was not observed).
            clock = self.clocks[e.interface] = AgentClock(counted_to=t)
        else:
            self._count_clock(e.interface, clock, t)
        if clock.state == "talking" and e.state != "talking":
            # The agent is off the call (AgentComplete, AgentDump): their part of it is over.
            for uniqueid in [u for u, talk in self.talks.items() if talk.interface == e.interface]:
                self._complete_talk(uniqueid, e.at)
        self._set_state(e.interface, clock, e.state, e.paused_reason, e.since, t)
        clock.name = e.name or clock.name
        clock.queues = list(e.queues)
        if e.queues:
            self._agent(e.interface).queues.update(e.queues)

    def _set_state(self, interface: str, clock: AgentClock, state: str, reason: str, since: float,
                   t: float) -> None:
        if state == "wrapup" and clock.state != "wrapup":
            wrapup = self.wrapup_times.get(f"{clock.last_queue}|{interface}", 0)
            clock.wrapup_until = t + wrapup if wrapup > 0 else None
        elif state != "wrapup":
            clock.wrapup_until = None
        clock.state, clock.reason, clock.since = state, reason, since

    def _count_clock(self, interface: str, clock: AgentClock, t: float) -> None:
        """Count the agent's time in its state up to ``t``."""
        start = max(clock.counted_to, self.start if self.start is not None else clock.counted_to)
        if t <= start:
            clock.counted_to = max(clock.counted_to, t)
            return
        spent = self._spent(clock, start, t)
        if spent:
            agent = self._agent(interface)
            for state, reason, seconds in spent:
                agent.spend(state, seconds, reason)
                if state == "wrapup" and clock.last_queue is not None:
                    self._queue(clock.last_queue).wrapup += seconds
        clock.counted_to = t

    @staticmethod
    def _spent(clock: AgentClock, start: float, end: float) -> list[tuple[str, str, float]]:
        """(state, reason, seconds) between start and end. The tracker notices a wrap-up's end only at the agent's
        next event; the wrap-up itself lasts the member's wrapuptime, then the agent is available."""
        if clock.state == "wrapup" and clock.wrapup_until is not None and end > clock.wrapup_until:
            wrapped = max(0.0, clock.wrapup_until - start)
            return [("wrapup", "", wrapped), ("idle", "", end - max(start, clock.wrapup_until))]
        # A forced wrap-up (a pause with reason wrapup) is wrap-up: the agent's and the last call's queue's.
        state, reason = counted_state(clock.state, clock.reason)
        return [(state, reason, end - start)]

    def _on_resynced(self, e: Resynced, t: float) -> None:
        calls = {c["uniqueid"]: c for c in e.calls}
        waiting = {uid: c for uid, c in calls.items() if c.get("state") in WAITING_STATES and c.get("queue")}
        # Ghosts: callers the book thinks are waiting that Asterisk no longer has in that queue.
        for uid, visit in list(self.visits.items()):
            now_waiting = waiting.get(uid)
            if now_waiting is None or now_waiting["queue"] != visit.queue:
                self._close_unanswered(uid, None, t)  # gone some time while ccserver was not told
        for uid, c in waiting.items():
            if uid not in self.visits and f"{uid}|{c['queue']}" not in self.recent:
                joined = c.get("queue_joined_at") or t
                self.visits[uid] = Visit(c["queue"], float(joined), int(c.get("priority") or 0), c.get("tier"),
                                         c.get("caller_number"), c.get("caller_name"), c.get("customer_id"),
                                         c.get("decision_id"))
        # A talk whose call is gone ended unseen (ccserver was away): its end time is unknown, so it is dropped.
        for uid in [u for u in self.talks if u not in calls]:
            self.talks.pop(uid)
        self.wrapup_times = {}
        for q in e.queues:
            self.asterisk[q["name"]] = AsteriskQueue(int(q.get("completed") or 0), int(q.get("abandoned") or 0),
                                                     int(q.get("holdtime") or 0), int(q.get("talktime") or 0))
            for interface, member in (q.get("members") or {}).items():
                if member.get("wrapuptime"):
                    self.wrapup_times[f"{q['name']}|{interface}"] = int(member["wrapuptime"])
        listed = set()
        for a in e.agents:
            interface = a["interface"]
            listed.add(interface)
            clock = self.clocks.get(interface)
            if clock is None:
                clock = self.clocks[interface] = AgentClock(counted_to=t)
            else:
                self._count_clock(interface, clock, t)
            if clock.state != a.get("state") or clock.reason != (a.get("paused_reason") or ""):
                self._set_state(interface, clock, a.get("state") or "logged_out", a.get("paused_reason") or "",
                                float(a.get("since") or t), t)
                if clock.state == "wrapup" and a.get("wrapup_until"):
                    clock.wrapup_until = float(a["wrapup_until"])
            clock.name = a.get("name") or clock.name
            clock.queues = list(a.get("queues") or ())
        for interface, clock in self.clocks.items():
            if interface not in listed and clock.state != "logged_out":
                self._count_clock(interface, clock, t)
                self._set_state(interface, clock, "logged_out", "", t, t)
                clock.queues = []

    def left_queue(self, uniqueid: str) -> None:
        """The caller is no longer waiting in the queue of their open visit (seen in the live model: the queue's
        timeout, leave-empty). Its outcome is counted by the event that tells it (answer, hangup, another join)."""
        visit = self.visits.get(uniqueid)
        if visit is not None:
            visit.left = True

    def set_wrapup_time(self, queue: str, interface: str, seconds: int) -> None:
        """A member's wrapuptime learned between snapshots (a member added since the last resync)."""
        key = f"{queue}|{interface}"
        if seconds > 0:
            self.wrapup_times[key] = seconds
        else:
            self.wrapup_times.pop(key, None)

    def callback_requested(self, queue: str, at: float) -> None:
        """A callback request for ``queue``, counted in the open interval (``at`` is ccserver's clock: like a
        resync, it never moves the book's time forward)."""
        if self.start is None:
            self.roll(at)
        self._queue(queue).callbacks += 1

    # -- figures -----------------------------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, Any]:
        """The live figures at ``now`` (nothing is changed): per queue the callers waiting, the longest wait, the
        open interval's and today's figures and Asterisk's own counters; per agent the state and figures."""
        interval_agents = {i: _copy_agent(c) for i, c in self.agents.items()}
        interval_queues = {n: _copy_queue(c) for n, c in self.queues.items()}
        if self.start is not None and now > self.start:
            # Count the agents' time to now on copies (and the wrap-up it gives the queues).
            for interface, clock in self.clocks.items():
                start = max(clock.counted_to, self.start)
                for state, reason, seconds in self._spent(clock, start, now) if now > start else ():
                    interval_agents.setdefault(interface, AgentCounts()).spend(state, seconds, reason)
                    if state == "wrapup" and clock.last_queue is not None:
                        interval_queues.setdefault(clock.last_queue, QueueCounts()).wrapup += seconds
        names = set(interval_queues) | set(self.day_queues) | {v.queue for v in self.visits.values()} | set(
            self.asterisk)
        queues: dict[str, Any] = {}
        for name in sorted(names):
            callers: list[dict[str, Any]] = sorted(
                ({"uniqueid": uid, "wait": round(max(0.0, now - v.joined_at), 1), "joined_at": v.joined_at,
                  "priority": v.priority, "tier": v.tier, "caller_number": v.caller_number,
                  "caller_name": v.caller_name, "customer_id": v.customer_id, "decision_id": v.decision_id}
                 for uid, v in self.visits.items() if v.queue == name and not v.left),
                key=lambda c: (-c["priority"], c["joined_at"]))
            interval = interval_queues.get(name, QueueCounts())
            today = _copy_queue(self.day_queues.get(name, QueueCounts()))
            today.add(interval)
            mirror = self.asterisk.get(name, AsteriskQueue())
            queues[name] = {
                "server": self.server, "queue": name, "sl_threshold": self.settings.threshold(name),
                "waiting": len(callers), "longest_wait": max((c["wait"] for c in callers), default=0.0),
                "callers": callers, "interval": queue_figures(interval), "today": queue_figures(today),
                "asterisk": {"completed": mirror.completed, "abandoned": mirror.abandoned,
                             "holdtime": mirror.holdtime, "talktime": mirror.talktime},
            }
        agents: dict[str, Any] = {}
        for interface in sorted(set(self.clocks) | set(interval_agents) | set(self.day_agents)):
            clock = self.clocks.get(interface, AgentClock(name=interface))
            state, since = clock.state, clock.since
            if state == "wrapup" and clock.wrapup_until is not None and now >= clock.wrapup_until:
                state, since = "idle", clock.wrapup_until
            interval_a = interval_agents.get(interface, AgentCounts())
            today_a = _copy_agent(self.day_agents.get(interface, AgentCounts()))
            today_a.add(interval_a)
            agents[interface] = {
                "server": self.server, "interface": interface, "name": clock.name or interface, "state": state,
                "since": since, "paused_reason": clock.reason if state == "paused" else "",
                "queues": list(clock.queues), "interval": agent_figures(interval_a), "today": agent_figures(today_a),
            }
        return {"server": self.server, "at": now,
                "interval_start": iso_utc(self.start) if self.start is not None else None,
                "day": self.day, "queues": queues, "agents": agents}

    # -- state -------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "server": self.server, "start": self.start, "now": self.now, "day": self.day,
            "queues": {k: v.to_dict() for k, v in self.queues.items()},
            "agents": {k: v.to_dict() for k, v in self.agents.items()},
            "day_queues": {k: v.to_dict() for k, v in self.day_queues.items()},
            "day_agents": {k: v.to_dict() for k, v in self.day_agents.items()},
            "visits": {k: _drop_none(_fields(v)) for k, v in self.visits.items()},
            "talks": {k: _fields(v) for k, v in self.talks.items()},
            "clocks": {k: _fields(v) for k, v in self.clocks.items()},
            "recent": self.recent, "wrapup_times": self.wrapup_times,
            "asterisk": {k: _fields(v) for k, v in self.asterisk.items()},
            "pending": self.pending,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: KpiSettings) -> ServerBook:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"KPI state version {state.get('version')!r} is not {STATE_VERSION}")
        book = cls(state["server"], settings)
        book.start, book.now, book.day = state["start"], float(state["now"]), state["day"]
        book.queues = {k: QueueCounts.from_dict(v) for k, v in state["queues"].items()}
        book.agents = {k: AgentCounts.from_dict(v) for k, v in state["agents"].items()}
        book.day_queues = {k: QueueCounts.from_dict(v) for k, v in state["day_queues"].items()}
        book.day_agents = {k: AgentCounts.from_dict(v) for k, v in state["day_agents"].items()}
        book.visits = {k: Visit(**v) for k, v in state["visits"].items()}
        book.talks = {k: Talk(**v) for k, v in state["talks"].items()}
        book.clocks = {k: AgentClock(**v) for k, v in state["clocks"].items()}
        book.recent = {str(k): float(v) for k, v in state["recent"].items()}
        book.wrapup_times = {str(k): int(v) for k, v in state["wrapup_times"].items()}
        book.asterisk = {k: AsteriskQueue(**v) for k, v in state["asterisk"].items()}
        book.pending = list(state["pending"])
        return book


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _copy_queue(c: QueueCounts) -> QueueCounts:
    out = QueueCounts()
    out.add(c)
    return out


def _copy_agent(c: AgentCounts) -> AgentCounts:
    out = AgentCounts()
    out.add(c)
    return out


_HANDLERS: dict[type, Any] = {
    CallOffered: ServerBook._on_offered,
    CallAnswered: ServerBook._on_answered,
    CallAbandoned: ServerBook._on_abandoned,
    CallEnded: ServerBook._on_ended,
    CallTransferred: ServerBook._on_transferred,
    AgentRingStopped: ServerBook._on_ring_stopped,
    AgentStateChanged: ServerBook._on_agent_state,
    Resynced: ServerBook._on_resynced,
}
