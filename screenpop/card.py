"""The customer card a screen pop carries: pure functions from plain data (no SQL, no sockets).

``build_card(data, call, today=…, masked=…)`` takes what :mod:`screenpop.cards` loaded for the customer (a dict,
see ``CardData`` keys below) and what the call says (caller number, IVR path, wait), and returns the JSON-ready
card. Numbers and VINs are masked for roles configured in ``screenpop.mask_roles``. Every string in the card is
data: the page renders it as text (agents_ui/static/card.js uses textContent only).

Card data keys (all optional except ``id``/``name``): ``kind``, ``tier``, ``score``, ``reasons`` (the score's
breakdown in words), ``membership_level``, ``membership_points``, ``language``, ``lifecycle``, ``consultant``,
``advisor``, ``store``, ``birthday`` (ISO date), ``numbers``, ``vehicles``, ``orders``, ``visits``, ``tickets``,
``calls``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

CARE_DAYS = 30  # a care reminder when a birthday, insurance or maintenance is due within this many days
OVERDUE_DAYS = 90  # … or overdue by at most this many (older dates are stale records, not reminders)
LAST_VISITS = 5
LAST_CALLS = 5
LAST_ORDERS = 5


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the call itself tells the card: the caller's number as received (None or empty: withheld), the
    customers sharing the number (ambiguous; id and name each, most recent first), whether this call created a
    prospect, the IVR path the caller took and how long they have waited."""

    caller_number: str | None = None
    caller_name: str | None = None  # the caller ID name: the caller's own text, shown as such
    withheld: bool = False
    variants: tuple[tuple[str, str], ...] = ()
    new_prospect: bool = False
    ivr_path: str | None = None
    wait_seconds: float | None = None
    queue: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def mask_number(number: str | None) -> str | None:
    """``+8613812348000`` → ``+86138****8000``: the prefix and the last four kept (as the logs mask them)."""
    if not number:
        return number
    if len(number) <= 6:
        return "*" * len(number)
    keep_head = 6 if number.startswith("+") else 3
    keep_head = min(keep_head, len(number) - 4)
    return number[:keep_head] + "*" * (len(number) - keep_head - 4) + number[-4:]


def mask_vin(vin: str | None) -> str | None:
    """A VIN keeps its maker code (3) and its last four: ``LVS******…1234``."""
    if not vin:
        return vin
    if len(vin) <= 7:
        return "*" * len(vin)
    return vin[:3] + "*" * (len(vin) - 7) + vin[-4:]


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def next_birthday(born: date, today: date) -> date:
    """The first birthday on or after ``today``. Someone born on 29 February has it on 28 February in a common
    year (the last day of their birth month); a birthday already past this year is next year's (December's
    ``today`` finds January's birthdays)."""
    for year in (today.year, today.year + 1):
        try:
            day = born.replace(year=year)
        except ValueError:  # 29 February in a common year
            day = date(year, 2, 28)
        if day >= today:
            return day
    raise AssertionError("unreachable: next year's birthday is always after today")


def birthday_reminder(born: Any, today: date, days: int = CARE_DAYS) -> dict[str, Any] | None:
    """The birthday care reminder when the next birthday is within ``days`` (0: today), else None. ``born``: a
    date or ISO text (None, empty, unreadable or after ``today``: no reminder)."""
    birth = _day(born)
    if birth is None or birth > today:
        return None
    due = next_birthday(birth, today)
    ahead = (due - today).days
    if ahead > days:
        return None
    return {"kind": "birthday", "due": due.isoformat(), "days": ahead, "age": due.year - birth.year,
            "vehicle": None, "plate": None}


def care_reminders(vehicles: list[dict[str, Any]], today: date, days: int = CARE_DAYS,
                   birthday: Any = None) -> list[dict[str, Any]]:
    """The customer's birthday within ``days``, and each vehicle's insurance or maintenance due within ``days``
    (or overdue by at most ``OVERDUE_DAYS``): one reminder each, most urgent first."""
    out: list[dict[str, Any]] = []
    born = birthday_reminder(birthday, today, days)
    if born is not None:
        out.append(born)
    for v in vehicles:
        for kind, key in (("insurance", "insurance_expiry"), ("maintenance", "next_maintenance_due")):
            due = _day(v.get(key))
            if due is not None and -OVERDUE_DAYS <= (due - today).days <= days:
                out.append({"kind": kind, "due": due.isoformat(), "days": (due - today).days,
                            "vehicle": " ".join(str(x) for x in (v.get("brand"), v.get("model")) if x),
                            "plate": v.get("plate")})
    out.sort(key=lambda r: (r["days"], r["kind"]))
    return out


def _vehicle(v: dict[str, Any], masked: bool) -> dict[str, Any]:
    return {
        "brand": v.get("brand"), "model": v.get("model"), "plate": v.get("plate"),
        "vin": mask_vin(v.get("vin")) if masked else v.get("vin"),
        "purchase_date": v.get("purchase_date"), "mileage_km": v.get("mileage_km"),
        "maintenance_due": v.get("next_maintenance_due"), "insurance_expiry": v.get("insurance_expiry"),
    }


def build_card(data: dict[str, Any] | None, call: CallFacts, *, today: date, masked: bool) -> dict[str, Any]:
    """The card for a call. ``data`` None: nobody on file for the number (an unknown or withheld caller)."""
    number = call.caller_number or None
    shown_number = mask_number(number) if masked else number
    base: dict[str, Any] = {
        "number": None if call.withheld else shown_number,
        "withheld": call.withheld,
        "caller_name": call.caller_name,
        "new_prospect": call.new_prospect,
        "ivr_path": call.ivr_path,
        "wait_seconds": call.wait_seconds,
        "variants": [{"id": cid, "name": name} for cid, name in call.variants],
        "ambiguous": bool(call.variants),
        "masked": masked,
    }
    if data is None:
        base.update({"known": False, "customer_id": None, "name": None})
        return base
    vehicles = list(data.get("vehicles") or [])
    base.update({
        "known": True,
        "id": data["id"],  # as the desktop's forms take it
        "customer_id": str(data["id"]),
        "name": data.get("name"),
        "kind": data.get("kind", "person"),
        "tier": data.get("tier", "prospect"),
        "score": data.get("score"),
        "reasons": list(data.get("reasons") or []),
        "membership": {"level": data.get("membership_level", 0), "points": data.get("membership_points", 0)},
        "language": data.get("language"),
        "lifecycle": data.get("lifecycle"),
        "consultant": data.get("consultant"),
        "advisor": data.get("advisor"),
        "store": data.get("store"),
        "birthday": data.get("birthday"),
        "numbers": [mask_number(n) if masked else n for n in data.get("numbers") or []],
        "vehicles": [_vehicle(v, masked) for v in vehicles],
        "orders": list(data.get("orders") or [])[:LAST_ORDERS],
        "visits": list(data.get("visits") or [])[:LAST_VISITS],
        "open_tickets": list(data.get("tickets") or []),
        "calls": list(data.get("calls") or [])[:LAST_CALLS],
        "care": care_reminders(vehicles, today, birthday=data.get("birthday")),
    })
    if data.get("lifecycle") == "target" and data.get("tier", "prospect") == "prospect" and call.new_prospect:
        base["new_prospect"] = True
    return base
