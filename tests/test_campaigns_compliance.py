"""The compliance gate, target selection and the planner (pure), with property-based checks: zero dials outside
the callee's window, on DNC, without consent for marketing, over the attempt limit or inside the retry spacing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ccserver.campaigns.compliance import (
    CAMPAIGN_TYPES,
    FINAL_OUTCOMES,
    MARKETING_TYPES,
    Contact,
    RetryPolicy,
    check,
)
from ccserver.campaigns.planner import CampaignRules, pick
from ccserver.campaigns.selection import Target, TargetQueue
from ccserver.campaigns.windows import CallingWindow, callee_zones

SH = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 6, 2, 12, 0, tzinfo=SH)


def contact(**kw: object) -> Contact:
    base: dict[str, object] = {"e164": "+8613800138000", "campaign_type": "return_visit", "zones": (SH,)}
    base.update(kw)
    return Contact(**base)  # type: ignore[arg-type]


def test_each_refusal_reason_in_order() -> None:
    w, p = CallingWindow(), RetryPolicy(max_attempts=2)
    assert check(contact(), w, p, set(), NOON).allowed
    assert check(contact(do_not_call=True, campaign_type="insurance"), w, p, set(), NOON).reason == "dnc_customer"
    assert check(contact(), w, p, {"+8613800138000"}, NOON).reason == "dnc_number"
    assert check(contact(campaign_type="insurance"), w, p, set(), NOON).reason == "no_consent"
    assert check(contact(campaign_type="insurance", consent=True), w, p, set(), NOON).allowed
    assert check(contact(attempts=2), w, p, set(), NOON).reason == "max_attempts"
    done = contact(attempts=1, last_outcome="refused", last_attempt_at=NOON - timedelta(days=3))
    assert check(done, w, p, set(), NOON).reason == "final"
    v = check(contact(), w, p, set(), datetime(2026, 6, 2, 21, 0, tzinfo=SH))
    assert (v.reason, v.retry_at) == ("window", datetime(2026, 6, 3, 9, 0, tzinfo=SH))
    assert v.permanent is False and check(contact(do_not_call=True), w, p, set(), NOON).permanent


def test_retry_spacing_by_outcome() -> None:
    p = RetryPolicy(max_attempts=5, spacing={"busy": 600, "no_answer": 7200})
    w = CallingWindow()
    busy = contact(attempts=1, last_outcome="busy", last_attempt_at=NOON)
    v = check(busy, w, p, set(), NOON + timedelta(minutes=5))
    assert (v.reason, v.retry_at) == ("spacing", NOON + timedelta(minutes=10))
    assert check(busy, w, p, set(), NOON + timedelta(minutes=10)).allowed
    # Spacing that ends after the window closes: retry at the next opening.
    late = contact(attempts=1, last_outcome="no_answer", last_attempt_at=datetime(2026, 6, 2, 19, 0, tzinfo=SH))
    v = check(late, w, p, set(), datetime(2026, 6, 2, 19, 30, tzinfo=SH))
    assert (v.reason, v.retry_at) == ("spacing", datetime(2026, 6, 3, 9, 0, tzinfo=SH))
    for bad in ({"reached": 10}, {"busy": -1}, {"bogus": 1}):
        with pytest.raises(ValueError):
            RetryPolicy(spacing=bad)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_selection_tiers_first_then_order_then_busy_customers_wait() -> None:
    targets = [Target(1, 11, "bronze", 1.0), Target(2, 12, "diamond", 5.0), Target(3, 13, "gold", 2.0),
               Target(4, 14, None, 0.0), Target(5, 12, "diamond", 6.0)]
    q = TargetQueue(targets, tiers_first=True, busy_retry=30)
    assert [q.next(0).id for _ in range(2)] == [2, 5]  # type: ignore[union-attr]
    q = TargetQueue(targets, tiers_first=True, busy_retry=30)
    first = q.next(0, busy={12})
    assert first is not None and first.id == 3  # both diamonds belong to a customer in a call elsewhere
    q2 = TargetQueue(targets, tiers_first=False)
    assert [t.id for t in iter(lambda: q2.next(0), None)] == [4, 1, 3, 2, 5]


def test_selection_waits_for_not_before_and_drops_refused() -> None:
    q = TargetQueue([Target(1, 1, not_before=100.0), Target(2, 2)])
    assert q.next(0, check=lambda t: False) is None  # 2 dropped for good, 1 not due yet
    assert len(q) == 1 and q.next_due() == 100.0
    assert q.next(99) is None
    got = q.next(100, check=lambda t: 150.0)  # deferred by the gate
    assert got is None and q.next_due() == 150.0
    assert q.next(150) == Target(1, 1, not_before=150.0)


def test_pick_one_attempt_per_customer_and_reasons_reported() -> None:
    q = TargetQueue([Target(1, 7), Target(2, 7), Target(3, 8), Target(4, 9)])
    contacts = {1: contact(), 2: contact(), 3: contact(do_not_call=True), 4: contact(e164="+8613900000000")}
    dropped: list[tuple[int, str]] = []
    got = pick(q, contacts, CampaignRules(CallingWindow()), set(), NOON, 5,
               dropped=lambda t, r: dropped.append((t.id, r)))
    assert [t.id for t in got] == [1, 4]  # 2: same customer as 1 (waits); 3: do-not-call (dropped)
    assert dropped == [(3, "dnc_customer")]
    assert len(q) == 1  # target 2 is waiting for its customer


NUMBERS = ["+8613800138000", "+8613912345678", "+12125551234", "+14155550100", "+61212345678",
           "+442079460000", "+918026000000", "+15555555555", "+18005550100", "+8621588812340"]
STORE_ZONES = ["Asia/Shanghai", "America/Chicago", "Europe/Berlin", "Asia/Urumqi"]


@st.composite
def campaign_runs(draw: st.DrawFn) -> dict[str, object]:
    start = draw(st.integers(0, 22 * 60))
    end = draw(st.integers(start + 30, 24 * 60 - 1))
    window = CallingWindow(dtime(start // 60, start % 60), dtime(end // 60, end % 60),
                           draw(st.frozensets(st.integers(0, 6), min_size=1)))
    n = draw(st.integers(1, 25))
    people = [{"e164": draw(st.sampled_from(NUMBERS)), "dnc": draw(st.booleans()), "consent": draw(st.booleans()),
               "customer": draw(st.integers(1, 8)), "type": draw(st.sampled_from(CAMPAIGN_TYPES))}
              for _ in range(n)]
    return {"window": window, "people": people, "store_zone": draw(st.sampled_from(STORE_ZONES)),
            "dnc_list": draw(st.sets(st.sampled_from(NUMBERS), max_size=3)),
            "max_attempts": draw(st.integers(1, 4)), "seed": draw(st.integers(0, 2**32 - 1)),
            "start": draw(st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC))),
            "steps": draw(st.lists(st.integers(1, 24 * 60), min_size=5, max_size=60))}


@settings(max_examples=200, deadline=None)
@given(run=campaign_runs())
def test_property_no_dial_outside_window_on_dnc_without_consent_or_over_limits(run: dict) -> None:
    rng = random.Random(run["seed"])
    policy = RetryPolicy(max_attempts=run["max_attempts"], spacing={"busy": 600, "no_answer": 3600,
                                                                     "failed": 1800, "machine": 7200,
                                                                     "abandoned": 3600})
    rules = CampaignRules(run["window"], policy)
    contacts: dict[int, Contact] = {}
    people = run["people"]
    for i, p in enumerate(people):
        contacts[i] = Contact(p["e164"], p["type"], callee_zones(p["e164"], run["store_zone"]), p["dnc"],
                              p["consent"])
    queue = TargetQueue([Target(i, p["customer"], order=float(i)) for i, p in enumerate(people)], busy_retry=60)
    now: datetime = run["start"]
    in_call: dict[int, int] = {}  # customer -> target in an active attempt
    dials: list[tuple[int, datetime]] = []
    for minutes in run["steps"]:
        now += timedelta(minutes=minutes)
        in_call.clear()  # the previous step's calls have ended
        for target in pick(queue, contacts, rules, run["dnc_list"], now, rng.randint(0, 6), busy=in_call):
            c, p = contacts[target.id], people[target.id]
            # Independent checks of every dial, computed here from first principles:
            assert not p["dnc"] and p["e164"] not in run["dnc_list"]
            assert p["consent"] or p["type"] not in MARKETING_TYPES
            assert c.attempts < policy.max_attempts and c.last_outcome not in FINAL_OUTCOMES
            for zone in c.zones:
                local = now.astimezone(zone)
                assert local.weekday() in run["window"].weekdays
                assert run["window"].start <= local.time() < run["window"].end
            if c.last_attempt_at is not None:
                assert now - c.last_attempt_at >= timedelta(seconds=policy.spacing[c.last_outcome])  # type: ignore
            assert target.customer_id not in in_call  # one active attempt per customer
            in_call[target.customer_id] = target.id  # type: ignore[index]
            dials.append((target.id, now))
            outcome = rng.choice(["busy", "no_answer", "failed", "machine", "abandoned", "reached", "refused"])
            contacts[target.id] = Contact(c.e164, c.campaign_type, c.zones, c.do_not_call, c.consent,
                                          c.attempts + 1, outcome, now)
            queue.add(Target(target.id, target.customer_id, target.tier, target.order, now.timestamp()))
    event("dialled" if dials else "nothing dialled")
    per_target: dict[int, int] = {}
    for tid, _ in dials:
        per_target[tid] = per_target.get(tid, 0) + 1
    assert all(count <= policy.max_attempts for count in per_target.values())
