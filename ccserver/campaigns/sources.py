"""Targets from the tickets service's call-back worklist — pure: worklist items in, target rows out.

- ``resolution_callbacks``: the call backs after a complaint or repair is resolved (``resolution_callback``
  items), earliest due first;
- ``abandoned_callers``: callers who hung up waiting (``abandoned_call`` items), in the order they first called
  (original arrival), so the longest-waiting caller is called back first;
- ``callback_requests``: callers who asked to be called back, by arrival too.

One target per number (the first item wins); an item without a usable number is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from routing.numbers import normalize

__all__ = ["SOURCES", "worklist_targets"]

SOURCES = {"resolution_callbacks": ("resolution_callback", "due_at"),
           "abandoned_callers": ("abandoned_call", "arrived_at"),
           "callback_requests": ("callback_request", "arrived_at")}


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def worklist_targets(items: Iterable[dict[str, Any]], source: str, region: str
                     ) -> tuple[list[tuple[int | None, str, str | None, datetime | None]], int]:
    """(customer id, e164, tier, order) per number for ``source``, in its order; and how many items had no
    usable number."""
    kind, order_key = SOURCES[source]
    picked: list[tuple[int | None, str, str | None, datetime | None]] = []
    seen: set[str] = set()
    unusable = 0
    for item in items:
        if item.get("type") != kind:
            continue
        number = normalize(item.get("phone") if isinstance(item.get("phone"), str) else None, region=region)
        if number.e164 is None:
            unusable += 1
            continue
        if number.e164 in seen:
            continue
        seen.add(number.e164)
        customer = item.get("customer") or {}
        picked.append((customer.get("id"), number.e164, customer.get("tier"), _when(item.get(order_key))))
    far = datetime.max
    picked.sort(key=lambda t: (t[3].replace(tzinfo=None) if t[3] is not None else far))
    return picked, unusable
