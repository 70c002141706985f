"""Property: through the real dialer (SQL store, planner, gate, pacing) over random campaigns, contacts, time zones
and schedules — zero Originates outside the callee's window, on a DNC number or customer, without consent for a
marketing type, beyond the attempts or inside the retry spacing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone
from sqlalchemy import delete, insert, select, update

from ccserver.campaigns.compliance import CAMPAIGN_TYPES, MARKETING_TYPES
from ccserver.campaigns.settings import CampaignSettings
from ccserver.campaigns.windows import CallingWindow
from ccserver.clock import ManualClock
from ccserver.db.models import Campaign, CampaignTarget, Customer, DncNumber, PhoneNumber, customer_phones
from ccserver.dialer.engine import Dialer
from ccserver.dialer.leases import MemoryContactLeases
from ccserver.dialer.store import DialerStore
from tests.dialer_support import ScriptedOriginator, database, inline

NUMBERS = ["+8613800138000", "+8613912345678", "+12125551234", "+14155550100", "+61212345678", "+442079460000",
           "+918026000000", "+15555555555", "+18005550100", "+8621588812340", "+79161234567", "+6421123456"]
SPACING = {"busy": 900.0, "no_answer": 7200.0, "failed": 1800.0, "machine": 14400.0, "abandoned": 3600.0}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sessions = database(f"sqlite:///{tmp_path_factory.mktemp('dialer') / 'db.sqlite3'}")
    customers = {}
    with sessions.begin() as s:
        for n, number in enumerate(NUMBERS):
            customer, phone = Customer(name=f"p{n}"), PhoneNumber(e164=number)
            s.add_all([customer, phone])
            s.flush()
            s.execute(insert(customer_phones).values(customer_id=customer.id, phone_id=phone.id, is_primary=True))
            customers[number] = customer.id
    return sessions, customers


def zones_of(number: str, fallback: str) -> list[ZoneInfo]:
    """Independent of ccserver.campaigns.windows: phonenumbers directly."""
    names = [z for z in pn_timezone.time_zones_for_number(phonenumbers.parse(number)) if z != "Etc/Unknown"]
    return [ZoneInfo(z) for z in names] or [ZoneInfo(fallback)]


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.integers(0, 16 * 60))
    end = draw(st.integers(start + 120, 24 * 60 - 1))
    people = draw(st.lists(st.tuples(st.sampled_from(NUMBERS), st.booleans(), st.booleans()), min_size=1,
                           max_size=8, unique_by=lambda p: p[0]))
    return {"window": (f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"),
            "weekdays": sorted(draw(st.sets(st.integers(0, 6), min_size=3))),
            "type": draw(st.sampled_from(CAMPAIGN_TYPES)), "people": people,
            "dnc": draw(st.sets(st.sampled_from(NUMBERS), max_size=2)),
            "outcome": draw(st.sampled_from(["busy", "no_answer", "failed"])),
            "max_attempts": draw(st.integers(1, 3)),
            "start": draw(st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 1), timezones=st.just(UTC))),
            "steps": draw(st.lists(st.integers(1, 180), min_size=10, max_size=60))}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=runs())
def test_property_no_originate_against_the_rules(world: Any, run: dict[str, Any]) -> None:
    sessions, customers = world
    start, end = run["window"]
    with sessions.begin() as s:
        s.execute(update(Campaign).values(status="finished"))
        s.execute(delete(DncNumber))
        for number in run["dnc"]:
            s.add(DncNumber(e164=number, source="api"))
        c = Campaign(name="p", type=run["type"], mode="progressive", status="running", queue="sales", store_id=1,
                     window={"start": start, "end": end, "weekdays": run["weekdays"]}, targets_spec={},
                     tiers_first=False, max_attempts=run["max_attempts"])
        s.add(c)
        s.flush()
        facts = {}
        for number, dnc, consent in run["people"]:
            cid = customers[number]
            s.execute(update(Customer).where(Customer.id == cid).values(do_not_call=dnc, consent=consent))
            t = CampaignTarget(campaign_id=c.id, customer_id=cid, e164=number, status="pending", attempts=0)
            s.add(t)
            s.flush()
            facts[t.id] = (number, dnc, consent)

    sends: list[tuple[int, datetime]] = []

    async def go() -> None:
        clock = ManualClock(run["start"].timestamp())
        originator = ScriptedOriginator(clock, outcome=run["outcome"], delay=20.0)
        real = originator.originate

        def record(server: str, channel: str, **kwargs: Any) -> Any:
            sends.append((int(kwargs["variables"]["CC_TARGET_ID"]), datetime.fromtimestamp(clock.time(), UTC)))
            return real(server, channel, **kwargs)

        originator.originate = record  # type: ignore[method-assign]
        settings_ = CampaignSettings(window=CallingWindow(dtime(0), dtime(23, 59)))
        dialer = Dialer(DialerStore(sessions), originator, MemoryContactLeases(clock.monotonic), run_blocking=inline,
                        clock=clock, default_zone="Asia/Shanghai", refresh=0.0, settings=settings_,
                        floor=lambda *a: (3, []))
        for minutes in run["steps"]:
            await dialer.tick()
            await clock.advance(minutes * 60.0)
        await dialer.drain()

    asyncio.run(go())
    event("dialled" if sends else "nothing dialled")
    window_start, window_end = dtime.fromisoformat(start), dtime.fromisoformat(end)
    last: dict[int, datetime] = {}
    count: dict[int, int] = {}
    for target_id, at in sends:
        number, dnc, consent = facts[target_id]
        assert not dnc and number not in run["dnc"]
        assert consent or run["type"] not in MARKETING_TYPES
        for zone in zones_of(number, "Asia/Shanghai"):
            local = at.astimezone(zone)
            assert local.weekday() in run["weekdays"] and window_start <= local.time() < window_end, (number, local)
        if target_id in last:
            assert at - last[target_id] >= timedelta(seconds=SPACING[run["outcome"]])
        last[target_id] = at
        count[target_id] = count.get(target_id, 0) + 1
        assert count[target_id] <= run["max_attempts"]
    with sessions() as s:
        assert s.scalar(select(Campaign.id).where(Campaign.status == "running")) is not None
