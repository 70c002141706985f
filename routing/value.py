"""Customer value score (0–100, explained) and tiers.

The score is a sum of components. Each component has a budget of points (``ValueWeights``) and a saturating
transform in [0, 1], so no single input can run away with the score, and the components are shown to the
agent as "why this customer is gold".

Components and default budgets (they sum to 100; a site may lower any, and the total stays ≤ 100):

================  ======  =====================================================================================
component         points  transform (defaults)
================  ======  =====================================================================================
spend.vehicle        25   ``min(1, ln(1 + (e−1)·spend/ref))``, ref ¥300,000: the reference amount earns the full
spend.service        20   budget; log-shaped below it (half the reference earns 62 %, a tenth 16 %). Refs:
spend.insurance      10   service ¥20,000, insurance ¥15,000, accessories ¥10,000, used car ¥150,000.
spend.accessories     5   Spend is over ``window_days`` (default 730 = 24 months); negative amounts (net
spend.used_car       10   refunds) count as 0. Categories not listed in the weights earn nothing.
recency              10   ``0.5 ** (days since last activity / 180)`` (half-life 180 days); none → 0
frequency             8   ``n / (n + 4)``: activities (orders + visits) in the window; 4 activities earn half
tenure                5   ``min(1, years since first purchase / 5)``
vehicles              3   ``min(1, vehicles / 3)``
membership            4   ``min(1, level / 5)``
campaign              0   ``e / (e + 2)``, e = campaign calls reached + booked (a booking counts twice), from the
                          agents' dispositions. **decision:** 0 by default — the budget above is full, so a site
                          gives it points by lowering another; a refusal is always a risk flag
                          (``campaign_refused:N``) and costs ``refusal_points`` each only where a site sets them
complaints            0   **decision:** open complaints are a *risk flag*, not a deduction, by default: a
                          valuable customer who complains is still valuable, and demoting them at the moment
                          retention matters would be backwards. The flag is in ``ValueScore.risk`` and routing
                          raises such callers' priority. A site that wants a deduction sets
                          ``complaint_points`` (points lost per open complaint, capped at what was earned).
================  ======  =====================================================================================

Tiers (one vocabulary): **diamond, gold, silver, bronze, prospect**. ``compute_cutoffs`` takes the scores of
the customers *with purchases* and returns percentile cut-offs (defaults: diamond top 2 %, gold next 8 %, silver
next 20 %, bronze the rest); ``tier_for`` places one score; customers without purchases are ``prospect``.
"VIP" = the tiers named in config (default diamond + gold) or the manual VIP flag (``is_vip``).

Everything here is pure: ``as_of`` is an argument, nothing reads the clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

__all__ = [
    "TIERS",
    "DEFAULT_VIP_TIERS",
    "CustomerFacts",
    "ValueWeights",
    "ValueScore",
    "TierShares",
    "TierCutoffs",
    "score",
    "explain",
    "compute_cutoffs",
    "tier_for",
    "is_vip",
]

TIERS: Final = ("diamond", "gold", "silver", "bronze", "prospect")
DEFAULT_VIP_TIERS: Final = frozenset({"diamond", "gold"})

_E_MINUS_1: Final = math.e - 1.0

SPEND_LABELS: Final = {
    "vehicle": "vehicle purchases",
    "service": "service spend",
    "insurance": "insurance premiums",
    "accessories": "accessories spend",
    "used_car": "used-car business",
}


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the value model needs to know about one customer (one SQL aggregate row).

    ``spend``: CNY per category over the window (``ValueWeights.window_days``), e.g.
    ``{"vehicle": 268000.0, "service": 12400.0, "insurance": 6100.0, "accessories": 0.0, "used_car": 0.0}``.
    ``last_activity``: date of the latest order, visit or paid service (None = never).
    ``activity_count``: orders + visits within the window.
    ``first_purchase``: date of the first purchase ever (tenure); None = no purchase yet.
    ``vehicles``: vehicles the customer currently owns / has on record with the group.
    ``membership_level``: loyalty level, 0 = not a member.
    ``open_complaints``: complaint tickets not yet closed.
    ``has_purchases``: False → tier ``prospect`` whatever the score.
    ``manual_vip``: set by staff; makes the customer VIP regardless of tier (not scored).
    ``campaign_reached`` / ``campaign_booked`` / ``campaign_refused``: outbound campaign calls in the window the
    agent disposed as a conversation (any disposition but ``refused`` / ``wrong_number`` / ``no_answer`` /
    ``busy``), as an appointment booked (also counted as reached), as a refusal of further calls.
    """

    spend: Mapping[str, float] = field(default_factory=dict)
    last_activity: date | None = None
    activity_count: int = 0
    first_purchase: date | None = None
    vehicles: int = 0
    membership_level: int = 0
    open_complaints: int = 0
    has_purchases: bool = False
    manual_vip: bool = False
    campaign_reached: int = 0
    campaign_booked: int = 0
    campaign_refused: int = 0


def _default_spend_points() -> dict[str, float]:
    return {"vehicle": 25.0, "service": 20.0, "insurance": 10.0, "accessories": 5.0, "used_car": 10.0}


def _default_spend_reference() -> dict[str, float]:
    return {"vehicle": 300_000.0, "service": 20_000.0, "insurance": 15_000.0, "accessories": 10_000.0,
            "used_car": 150_000.0}


@dataclass(frozen=True, slots=True)
class ValueWeights:
    """Point budgets and transform parameters (defaults in the module docstring). Validated on creation:
    every budget ≥ 0, their sum ≤ 100, every reference / half-life / cap > 0."""

    spend_points: Mapping[str, float] = field(default_factory=_default_spend_points)
    spend_reference: Mapping[str, float] = field(default_factory=_default_spend_reference)
    recency_points: float = 10.0
    recency_half_life_days: float = 180.0
    frequency_points: float = 8.0
    frequency_half_at: float = 4.0
    tenure_points: float = 5.0
    tenure_full_years: float = 5.0
    vehicles_points: float = 3.0
    vehicles_full: int = 3
    membership_points: float = 4.0
    membership_max_level: int = 5
    complaint_points: float = 0.0
    campaign_points: float = 0.0
    campaign_half_at: float = 2.0
    refusal_points: float = 0.0
    window_days: int = 730

    def __post_init__(self) -> None:
        budgets = [*self.spend_points.values(), self.recency_points, self.frequency_points, self.tenure_points,
                   self.vehicles_points, self.membership_points, self.campaign_points]
        for name, value in [*(("spend_points." + k, v) for k, v in self.spend_points.items()),
                            ("recency_points", self.recency_points), ("frequency_points", self.frequency_points),
                            ("tenure_points", self.tenure_points), ("vehicles_points", self.vehicles_points),
                            ("membership_points", self.membership_points),
                            ("complaint_points", self.complaint_points),
                            ("campaign_points", self.campaign_points), ("refusal_points", self.refusal_points)]:
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite number ≥ 0, got {value!r}")
        if math.fsum(budgets) > 100.0:
            raise ValueError(f"point budgets sum to {math.fsum(budgets):g}, more than 100")
        for category in self.spend_points:
            ref = self.spend_reference.get(category)
            if ref is None or not (math.isfinite(ref) and ref > 0):
                raise ValueError(f"spend_reference.{category}: must be a number > 0, got {ref!r}")
        for name, positive in (("recency_half_life_days", self.recency_half_life_days),
                               ("frequency_half_at", self.frequency_half_at),
                               ("tenure_full_years", self.tenure_full_years),
                               ("vehicles_full", self.vehicles_full),
                               ("membership_max_level", self.membership_max_level),
                               ("campaign_half_at", self.campaign_half_at),
                               ("window_days", self.window_days)):
            if not (math.isfinite(positive) and positive > 0):
                raise ValueError(f"{name}: must be > 0, got {positive!r}")


@dataclass(frozen=True, slots=True)
class ValueScore:
    """``total`` in [0, 100] == ``math.fsum(components.values())`` (exactly, unless a configured complaint
    deduction is capped at what was earned: then to within float rounding, ~1e-16); ``components`` maps a component name
    (``spend.service``, ``recency`` …) to its contribution in points; ``basis`` maps the same names to the
    fact behind it ("service spend ¥12,400 in 24 months"); ``risk`` lists risk flags (``open_complaints:2``)."""

    total: float
    components: dict[str, float]
    basis: dict[str, str]
    risk: tuple[str, ...] = ()


def _finite_nonneg(x: float) -> float:
    """A spend amount as a float ≥ 0: NaN, negatives and junk → 0 (``inf`` stays, and saturates)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if v > 0 else 0.0  # NaN > 0 is False


def _money(amount: float) -> str:
    return f"¥{amount:,.0f}"


def _window_text(days: int) -> str:
    if days % 365 == 0:
        return f"{days // 365 * 12} months"
    if days % 30 == 0 or days > 60:
        return f"{round(days / 30.4)} months"
    return f"{days} days"


def score(facts: CustomerFacts, as_of: date, weights: ValueWeights | None = None) -> ValueScore:
    """Score one customer as of ``as_of`` (see the module docstring for the model)."""
    w = weights if weights is not None else _DEFAULT_WEIGHTS
    components: dict[str, float] = {}
    basis: dict[str, str] = {}
    window = _window_text(w.window_days)

    for category, points in w.spend_points.items():
        amount = _finite_nonneg(facts.spend.get(category, 0.0))
        ref = w.spend_reference[category]
        frac = 1.0 if math.isinf(amount) else min(1.0, math.log1p(_E_MINUS_1 * (amount / ref)))
        key = "spend." + category
        components[key] = points * frac
        label = SPEND_LABELS.get(category, category.replace("_", " ") + " spend")
        basis[key] = f"{label} {_money(amount) if math.isfinite(amount) else 'unbounded'} in {window}"

    if facts.last_activity is None:
        components["recency"] = 0.0
        basis["recency"] = "no activity on record"
    else:
        days = max(0, (as_of - facts.last_activity).days)
        components["recency"] = w.recency_points * 0.5 ** (days / w.recency_half_life_days)
        basis["recency"] = f"last activity {days} days ago"

    n = max(0, int(facts.activity_count))
    components["frequency"] = w.frequency_points * (n / (n + w.frequency_half_at))
    basis["frequency"] = f"{n} orders/visits in {window}"

    if facts.first_purchase is None:
        components["tenure"] = 0.0
        basis["tenure"] = "no purchase yet"
    else:
        years = max(0, (as_of - facts.first_purchase).days) / 365.25
        components["tenure"] = w.tenure_points * min(1.0, years / w.tenure_full_years)
        basis["tenure"] = f"customer for {years:.1f} years"

    vehicles = max(0, int(facts.vehicles))
    components["vehicles"] = w.vehicles_points * min(1.0, vehicles / w.vehicles_full)
    basis["vehicles"] = f"{vehicles} vehicle{'s' if vehicles != 1 else ''}"

    level = max(0, int(facts.membership_level))
    components["membership"] = w.membership_points * min(1.0, level / w.membership_max_level)
    basis["membership"] = f"membership level {level}" if level else "not a member"

    open_complaints = max(0, int(facts.open_complaints))
    risk: tuple[str, ...] = (f"open_complaints:{open_complaints}",) if open_complaints else ()
    if w.complaint_points > 0:
        earned = math.fsum(components.values())
        components["complaints"] = -min(earned, w.complaint_points * open_complaints)
        basis["complaints"] = f"{open_complaints} open complaint{'s' if open_complaints != 1 else ''}"

    # Outbound campaign dispositions: a conversation is engagement (a booking counts double), a refusal is a risk
    # flag — and, only where a site sets refusal_points, a deduction capped at what was earned (as complaints).
    reached, booked = max(0, int(facts.campaign_reached)), max(0, int(facts.campaign_booked))
    refused = max(0, int(facts.campaign_refused))
    if w.campaign_points > 0 and (reached or booked):
        engaged = reached + booked
        components["campaign"] = w.campaign_points * (engaged / (engaged + w.campaign_half_at))
        basis["campaign"] = f"{reached} campaign call{'s' if reached != 1 else ''} reached, {booked} booked"
    if refused:
        risk = (*risk, f"campaign_refused:{refused}")
        if w.refusal_points > 0:
            earned = math.fsum(components.values())
            components["refusals"] = -min(max(0.0, earned), w.refusal_points * refused)
            basis["refusals"] = f"refused {refused} campaign call{'s' if refused != 1 else ''}"

    total = math.fsum(components.values())
    total = min(100.0, max(0.0, total))
    return ValueScore(total=total, components=components, basis=basis, risk=risk)


_DEFAULT_WEIGHTS: Final = ValueWeights()


def explain(value: ValueScore, *, min_points: float = 0.05) -> list[str]:
    """Human-readable reasons, largest contribution first, e.g.
    ``"service spend ¥12,400 in 24 months: +18.2"``; components worth less than ``min_points`` are left out;
    risk flags come last ("2 open complaints (risk)")."""
    lines = [
        f"{value.basis.get(name, name)}: {points:+.1f}"
        for name, points in sorted(value.components.items(), key=lambda kv: -abs(kv[1]))
        if abs(points) >= min_points
    ]
    for flag in value.risk:
        name, _, count = flag.partition(":")
        if name == "open_complaints":
            lines.append(f"{count} open complaint{'s' if count != '1' else ''} (risk)")
        elif name == "campaign_refused":
            lines.append(f"refused {count} campaign call{'s' if count != '1' else ''} (risk)")
        else:
            lines.append(flag)
    return lines


@dataclass(frozen=True, slots=True)
class TierShares:
    """Share of purchasing customers in each tier, from the top. Bronze takes the rest."""

    diamond: float = 0.02
    gold: float = 0.08
    silver: float = 0.20

    def __post_init__(self) -> None:
        for name in ("diamond", "gold", "silver"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name}: share must be within 0..1, got {v!r}")
        if self.diamond + self.gold + self.silver > 1.0 + 1e-9:
            raise ValueError("diamond + gold + silver shares exceed 1")


@dataclass(frozen=True, slots=True)
class TierCutoffs:
    """Minimum score for each tier (inclusive); ``math.inf`` = nobody (too few customers).
    ``population``: how many scores the cut-offs were computed from."""

    diamond: float
    gold: float
    silver: float
    population: int = 0


def compute_cutoffs(scores: Iterable[float], shares: TierShares | None = None) -> TierCutoffs:
    """Percentile cut-offs over the scores of customers **with purchases** (the caller filters).

    With ``n`` finite scores sorted high → low, the diamond cut-off is the score of the ``round(n × 2 %)``-th
    customer, gold of the ``round(n × 10 %)``-th, silver of the ``round(n × 30 %)``-th (cumulative shares). A tier
    whose count rounds to 0 gets ``inf`` (nobody). Ties at a cut-off go to the higher tier, so with tied scores a
    tier can hold slightly more than its share. Non-finite scores are ignored.

    Only the top ``silver`` ranks matter, so a systematic 1 % sample picks a threshold safely below the silver
    cut-off, one C-speed filter keeps the scores above it, and only those are sorted (≈ 3× faster than sorting
    everything: 1 M scores ≈ 0.15 s). When the sample guesses wrong, or the input is not plain numbers, it falls
    back to sorting all finite scores; the result is the same either way.
    """
    s = shares if shares is not None else TierShares()
    cumulative = (s.diamond, s.diamond + s.gold, s.diamond + s.gold + s.silver)
    values = scores if isinstance(scores, list) else list(scores)
    try:
        n = sum(map(math.isfinite, values))
        top = _top_candidates(values, n, cumulative[2])
    except TypeError:  # something that is not a real number: take the slow, forgiving path
        values = [x for x in values if isinstance(x, int | float) and math.isfinite(x)]
        n = len(values)
        top = None
    if top is None:
        top = [x for x in values if math.isfinite(x)] if len(values) != n else list(values)
    top.sort(reverse=True)
    if n == 0:
        return TierCutoffs(math.inf, math.inf, math.inf, 0)

    def cut(share: float) -> float:
        k = min(n, int(math.floor(n * share + 0.5)))
        return float(top[k - 1]) if k >= 1 else math.inf

    # Cumulative ranks only grow, so each cut-off is ≤ the one above it (a zero share → same cut-off → empty tier).
    return TierCutoffs(cut(cumulative[0]), cut(cumulative[1]), cut(cumulative[2]), n)


def _top_candidates(values: list[float], n_finite: int, share: float) -> list[float] | None:
    """The finite scores ≥ a sampled threshold, if they are certainly at least the top ``share``; else None."""
    need = int(math.floor(n_finite * share + 0.5))
    if len(values) < 20_000 or share > 0.6 or need == 0:
        return None
    sample = sorted(x for x in values[:: len(values) // 5_000] if math.isfinite(x))
    if not sample:
        return None
    # Aim for share + 5 points of margin: sampling error at 5,000 samples is well under that.
    index = max(0, min(len(sample) - 1, int(len(sample) * (1.0 - share - 0.05))))
    threshold = sample[index]
    top = list(filter(threshold.__le__, values))  # NaN compares False and drops out
    top = [x for x in top if x != math.inf] if math.inf in top else top
    return top if len(top) >= need else None


def tier_for(score_total: float, has_purchases: bool, cutoffs: TierCutoffs) -> str:
    """``prospect`` without purchases, else the highest tier whose cut-off the score reaches, else ``bronze``."""
    if not has_purchases:
        return "prospect"
    if score_total >= cutoffs.diamond:
        return "diamond"
    if score_total >= cutoffs.gold:
        return "gold"
    if score_total >= cutoffs.silver:
        return "silver"
    return "bronze"


def is_vip(tier: str, manual_vip: bool, vip_tiers: Iterable[str] = DEFAULT_VIP_TIERS) -> bool:
    """VIP = a tier named in config (default diamond, gold) or the customer's manual VIP flag."""
    return bool(manual_vip) or tier in vip_tiers
