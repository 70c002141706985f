"""Due-date campaigns: the dates each kind takes (pure), the targets at creation and the daily refresh adding the
newly due (never twice), and the job on a ManualClock: not before the hour, once a day, once per cluster (Redis)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from ccserver.campaigns.refresh import DueRefresh, due_range
from ccserver.clock import ManualClock
from ccserver.db.models import CampaignTarget, Vehicle
from tests.test_campaigns_api import api, body  # noqa: F401 - api is a fixture

TODAY = date(2026, 11, 18)  # the api fixture's clock (1_795_000_000) in UTC


def test_due_ranges() -> None:
    assert due_range("maintenance", None, TODAY) == (TODAY, TODAY + timedelta(days=14))
    assert due_range("insurance", 7, TODAY) == (TODAY, date(2026, 11, 25))
    assert due_range("post_purchase", 30, TODAY) == (date(2026, 10, 19), date(2026, 10, 19))
    assert due_range("post_service", None, TODAY) == (date(2026, 11, 16), date(2026, 11, 16))


def _vehicles(api: Any, n: int) -> list[tuple[int, int]]:  # noqa: F811
    with api.sessions() as s:
        return [(v.id, v.customer_id) for v in s.scalars(select(Vehicle).order_by(Vehicle.id).limit(n))]


def test_due_campaign_targets_and_the_daily_refresh(api: Any) -> None:  # noqa: F811
    vehicles = _vehicles(api, 40)
    customers = list(dict.fromkeys(c for _, c in vehicles))[:3]
    with api.sessions.begin() as s:
        s.execute(update(Vehicle).values(insurance_expiry=date(2027, 6, 1), purchase_date=date(2025, 1, 1)))
        s.execute(update(Vehicle).where(Vehicle.customer_id == customers[0]).values(
            insurance_expiry=TODAY + timedelta(days=5)))
        s.execute(update(Vehicle).where(Vehicle.customer_id == customers[1]).values(
            purchase_date=TODAY - timedelta(days=3)))
    bad = api("campaigns", "POST", "/api/campaigns", body(targets={"due": {"kind": "lease_end"}}))
    assert bad[0] == 400 and bad[1]["field"] == "targets.due"
    assert api("campaigns", "POST", "/api/campaigns", body(
        targets={"due": {"kind": "insurance", "days": -1}}))[1]["field"] == "targets.due.days"
    insurance = api("campaigns", "POST", "/api/campaigns", body(targets={"due": {"kind": "insurance", "days": 7}}))
    assert insurance[0] == 201 and insurance[1]["targets"] == 1
    visit = api("campaigns", "POST", "/api/campaigns", body(type="return_visit",
                                                            targets={"due": {"kind": "post_purchase"}}))
    assert visit[0] == 201 and visit[1]["targets"] == 1
    # tomorrow: customer 2's insurance enters the 7-day range; customer 0's is in it already (not added twice)
    with api.sessions.begin() as s:
        s.execute(update(Vehicle).where(Vehicle.customer_id == customers[2]).values(
            insurance_expiry=TODAY + timedelta(days=8)))
    service = api.ctx.campaigns
    added = asyncio.run(service.refresh_due(TODAY + timedelta(days=1)))
    assert added == {insurance[1]["id"]: 1}  # post_purchase: nobody bought a car 3 days before tomorrow
    assert asyncio.run(service.refresh_due(TODAY + timedelta(days=1))) == {}
    with api.sessions() as s:
        got = set(s.scalars(select(CampaignTarget.customer_id)
                            .where(CampaignTarget.campaign_id == insurance[1]["id"])))
    assert got == {customers[0], customers[2]}


class _Service:
    def __init__(self) -> None:
        self.days: list[date] = []

    async def refresh_due(self, day: date) -> dict[int, int]:
        self.days.append(day)
        return {1: len(self.days)}


def test_the_job_runs_after_the_hour_once_a_day() -> None:
    clock = ManualClock(1_795_000_000.0)  # 2026-11-18 11:06 UTC = 19:06 in Shanghai
    service = _Service()
    job = DueRefresh(service, clock=clock, zone="Asia/Shanghai", hour=20)

    async def main() -> list[Any]:
        out = [await job.step()]  # 19:06: not yet
        await clock.advance(3600)
        out.append(await job.step())  # 20:06: runs
        out.append(await job.step())  # done today
        await clock.advance(24 * 3600)
        out.append(await job.step())  # tomorrow 20:06
        return out

    assert asyncio.run(main()) == [None, {1: 1}, None, {1: 2}]
    assert service.days == [date(2026, 11, 18), date(2026, 11, 19)]


def test_one_node_per_cluster_runs_it(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async def main() -> tuple[list[Any], list[date], list[date]]:
        clock = ManualClock(1_795_000_000.0 + 3600)
        a, b = _Service(), _Service()
        ra, rb = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        first = DueRefresh(a, clock=clock, zone="Asia/Shanghai", hour=6, redis=ra, node_id="n1")
        second = DueRefresh(b, clock=clock, zone="Asia/Shanghai", hour=6, redis=rb, node_id="n2")
        out = [await first.step(), await second.step(), await second.step()]
        await ra.aclose()
        await rb.aclose()
        return out, a.days, b.days

    out, a_days, b_days = asyncio.run(main())
    assert out == [{1: 1}, None, None] and a_days == [date(2026, 11, 18)] and b_days == []
