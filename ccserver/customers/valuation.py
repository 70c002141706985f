"""Facts → what a customer row stores: score (2 decimals), tier and the explained components (pure).

One place for the shape of ``customers.score_components`` so the demo generator, the nightly recompute and
the single-customer rescore write the same thing, and the API can read any of them back::

    {"components": {"spend.vehicle": 21.3, ...},   # points, rounded to 0.01
     "basis": {"spend.vehicle": "vehicle purchases ¥268,000 in 24 months", ...},
     "risk": ["open_complaints:1"]}                # only when there is a risk flag
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final

from routing.value import (
    CustomerFacts,
    TierCutoffs,
    TierShares,
    ValueScore,
    ValueWeights,
    explain,
    tier_for,
)
from routing.value import score as value_score

__all__ = [
    "SPEND_CATEGORY",
    "PURCHASE_ORDER_KINDS",
    "Valuation",
    "valuate",
    "components_json",
    "stored_score",
    "reasons_from_components",
    "settings_json",
    "weights_from_settings",
    "shares_from_settings",
]

# orders.kind → routing.value spend category
SPEND_CATEGORY: Final = {
    "vehicle_sale": "vehicle",
    "service": "service",
    "insurance": "insurance",
    "accessories": "accessories",
    "used_car": "used_car",
}
# Order kinds that make someone a purchasing customer (tiered) rather than a prospect. Accessories alone
# (a test-drive deposit, a floor mat) do not: see scores.py.
PURCHASE_ORDER_KINDS: Final = ("vehicle_sale", "used_car", "service", "insurance")


@dataclass(frozen=True, slots=True)
class Valuation:
    score: float  # rounded to 2 decimals, as the Numeric(8, 2) column stores it
    tier: str
    components: dict[str, Any]  # the score_components JSON
    value: ValueScore


def components_json(value: ValueScore) -> dict[str, Any]:
    out: dict[str, Any] = {
        "components": {k: round(v, 2) for k, v in value.components.items()},
        "basis": dict(value.basis),
    }
    if value.risk:
        out["risk"] = list(value.risk)
    return out


def valuate(
    facts: CustomerFacts, as_of: date, cutoffs: TierCutoffs, weights: ValueWeights | None = None
) -> Valuation:
    """Score ``facts`` as of ``as_of`` and place it against ``cutoffs``. The score is rounded to 2 decimals
    *before* it is placed, so the stored score, the stored cut-offs (also 2 decimals) and the tier always
    agree, whoever compares them (the batch recompute, the single rescore, SQL)."""
    value = value_score(facts, as_of, weights)
    total = round(value.total, 2)
    return Valuation(total, tier_for(total, facts.has_purchases, cutoffs), components_json(value), value)


def stored_score(components: dict[str, Any] | None, total: float) -> ValueScore | None:
    """A ValueScore rebuilt from a stored score_components JSON (None when there is none)."""
    if not isinstance(components, dict) or not isinstance(components.get("components"), dict):
        return None
    points = {str(k): float(v) for k, v in components["components"].items() if isinstance(v, int | float)}
    basis = components.get("basis")
    risk = components.get("risk")
    return ValueScore(
        total=float(total),
        components=points,
        basis={str(k): str(v) for k, v in basis.items()} if isinstance(basis, dict) else {},
        risk=tuple(str(r) for r in risk) if isinstance(risk, list) else (),
    )


def reasons_from_components(components: dict[str, Any] | None, total: float) -> list[str]:
    """routing.value.explain() of a stored score: why this customer is in their tier."""
    value = stored_score(components, total)
    return explain(value) if value is not None else []


def settings_json(weights: ValueWeights, shares: TierShares, **extra: Any) -> dict[str, Any]:
    """What a ValueCutoffs row records about how it was computed (read back by the single rescore)."""
    w = asdict(weights)
    w["spend_points"] = dict(weights.spend_points)
    w["spend_reference"] = dict(weights.spend_reference)
    return {"weights": w, "shares": asdict(shares), **extra}


def weights_from_settings(settings: dict[str, Any] | None) -> ValueWeights | None:
    try:
        raw = (settings or {}).get("weights")
        return ValueWeights(**raw) if isinstance(raw, dict) else None
    except (TypeError, ValueError):
        return None


def shares_from_settings(settings: dict[str, Any] | None) -> TierShares | None:
    try:
        raw = (settings or {}).get("shares")
        return TierShares(**raw) if isinstance(raw, dict) else None
    except (TypeError, ValueError):
        return None
