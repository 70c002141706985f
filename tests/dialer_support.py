"""Helpers for the dialer tests: a small migrated SQLite database with one store, its DID, a queue, customers and a
running campaign; inline run_blocking; the AMI manager shape over one replayed client."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from ccserver.bridge import settle
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import (
    Campaign,
    CampaignTarget,
    Customer,
    DealerGroup,
    Did,
    PhoneNumber,
    Queue,
    Store,
    customer_phones,
)

# 10:00 on Tuesday 24 November 2026 in Shanghai: inside the default calling window.
MORNING = datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()


async def inline(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


async def turns(n: int = 60) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def filled(dialer: Any) -> None:
    """Wait for the background fills the last tick started (writing lines ahead). With real Redis leases a fill
    waits on the network, so a fixed number of loop turns is not enough on a busy machine."""
    for campaign in list(dialer.campaigns.values()):
        if campaign.filling is not None:
            await campaign.filling


def database(url: str) -> Any:
    migrate.upgrade(url)
    sessions = session_factory(make_engine(url))
    with sessions.begin() as s:
        s.add(DealerGroup(id=1, name="Group"))
        s.flush()
        s.add(Store(id=1, group_id=1, code="sh-volvo", name="Shanghai Volvo", brand="Volvo", city="Shanghai",
                    time_zone="Asia/Shanghai"))
        s.flush()
        s.add(Did(number="4008001000", store_id=1, line="service"))
        s.add(Queue(name="sales", store_id=1, line="sales"))
    return sessions


def campaign(sessions: Any, numbers: list[str], *, type: str = "return_visit", mode: str = "progressive",
             consent: bool = True, dnc: bool = False, max_attempts: int = 3, status: str = "running") -> tuple[int,
                                                                                                          list[int]]:
    """A campaign over new customers with these numbers (one each); returns (campaign id, target ids in order)."""
    with sessions.begin() as s:
        c = Campaign(name="c", type=type, mode=mode, status=status, queue="sales", store_id=1,
                     window={"start": "09:00", "end": "20:00"}, targets_spec={"customer_ids": []},
                     tiers_first=False, max_attempts=max_attempts)
        s.add(c)
        s.flush()
        ids = []
        for n, number in enumerate(numbers):
            customer = Customer(name=f"c{n}", consent=consent, do_not_call=dnc)
            phone = PhoneNumber(e164=number)
            s.add_all([customer, phone])
            s.flush()
            s.execute(insert(customer_phones).values(customer_id=customer.id, phone_id=phone.id, is_primary=True))
            t = CampaignTarget(campaign_id=c.id, customer_id=customer.id, e164=number, tier="gold",
                               order_at=datetime.fromtimestamp(1_700_000_000 + n, UTC), status="pending", attempts=0)
            s.add(t)
            s.flush()
            ids.append(t.id)
        return c.id, ids


class OneClient:
    """ccserver.ami.manager.AMIManager's shape (``clients``, ``originate``) over one AMIClient."""

    def __init__(self, client: Any, server: str = "default") -> None:
        self.clients = {server: client}

    def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
        return self.clients[server].originate(channel, **kwargs)


class Result:
    def __init__(self, outcome: str, uniqueid: str | None = None) -> None:
        self.outcome, self.uniqueid = outcome, uniqueid
        self.answered = outcome == "answered"


class ScriptedOriginator:
    """Answers every Originate with ``outcome`` (after ``delay`` on the clock); records what was sent."""

    def __init__(self, clock: Any, outcome: str = "busy", delay: float = 5.0) -> None:
        self.clock, self.outcome, self.delay = clock, outcome, delay
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self._n = 0
        # Unique across instances: tests sharing one database (hypothesis examples) must never reuse an
        # action id, and id(self) is recycled once an earlier originator is freed.
        self._prefix = uuid.uuid4().hex[:12]

    def new_action_id(self, server: str) -> str:
        self._n += 1
        return f"scripted-{self._prefix}-{self._n}"

    def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
        self.sent.append((kwargs["action_id"], channel, kwargs))
        return self._later()

    async def _later(self) -> Any:
        await self.clock.sleep(self.delay)
        return await settle(Result(self.outcome))
