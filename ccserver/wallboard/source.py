"""What the wallboard snapshot is made of, gathered once per update: the live queue and agent views
(:class:`ccserver.kpi.views.LiveViews`, the same as ``/api/queues`` and ``/api/agents``), today's and yesterday's
15-minute rows from SQL (read again only when an interval has closed), the open interval's live figures, and the
ticket SLA alarms heard on the hub. The hub only carries alarms as they are raised, so a board that starts later (a
restarted server) first reads the alarms that still stand from the tickets store (``restore``), then adds what
the hub brings.

The charts are language-neutral SVG (numbers and times only; the page writes the legend in its language), so one
encoding serves zh-CN and en boards alike.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from ccserver.ami.link import asterisk_status
from ccserver.kpi.intervals import zone
from ccserver.wallboard.charts import Series, day_slots, figure, hour_labels, line_chart
from ccserver.wallboard.snapshot import build_snapshot

log = logging.getLogger("ccserver.wallboard")

ALARM_KEEP_SECONDS = 8 * 3600.0
MAX_ALARMS = 50


class WallboardSource:
    def __init__(self, views: Any, store: Any, run_blocking: Any, time_zone: str, *, target: float,
                 vip_tiers: tuple[str, ...], clock: Any, link: Callable[[], dict[str, Any]] | None = None,
                 restore: Callable[[float, float], Awaitable[list[dict[str, Any]]]] | None = None) -> None:
        self.views = views
        self.link = link if link is not None else (lambda: asterisk_status(None))  # the "asterisk" banner's state
        self.store = store  # ccserver.kpi.store.KpiStore or None (no SQL: the chart shows the live interval only)
        self._run = run_blocking
        self.tz = zone(time_zone)
        self.target = target
        self.vip_tiers = vip_tiers
        self._clock = clock
        self.alarms: deque[dict[str, Any]] = deque(maxlen=MAX_ALARMS)
        # restore(now, since): the standing alarms raised since ``since``, newest first (ccserver.tickets.alarms
        # current_alarms); read once, before the first snapshot, and again while it fails.
        self._restore = restore
        self._rows: tuple[float, list[dict[str, Any]], list[dict[str, Any]]] | None = None  # (interval, today, yday)

    def on_alarm(self, event: Any) -> None:
        """A ``TicketSlaAlarm`` from the hub."""
        alarm = {"ticket_id": event.ticket_id, "stage": event.stage, "clock": event.clock,
                 "severity": event.severity, "kind": event.kind, "subject": event.subject,
                 "due_at": event.due_at, "at": event.at, "store_id": event.store_id,
                 "department": event.department}
        self._forget(_key(alarm))  # listed already by the restore (a breach the job had not raised yet)
        self.alarms.appendleft(alarm)

    def _forget(self, key: tuple[Any, ...]) -> None:
        for old in [a for a in self.alarms if _key(a) == key]:
            self.alarms.remove(old)

    async def _restore_alarms(self, now: float) -> None:
        if self._restore is None:
            return
        try:
            standing = await self._restore(now, now - ALARM_KEEP_SECONDS)
        except Exception as exc:  # noqa: BLE001 - SQL away: the hub's alarms show; the next build tries again
            log.warning("wallboard: standing SLA alarms not read (%s)", type(exc).__name__)
            return
        self._restore = None
        heard = {_key(a) for a in self.alarms}  # raised on the hub while the store was read: newer
        merged = [*self.alarms, *(a for a in standing if _key(a) not in heard)]
        merged.sort(key=lambda a: -a["at"])
        self.alarms = deque(merged, maxlen=MAX_ALARMS)

    def _day_starts(self, now: float) -> tuple[float, float]:
        local = datetime.fromtimestamp(now, self.tz)
        today = datetime(local.year, local.month, local.day, tzinfo=self.tz)
        return today.timestamp(), (today - timedelta(days=1)).timestamp()

    async def _history(self, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        interval = now // 900
        if self._rows is not None and self._rows[0] == interval:
            return self._rows[1], self._rows[2]
        today, yesterday = self._day_starts(now)
        rows_today: list[dict[str, Any]] = []
        rows_yday: list[dict[str, Any]] = []
        if self.store is not None:
            try:
                rows = await self._run(self.store.queue_rows, datetime.fromtimestamp(yesterday, self.tz),
                                       datetime.fromtimestamp(now, self.tz))
                rows_today = [r for r in rows if r["interval_start"] >= today]
                rows_yday = [r for r in rows if r["interval_start"] < today]
            except Exception as exc:  # noqa: BLE001 - SQL away: the board still shows the live figures
                log.warning("wallboard: interval rows not read (%s)", type(exc).__name__)  # SQL text: parameters
                return [], []
        self._rows = (interval, rows_today, rows_yday)
        return rows_today, rows_yday

    async def build(self, version: int) -> dict[str, Any]:
        now = self._clock.time()
        await self._restore_alarms(now)
        queues = await self.views.queues(now)
        agents = await self.views.agents(now)
        rows_today, rows_yday = await self._history(now)
        today_start, yday_start = self._day_starts(now)
        # The open interval is not in SQL yet: its live figures (every queue's "interval") stand in for it.
        open_start = (now // 900) * 900
        live = [{**q["interval"], "interval_start": open_start} for q in queues if q.get("interval")]
        written = {r["interval_start"] for r in rows_today}
        today = day_slots([*rows_today, *(r for r in live if r["interval_start"] not in written)], today_start)
        yday = day_slots(rows_yday, yday_start)
        labels = hour_labels()
        charts = {
            "service_level": line_chart([Series("", figure(yday, "service_level"), "yesterday"),
                                         Series("", figure(today, "service_level"), "today")],
                                        labels, title="", label_every=8, target=self.target, height=260),
            "abandon_rate": line_chart([Series("", figure(yday, "abandon_rate"), "yesterday"),
                                        Series("", figure(today, "abandon_rate"), "today")],
                                       labels, title="", label_every=8, y_max=20.0, height=260),
        }
        alarms = [a for a in self.alarms if now - a["at"] <= ALARM_KEEP_SECONDS]
        snapshot = build_snapshot(queues, agents, alarms, now=now, target=self.target, vip_tiers=self.vip_tiers,
                                  version=version)
        snapshot["charts"] = charts
        snapshot["asterisk_link"] = self.link()
        return snapshot


def _key(alarm: dict[str, Any]) -> tuple[Any, ...]:
    return alarm["ticket_id"], alarm["clock"], alarm["stage"], alarm["due_at"]
