"""Campaign dispositions as a signal of the customer's value score: the pure scoring (reached / booked engagement
when a site gives it points, a refusal always a risk flag and a deduction only where set), the SQL facts, and the
rescore a disposition triggers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from ccserver.customers.scores import facts_for_range
from ccserver.db.models import CampaignAttempt, CampaignTarget, Customer
from routing.value import CustomerFacts, ValueWeights, explain, score
from tests.test_campaigns_api import api, body  # noqa: F401 - api is a fixture

AS_OF = date(2026, 11, 23)
BASE = CustomerFacts(spend={"service": 10_000.0}, last_activity=date(2026, 10, 1), activity_count=3,
                     first_purchase=date(2022, 1, 1), vehicles=1, has_purchases=True)


def _with(**changes: Any) -> CustomerFacts:
    from dataclasses import replace

    return replace(BASE, **changes)


def test_by_default_dispositions_change_no_points_but_a_refusal_is_a_risk() -> None:
    plain = score(BASE, AS_OF)
    engaged = score(_with(campaign_reached=3, campaign_booked=1), AS_OF)
    refused = score(_with(campaign_refused=2), AS_OF)
    assert engaged.total == plain.total and "campaign" not in engaged.components
    assert refused.total == plain.total and refused.risk == ("campaign_refused:2",)
    assert "refused 2 campaign calls (risk)" in explain(refused)


def test_a_site_that_gives_campaigns_points() -> None:
    weights = ValueWeights(recency_points=5.0, campaign_points=5.0, refusal_points=2.0)
    none = score(BASE, AS_OF, weights)
    reached = score(_with(campaign_reached=2), AS_OF, weights)
    booked = score(_with(campaign_reached=2, campaign_booked=2), AS_OF, weights)
    assert none.total < reached.total < booked.total
    assert reached.components["campaign"] == pytest.approx(5.0 * 2 / 4)  # e / (e + 2)
    assert booked.components["campaign"] == pytest.approx(5.0 * 4 / 6)  # a booking counts twice
    assert booked.basis["campaign"] == "2 campaign calls reached, 2 booked"
    refused = score(_with(campaign_refused=1), AS_OF, weights)
    assert refused.components["refusals"] == -2.0 and refused.total == pytest.approx(none.total - 2.0)
    nothing = score(CustomerFacts(campaign_refused=50), AS_OF, weights)
    assert nothing.total == 0.0  # capped at what was earned, never below 0
    with pytest.raises(ValueError, match="sum to"):
        ValueWeights(campaign_points=5.0)  # the default budgets are full: a site makes room first
    with pytest.raises(ValueError, match="refusal_points"):
        ValueWeights(refusal_points=-1.0)


def test_dispositions_reach_the_facts_and_rescore_the_customer(api: Any) -> None:  # noqa: F811
    from tests.tickets_support import make_service

    api.ctx.tickets = make_service(api.sessions)[0]
    with api.sessions.begin() as s:
        s.execute(update(Customer).values(consent=True))
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(2)))
    cid = api("admin", "POST", "/api/campaigns", body(targets={"customer_ids": ids}))[1]["id"]
    at = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    with api.sessions.begin() as s:
        targets = {t.customer_id: t.id for t in s.scalars(select(CampaignTarget)
                                                           .where(CampaignTarget.campaign_id == cid))}
        attempts = []
        for n, customer in enumerate(ids):
            a = CampaignAttempt(campaign_id=cid, target_id=targets[customer], customer_id=customer,
                                action_id=f"sc-{n}", originated_at=at, answered_at=at, outcome="reached")
            s.add(a)
            s.flush()
            attempts.append(a.id)
    path = f"/api/campaigns/{cid}/dispositions"
    assert api("agent8001", "POST", path, {"attempt_id": attempts[0], "disposition": "booked"})[0] == 200
    assert api("agent8001", "POST", path, {"attempt_id": attempts[1], "disposition": "refused"})[0] == 200
    with api.sessions() as s:
        facts = facts_for_range(s, min(ids), max(ids), as_of=AS_OF, weights=ValueWeights(), tz=UTC)
        refused = s.get(Customer, ids[1])
        assert refused is not None
        risk = (refused.score_components or {}).get("risk", [])
    assert (facts[ids[0]].campaign_reached, facts[ids[0]].campaign_booked, facts[ids[0]].campaign_refused) == (
        1, 1, 0)
    assert (facts[ids[1]].campaign_reached, facts[ids[1]].campaign_refused) == (0, 1)
    assert "campaign_refused:1" in risk  # rescored at the disposition


def test_the_rescore_invalidates_the_cached_customer(api: Any) -> None:  # noqa: F811
    applied: list[Any] = []

    class Recorder:
        async def apply(self, inv: Any) -> None:
            applied.append(inv)

    api.ctx.campaigns.invalidator = Recorder()
    with api.sessions.begin() as s:
        customer = s.scalar(select(Customer.id).order_by(Customer.id))
    cid = api("admin", "POST", "/api/campaigns", body(type="satisfaction", targets={"customer_ids": [customer]}))[1]
    at = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    with api.sessions.begin() as s:
        target = s.scalar(select(CampaignTarget.id).where(CampaignTarget.campaign_id == cid["id"]))
        a = CampaignAttempt(campaign_id=cid["id"], target_id=target, customer_id=customer, action_id="sc-x",
                            originated_at=at, answered_at=at, outcome="reached")
        s.add(a)
        s.flush()
        attempt = a.id
    done = api("agent8001", "POST", f"/api/campaigns/{cid['id']}/dispositions",
               {"attempt_id": attempt, "disposition": "reached"})
    assert done[0] == 200 and "_invalidation" not in done[1]
    assert len(applied) == 1 and customer in applied[0].customer_ids
