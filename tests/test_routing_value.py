"""Value score: components, monotonicity, bounds; tier cut-offs on a synthetic population; VIP."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.value import (
    CustomerFacts,
    TierCutoffs,
    TierShares,
    ValueWeights,
    compute_cutoffs,
    explain,
    is_vip,
    score,
    tier_for,
)

AS_OF = date(2026, 4, 1)
CATEGORIES = ("vehicle", "service", "insurance", "accessories", "used_car")

LOYAL = CustomerFacts(
    spend={"vehicle": 268_000.0, "service": 12_400.0, "insurance": 6_100.0},
    last_activity=date(2026, 3, 1),
    activity_count=7,
    first_purchase=date(2021, 5, 1),
    vehicles=2,
    membership_level=3,
    open_complaints=1,
    has_purchases=True,
)


def test_components_and_explanation():
    v = score(LOYAL, AS_OF)
    assert v.total == pytest.approx(math.fsum(v.components.values()))
    assert set(v.components) == {*(f"spend.{c}" for c in CATEGORIES), "recency", "frequency", "tenure", "vehicles",
                                 "membership"}
    assert v.components["spend.used_car"] == 0.0
    lines = explain(v)
    assert lines[0].startswith("vehicle purchases ¥268,000 in 24 months: +")
    assert any(line.startswith("service spend ¥12,400 in 24 months: +") for line in lines)
    assert lines[-1] == "1 open complaint (risk)"
    assert v.risk == ("open_complaints:1",)
    # reasons are sorted by contribution
    values = [float(line.rsplit(": ", 1)[1]) for line in lines[:-1]]
    assert values == sorted(values, key=abs, reverse=True)


def test_reference_spend_earns_the_full_budget():
    w = ValueWeights()
    v = score(CustomerFacts(spend={"service": 20_000.0}), AS_OF)
    assert v.components["spend.service"] == pytest.approx(w.spend_points["service"])
    half = score(CustomerFacts(spend={"service": 10_000.0}), AS_OF).components["spend.service"]
    assert half == pytest.approx(20.0 * math.log1p((math.e - 1) / 2))  # ≈ 62 % of the budget
    assert score(CustomerFacts(spend={"service": 1e12}), AS_OF).components["spend.service"] == 20.0


def test_recency_half_life():
    base = CustomerFacts(last_activity=AS_OF)
    assert score(base, AS_OF).components["recency"] == pytest.approx(10.0)
    assert score(replace(base, last_activity=AS_OF - timedelta(days=180)), AS_OF).components["recency"] == \
        pytest.approx(5.0)
    assert score(replace(base, last_activity=AS_OF + timedelta(days=3)), AS_OF).components["recency"] == 10.0


def test_complaints_are_a_flag_by_default_and_a_capped_deduction_when_configured():
    quiet = replace(LOYAL, open_complaints=0)
    assert score(LOYAL, AS_OF).total == score(quiet, AS_OF).total
    w = ValueWeights(complaint_points=5.0)
    v = score(replace(LOYAL, open_complaints=2), AS_OF, w)
    assert v.components["complaints"] == -10.0
    assert v.total == pytest.approx(score(quiet, AS_OF, w).total - 10.0)
    tiny = score(CustomerFacts(activity_count=1, open_complaints=50), AS_OF, w)
    assert tiny.total == 0.0 and math.fsum(tiny.components.values()) == pytest.approx(0.0, abs=1e-12)


def test_garbage_facts_do_not_break_the_score():
    v = score(CustomerFacts(spend={"vehicle": math.nan, "service": -500.0, "insurance": math.inf, "boats": 9e9},
                            activity_count=-3, vehicles=-1, membership_level=-2), AS_OF)
    assert 0.0 <= v.total <= 100.0
    assert v.components["spend.vehicle"] == 0.0 and v.components["spend.service"] == 0.0
    assert v.components["spend.insurance"] == 10.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"recency_points": -1.0}, "recency_points"),
        ({"spend_points": {"vehicle": 90.0}, "recency_points": 20.0}, "more than 100"),
        ({"spend_points": {"boats": 5.0}}, "spend_reference.boats"),
        ({"recency_half_life_days": 0.0}, "recency_half_life_days"),
        ({"tenure_points": math.nan}, "tenure_points"),
    ],
)
def test_weights_validation(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        ValueWeights(**kwargs)


_amount = st.floats(min_value=0.0, max_value=5e7, allow_nan=False)
_facts = st.builds(
    CustomerFacts,
    spend=st.fixed_dictionaries({c: _amount for c in CATEGORIES}),
    last_activity=st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1))),
    activity_count=st.integers(0, 10_000),
    first_purchase=st.one_of(st.none(), st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 1, 1))),
    vehicles=st.integers(0, 50),
    membership_level=st.integers(0, 20),
    open_complaints=st.integers(0, 10),
    has_purchases=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(_facts)
def test_property_bounds_and_sum(facts):
    for w in (ValueWeights(), ValueWeights(complaint_points=7.5)):
        v = score(facts, AS_OF, w)
        assert 0.0 <= v.total <= 100.0
        assert v.total == pytest.approx(math.fsum(v.components.values()), abs=1e-9)
        if w.complaint_points == 0:
            assert v.total == math.fsum(v.components.values())  # exact without a deduction
        assert all(line for line in explain(v))


@settings(max_examples=400, deadline=None)
@given(_facts, st.sampled_from(CATEGORIES), st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_property_more_spend_never_lowers_the_score(facts, category, extra):
    more = replace(facts, spend={**facts.spend, category: facts.spend[category] + extra})
    assert score(more, AS_OF).total >= score(facts, AS_OF).total
    assert score(more, AS_OF).components[f"spend.{category}"] >= score(facts, AS_OF).components[f"spend.{category}"]


@settings(max_examples=200, deadline=None)
@given(_facts, st.integers(0, 100), st.integers(0, 3000))
def test_property_more_activity_and_recency_never_lower(facts, more_visits, days_earlier):
    assert score(replace(facts, activity_count=facts.activity_count + more_visits), AS_OF).total >= \
        score(facts, AS_OF).total
    if facts.last_activity is not None:
        older = replace(facts, last_activity=facts.last_activity - timedelta(days=days_earlier))
        assert score(older, AS_OF).total <= score(facts, AS_OF).total


# --- tiers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
def test_cutoffs_honour_shares_on_a_synthetic_population(n):
    rng = random.Random(n)
    # Pareto-ish spend: a few customers carry most of the value, like the 80/20 the seed documents describe.
    scores = [min(100.0, 100.0 * (1.0 - rng.paretovariate(1.5) ** -1.0)) for _ in range(n)]
    cut = compute_cutoffs(scores)
    tiers = [tier_for(s, True, cut) for s in scores]
    assert cut.population == n
    assert tiers.count("diamond") == round(n * 0.02)
    assert tiers.count("gold") == round(n * 0.08)
    assert tiers.count("silver") == round(n * 0.20)
    assert tiers.count("bronze") == n - round(n * 0.30)
    assert cut.diamond >= cut.gold >= cut.silver


def test_cutoffs_fast_path_equals_full_sort():
    rng = random.Random(7)
    scores = [rng.random() * 100 for _ in range(200_000)] + [math.nan, math.inf, -math.inf]
    rng.shuffle(scores)
    cut = compute_cutoffs(scores)
    finite = sorted((s for s in scores if math.isfinite(s)), reverse=True)
    n = len(finite)
    assert (cut.diamond, cut.gold, cut.silver) == (finite[round(n * .02) - 1], finite[round(n * .10) - 1],
                                                   finite[round(n * .30) - 1])
    assert cut.population == n


def test_cutoffs_custom_shares_ties_and_edge_cases():
    assert compute_cutoffs([]) == TierCutoffs(math.inf, math.inf, math.inf, 0)
    one = compute_cutoffs([42.0])
    assert tier_for(42.0, True, one) == "bronze"  # 30 % of one customer rounds to nobody
    ties = compute_cutoffs([50.0] * 100)
    assert tier_for(50.0, True, ties) == "diamond"  # ties go to the higher tier
    custom = compute_cutoffs(range(100), TierShares(diamond=0.10, gold=0.0, silver=0.40))
    assert (custom.diamond, custom.gold, custom.silver) == (90.0, 90.0, 50.0)
    assert compute_cutoffs(iter([3.0, 1.0, 2.0])).population == 3
    assert compute_cutoffs([1, 2, None, "x", 3.0]).population == 3  # type: ignore[list-item]
    with pytest.raises(ValueError):
        TierShares(diamond=0.5, gold=0.5, silver=0.5)


def test_tier_for_and_vip():
    cut = TierCutoffs(diamond=90.0, gold=75.0, silver=50.0, population=10)
    assert [tier_for(s, True, cut) for s in (95, 90, 80, 75, 60, 50, 10)] == \
        ["diamond", "diamond", "gold", "gold", "silver", "silver", "bronze"]
    assert tier_for(99.0, False, cut) == "prospect"
    assert is_vip("diamond", False) and is_vip("gold", False)
    assert not is_vip("silver", False) and is_vip("silver", True) and is_vip("prospect", True)
    assert is_vip("silver", False, {"silver"}) and not is_vip("gold", False, {"diamond"})
