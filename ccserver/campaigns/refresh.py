"""Due-date campaigns: which customers are due on a given day (pure), and the daily job that adds the newly due
ones to every such campaign, once a day per cluster.

A campaign whose targets are ``{"due": {"kind", "days"?}}`` takes, on the day ``today`` (local date):

- ``maintenance``: vehicles whose next maintenance is due from today to ``days`` (14) ahead;
- ``insurance``: vehicles whose insurance expires from today to ``days`` (30) ahead;
- ``post_purchase``: vehicles bought exactly ``days`` (3; 30 for the second call) days ago;
- ``post_service``: service visits opened exactly ``days`` (2) days ago.

The job (:class:`DueRefresh`) runs at ``campaigns.refresh_hour`` local time on the injected clock; with Redis one
node runs it per day (the lease ``ccserver:campaigns:refresh`` and the day it last ran,
``ccserver:campaigns:refresh:day``). A number a campaign has already is never added twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ccserver.ami.lease import RedisLease

__all__ = ["DUE_KINDS", "DueRefresh", "due_range"]

log = logging.getLogger("ccserver.campaigns.refresh")

# kind -> (default days, ahead (True: from today to today + days) or back (exactly today - days))
DUE_KINDS = {"maintenance": (14, True), "insurance": (30, True), "post_purchase": (3, False),
             "post_service": (2, False)}
LEASE_KEY = "ccserver:campaigns:refresh"
DAY_KEY = "ccserver:campaigns:refresh:day"


def due_range(kind: str, days: int | None, today: date) -> tuple[date, date]:
    """The dates (inclusive) a due-date campaign of ``kind`` takes on ``today``."""
    default, ahead = DUE_KINDS[kind]
    n = default if days is None else days
    if ahead:
        return today, today + timedelta(days=n)
    return today - timedelta(days=n), today - timedelta(days=n)


class DueRefresh:
    """The daily job (a component of ``ccserver run``). ``step()`` is one look at the clock (tests call it)."""

    name = "campaign refresh"

    def __init__(self, service: Any, *, clock: Any, zone: str, hour: int = 6, redis: Any = None,
                 node_id: str = "node", check_seconds: float = 300.0) -> None:
        self.service = service
        self.clock = clock
        self.zone = ZoneInfo(zone)
        self.hour = hour
        self.redis = redis
        self.check_seconds = check_seconds
        self.lease = (RedisLease(redis, LEASE_KEY, node_id, ttl_ms=600_000, clock=clock.monotonic)
                      if redis is not None else None)
        self.done_on: date | None = None
        self._task: asyncio.Task[None] | None = None

    def today(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), self.zone)

    async def step(self) -> dict[int, int] | None:
        """Refresh if it is past the hour and today's refresh has not run (here or, with Redis, anywhere)."""
        local = self.today()
        day = local.date()
        if local.hour < self.hour or self.done_on == day:
            return None
        if self.lease is not None:
            try:
                if not await self.lease.acquire():
                    return None  # another node is at it
                ran = await self.redis.get(DAY_KEY)
                if ran is not None and (ran.decode() if isinstance(ran, bytes) else str(ran)) >= day.isoformat():
                    self.done_on = day
                    return None
            except Exception as exc:  # noqa: BLE001 - Redis down: try at the next look
                log.warning("campaign refresh: lease unavailable (%s)", exc)
                return None
        try:
            added: dict[int, int] = await self.service.refresh_due(day)
            if self.redis is not None:
                await self.redis.set(DAY_KEY, day.isoformat(), ex=3 * 86_400)
            self.done_on = day
            if added:
                log.info("campaign refresh %s: %s", day, added)
            return added
        finally:
            if self.lease is not None and self.lease.held:
                try:
                    await self.lease.release()
                except Exception as exc:  # noqa: BLE001 - it expires
                    log.warning("campaign refresh: lease release failed (%s)", exc)

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - tomorrow is another day; retried at the next look
                log.exception("campaign refresh failed")
            await self.clock.sleep(self.check_seconds)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
